# SPDX-License-Identifier: Apache-2.0
"""A compression guest's data is untrusted too: truncated, bit-flipped and hand-made adversarial
input ends as BAD_DATA or LIMIT (the same verdict one-shot and through a stream), bombs stop at the
device's limits with output inside the destination and the host's memory flat."""

from __future__ import annotations

import random
import struct
import zlib

import lz4.frame
import pytest
import zstandard
from compress_ref import (
    ALGS,
    LIMIT_OUT,
    MAX_CHUNK,
    WINDOW_LOG,
    RefError,
    comp_fixture,  # noqa: F401 (the fixtures dev, guest and comp)
    dev_fixture,  # noqa: F401
    guest_fixture,  # noqa: F401
    ref_decompress,
    sample,
    zeros_bomb,
)

from libvirt_synth._native import lib
from libvirt_synth.abi import CAlg, CompOp, Status
from libvirt_synth.guest import Queue
from libvirt_synth.guest.compress import Compressor, CorruptDataError, LimitError

SAMPLE = sample()


def oneshot(q: Queue, alg: CAlg, blob: bytes, dst_len: int) -> tuple[int, int, bytes]:
    with q.scratch(len(blob), dst_len) as (src, dst):
        src.write(blob)
        dst.write(b"\xa5" * dst_len)
        c = q.exec({"opcode": CompOp.DECOMPRESS, "src_off": src.offset, "src_len": len(blob), "dst_off": dst.offset,
                    "dst_len": dst_len, "arg": [int(alg), 0, 0]})
        return c.status, c.result, dst.read(c.result) if c.status == Status.OK else b""


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_truncated_input_is_bad_data(comp: Compressor, alg: CAlg) -> None:
    q = comp.queue
    data = SAMPLE[:40000]
    blob = comp.compress(data, alg)
    rng = random.Random(int(alg))
    cuts = sorted({0, 1, 2, 5, 10, len(blob) - 1, len(blob) - 4, len(blob) // 2} |
                  {rng.randrange(len(blob)) for _ in range(30)})
    for n in cuts:
        st, result, _ = oneshot(q, alg, blob[:n], 2 * len(data))
        assert (st, result) == (Status.BAD_DATA, 0), (alg, n)
    with comp.stream(alg, decompress=True) as s, pytest.raises(CorruptDataError):
        s.decompress(blob[: len(blob) - 1], final=True)


CHECKSUMMED = [CAlg.ZLIB, CAlg.GZIP, CAlg.ZSTD, CAlg.LZ4]


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_bit_flips_are_an_error_or_harmless(comp: Compressor, alg: CAlg) -> None:
    """A flipped bit is BAD_DATA (or LIMIT); where the format has a checksum, anything the device
    accepts is the original data (the flip hit a field that does not change it). Whatever the format,
    the reference library (zlib, zstandard, liblz4) refuses what the device refuses and decodes what
    the device accepts to the same bytes."""
    q = comp.queue
    data = SAMPLE[:30000]
    blob = comp.compress(data, alg, 1 if alg != CAlg.LZ4 else 0)
    rng = random.Random(1000 + int(alg))
    seen = set()
    for _ in range(150):
        bad = bytearray(blob)
        pos = rng.randrange(len(bad))
        bad[pos] ^= 1 << rng.randrange(8)
        st, result, out = oneshot(q, alg, bytes(bad), len(data) + 4096)
        if st == Status.NO_SPACE:  # a size field grew: a retry at that size must still be caught
            assert 0 < result <= LIMIT_OUT
            st, result, out = oneshot(q, alg, bytes(bad), result)
        seen.add(Status(st))
        assert st in (Status.OK, Status.BAD_DATA, Status.LIMIT, Status.NO_SPACE), (alg, pos, st)
        if st == Status.OK and alg in CHECKSUMMED:
            assert out == data, (alg, pos)
        # The reference library's verdict on the same bytes: what the device accepts it decodes to the
        # same data, what the device refuses it refuses too.
        try:
            ref: bytes | None = ref_decompress(alg, bytes(bad), lib="liblz4" if alg == CAlg.LZ4 else "")
        except RefError:
            ref = None
        if st == Status.OK:
            assert out == ref, (alg, pos)
        else:
            assert ref is None, (alg, pos, Status(st))
    assert Status.BAD_DATA in seen
    # the same through a stream
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0x10
    if alg in CHECKSUMMED:
        with comp.stream(alg, decompress=True) as s, pytest.raises((CorruptDataError, LimitError)):
            s.decompress(bytes(bad), final=True)


def gzip_member(data: bytes, extra: bytes = b"", name: bytes = b"", comment: bytes = b"") -> bytes:
    flg = (4 if extra else 0) | (8 if name else 0) | (16 if comment else 0)
    hdr = b"\x1f\x8b\x08" + bytes([flg]) + b"\0\0\0\0\0\xff"
    if extra:
        hdr += struct.pack("<H", len(extra)) + extra
    if name:
        hdr += name + b"\0"
    if comment:
        hdr += comment + b"\0"
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = z.compress(data) + z.flush()
    return hdr + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def zstd_rle_frame(blocks: int, fcs: int) -> bytes:
    """A zstd frame by hand that declares fcs bytes and holds blocks RLE blocks of 128 KiB."""
    hdr = b"\x28\xb5\x2f\xfd" + bytes([0xC0, 7 << 3]) + struct.pack("<Q", fcs)  # window 128 KiB
    rle = [struct.pack("<I", ((128 << 10) << 3) | (1 << 1) | (i == blocks - 1))[:3] + b"z" for i in range(blocks)]
    return hdr + b"".join(rle)


def zstd_raw_frame(window_exp: int, payload: bytes, fcs: int | None = None) -> bytes:
    """A zstd frame by hand: a window descriptor of 2^(10 + window_exp) bytes, one raw block."""
    if fcs is None:
        fhd, tail = 0x00, b""
    else:
        fhd, tail = 0xC0, struct.pack("<Q", fcs)  # 8-byte frame content size, not single-segment
    hdr = b"\x28\xb5\x2f\xfd" + bytes([fhd, window_exp << 3]) + tail
    block = struct.pack("<I", (len(payload) << 3) | 1)[:3]  # last block, raw
    return hdr + block + payload


ADVERSARIAL = [
    # CVE-2022-37434 was a heap overflow reading a large gzip extra field into a header buffer:
    # the device never hands the header out, and a member with a 65535-byte extra field is valid.
    ("gzip, 65535-byte extra field", CAlg.GZIP, gzip_member(b"hi there", extra=b"E" * 65535), "ok:hi there"),
    ("gzip, extra field cut short", CAlg.GZIP, gzip_member(b"x", extra=b"E" * 65535)[:40000], Status.BAD_DATA),
    ("gzip, extra length past the end", CAlg.GZIP, b"\x1f\x8b\x08\x04\0\0\0\0\0\xff\xff\xff" + b"E" * 100,
     Status.BAD_DATA),
    ("gzip, endless name", CAlg.GZIP, b"\x1f\x8b\x08\x08\0\0\0\0\0\xff" + b"N" * 100000, Status.BAD_DATA),
    ("gzip, long name and comment", CAlg.GZIP, gzip_member(b"data", name=b"n" * 5000, comment=b"c" * 5000),
     "ok:data"),
    ("gzip, method 7", CAlg.GZIP, b"\x1f\x8b\x07" + gzip_member(b"x")[3:], Status.BAD_DATA),
    ("gzip, two members", CAlg.GZIP, gzip_member(b"a") + gzip_member(b"b"), Status.BAD_DATA),
    ("zlib, preset dictionary", CAlg.ZLIB, b"\x78\xbb" + b"\0\0\0\1" + zlib.compress(b"x")[2:], Status.BAD_DATA),
    ("zlib, bad header check", CAlg.ZLIB, b"\x78\x9d" + zlib.compress(b"x")[2:], Status.BAD_DATA),
    ("zlib, trailing byte", CAlg.ZLIB, zlib.compress(b"payload") + b"\0", Status.BAD_DATA),
    ("deflate, reserved block type", CAlg.DEFLATE, b"\x07" + b"\0" * 30, Status.BAD_DATA),
    ("deflate, stored length mismatch", CAlg.DEFLATE, b"\x01\x05\x00\x00\x00hello", Status.BAD_DATA),
    ("deflate, distance too far back", CAlg.DEFLATE, bytes.fromhex("63 00 02 00") + b"\0" * 8, Status.BAD_DATA),
    ("zstd, 2 GiB window", CAlg.ZSTD, zstd_raw_frame(21, b"hello"), Status.LIMIT),
    ("zstd, window one past the cap", CAlg.ZSTD, zstd_raw_frame(WINDOW_LOG - 9, b"hello"), Status.LIMIT),
    ("zstd, window at the cap", CAlg.ZSTD, zstd_raw_frame(WINDOW_LOG - 10, b"hello"), "ok:hello"),
    ("zstd, declares 2^40 bytes, holds 5", CAlg.ZSTD, zstd_raw_frame(0, b"hello", fcs=1 << 40), Status.BAD_DATA),
    # One-shot believes the header (no buffer could take 2^40 bytes); a stream finds the lie.
    ("zstd, declares 2^40 bytes, holds 256 KiB", CAlg.ZSTD, zstd_rle_frame(2, 1 << 40),
     (Status.LIMIT, Status.BAD_DATA)),
    ("zstd, 256 KiB of RLE blocks", CAlg.ZSTD, zstd_rle_frame(2, 256 << 10), Status.NO_SPACE),
    ("zstd, declares fewer bytes than it holds", CAlg.ZSTD, zstd_raw_frame(0, b"hello", fcs=2), Status.BAD_DATA),
    ("zstd, two frames", CAlg.ZSTD, zstandard.ZstdCompressor().compress(b"a") * 2, Status.BAD_DATA),
    ("zstd, bad magic", CAlg.ZSTD, b"\x28\xb5\x2f\xfe" + b"\0" * 20, Status.BAD_DATA),
    ("lz4, legacy frame", CAlg.LZ4, b"\x02\x21\x4c\x18" + b"\x10\0\0\0" + b"\0" * 16, Status.BAD_DATA),
    ("lz4, 4 MiB block that is not there", CAlg.LZ4,
     lz4.frame.compress(b"z" * 100, block_size=lz4.frame.BLOCKSIZE_MAX4MB, store_size=False)[:7]
     + struct.pack("<I", 4 << 20) + b"\0" * 64, Status.BAD_DATA),
    ("lz4, block larger than the frame allows", CAlg.LZ4,
     lz4.frame.compress(b"z" * 100, store_size=False)[:7] + struct.pack("<I", (64 << 10) + 1) + b"\0" * 64,
     Status.BAD_DATA),
    ("lz4, two frames", CAlg.LZ4, lz4.frame.compress(b"a") * 2, Status.BAD_DATA),
    ("lz4, content size lies", CAlg.LZ4,
     lz4.frame.compress(b"abc" * 1000, store_size=True)[:6] + struct.pack("<Q", 10), Status.BAD_DATA),
]


@pytest.mark.parametrize("case,alg,blob,want", ADVERSARIAL, ids=[a[0] for a in ADVERSARIAL])
def test_adversarial_input(comp: Compressor, case: str, alg: CAlg, blob: bytes,
                           want: Status | str | tuple[Status, Status]) -> None:
    q = comp.queue
    st, result, out = oneshot(q, alg, blob, 1 << 16)
    if isinstance(want, tuple):
        assert (Status(st), result) == (want[0], 0), case
        want = want[1]
        st, result = want, 0
    if isinstance(want, str):
        assert (st, out) == (Status.OK, want[3:].encode()), case
    elif want == Status.NO_SPACE:
        # The count NO_SPACE gives is the reference's size; a buffer of that size gets the reference's data.
        ref = ref_decompress(alg, blob)
        assert (st, result) == (want, len(ref)) and len(ref) > 1 << 16, case
        st, result, out = oneshot(q, alg, blob, result)
        assert (st, out) == (Status.OK, ref), case
        want = "ok:" + ref.decode()
    else:
        assert (Status(st), result) == (want, 0), case
    # The same bytes through a stream get the same verdict.
    with comp.stream(alg, decompress=True) as s:
        if isinstance(want, str):
            assert s.decompress(blob, final=True) == want[3:].encode()
        else:
            with pytest.raises(CorruptDataError if want == Status.BAD_DATA else LimitError):
                s.decompress(blob, final=True)


def vm_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_decompression_bombs_stop_at_the_limits(comp: Compressor, alg: CAlg) -> None:
    q = comp.queue
    bomb = zeros_bomb(alg, 64 << 20)
    assert len(bomb) <= MAX_CHUNK
    small = zeros_bomb(alg, 3 << 20)
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak RSS
        f.write("5")
    base = vm_kib("VmRSS")
    st, result, _ = oneshot(q, alg, bomb, 1 << 20)
    assert (st, result) == (Status.LIMIT, 0), "one-shot: the size is counted only up to the limit"
    st, result, _ = oneshot(q, alg, small, 1 << 20)
    # Below the limit: the exact size; zstd frames written without their size: a bound that suffices.
    assert st == Status.NO_SPACE and 3 << 20 <= result <= (3 << 20) + (128 << 10 if alg == CAlg.ZSTD else 0)
    with comp.stream(alg, decompress=True) as s:
        total, st = 0, Status.OK
        with q.scratch(len(bomb), 1 << 20) as (src, dst):
            src.write(bomb)
            n = len(bomb)
            while True:
                c = q.exec({"opcode": CompOp.STREAM, "session": s.id, "src_off": src.offset, "src_len": n,
                            "dst_off": dst.offset, "dst_len": 1 << 20})
                n = 0
                if c.status != Status.OK:
                    st = Status(c.status)
                    break
                assert c.result <= 1 << 20
                total += c.result
                assert c.flags & lib.SYNTH_CPL_F_MORE
        assert st == Status.LIMIT and total <= LIMIT_OUT
    grew = vm_kib("VmHWM") - base
    assert grew < 48 << 10, f"host memory grew by {grew} KiB while decoding a 64 MiB bomb"


def test_compression_stream_output_is_bounded_too(comp: Compressor) -> None:
    noise = random.Random(3).randbytes(MAX_CHUNK)
    with comp.stream(CAlg.LZ4) as s, pytest.raises(LimitError):
        for _ in range(LIMIT_OUT // MAX_CHUNK + 2):
            s.compress(noise)



@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_input_changing_while_it_is_decoded(comp: Compressor, alg: CAlg) -> None:
    """A thread flips bytes of the compressed input in the arena while the device decodes it over
    and over (lz4 decodes in place; the others decode a copy): every op ends with a status, never
    more output than the destination holds, and the device goes on serving."""
    import threading

    q = comp.queue
    data = SAMPLE[:60000]
    blob = comp.compress(data, alg)
    stop = threading.Event()
    with q.scratch(len(blob), *[len(data) + 100] * 8) as (src, *dsts):
        src.write(blob)
        view = src.view

        def flipper() -> None:
            rng = random.Random(int(alg))
            while not stop.is_set():
                i = rng.randrange(len(blob))
                view[i] = view[i] ^ (1 << rng.randrange(8))

        t = threading.Thread(target=flipper, daemon=True)
        t.start()
        seen = set()
        try:
            for rnd in range(40):
                descs = [{"opcode": CompOp.DECOMPRESS, "src_off": src.offset, "src_len": len(blob),
                          "dst_off": b.offset, "dst_len": b.size, "arg": [int(alg), 0, 0], "cookie": i}
                         for i, b in enumerate(dsts)]
                assert q.submit(q.descs(descs)) == len(descs)
                for c in q.drain(len(descs)):
                    seen.add(Status(c.status))
                    assert c.status in (Status.OK, Status.BAD_DATA, Status.LIMIT, Status.NO_SPACE), (rnd, c)
                    if c.status == Status.OK:
                        assert c.result <= len(data) + 100
        finally:
            stop.set()
            t.join()
    assert Status.BAD_DATA in seen


def zeros_frame(alg: CAlg, n: int) -> bytes:
    if alg in (CAlg.DEFLATE, CAlg.ZLIB, CAlg.GZIP):
        z = zlib.compressobj(9, zlib.DEFLATED, {CAlg.DEFLATE: -15, CAlg.ZLIB: 15, CAlg.GZIP: 31}[alg])
        return z.compress(bytes(n)) + z.flush()
    return bytes(lz4.frame.compress(bytes(n)))


@pytest.mark.parametrize("alg", [CAlg.DEFLATE, CAlg.ZLIB, CAlg.GZIP, CAlg.LZ4], ids=lambda a: a.label)
def test_no_space_counts_at_most_max_count_then_says_limit(alg: CAlg) -> None:
    """A one-shot DECOMPRESS too big for dst_len decodes on, discarding, to say how big: that work
    is bounded by max_count (8 x max_chunk), not by the 1 GiB stream limit, so that a bomb costs
    the worker milliseconds. Past it: LIMIT (decompress it as a stream)."""
    from compress_ref import served_device

    from libvirt_synth.guest import Device

    with served_device(options=(("max_chunk", 64 << 10),)) as dev, Device.open(dev.path) as g:
        comp = Compressor(g.queue(0))
        info = comp.info
        assert info.max_count == 8 * info.max_chunk == 512 << 10 and info.max_stream_output == 1 << 30
        st, result, _ = oneshot(comp.queue, alg, zeros_frame(alg, info.max_count), 4096)
        assert (st, result) == (Status.NO_SPACE, info.max_count)
        st, result, _ = oneshot(comp.queue, alg, zeros_frame(alg, info.max_count + 1), 4096)
        assert (st, result) == (Status.LIMIT, 0)
        # The same frame decodes whole into a destination it fits, and through a stream.
        assert comp.decompress(zeros_frame(alg, info.max_count + 1), alg,
                               max_output=info.max_count + 1) == bytes(info.max_count + 1)


def _zlib_cinfo8(data: bytes) -> bytes:
    body = zlib.compress(data)[2:]
    cmf, flg = 0x88, 0x80  # CINFO 8: a 64 KiB window, which RFC 1950 does not allow
    flg |= (31 - (cmf * 256 + flg) % 31) % 31
    return bytes([cmf, flg]) + body


def _gzip_reserved_flag(data: bytes) -> bytes:
    co = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = bytearray(co.compress(data) + co.flush())
    gz[3] |= 0x20  # FLG bit 5: reserved, MUST be zero (RFC 1952)
    return bytes(gz)


def _zstd_big_rle_block() -> bytes:
    """One RLE block of 131,073 bytes in a frame with a 1 MiB window: over the 128 KiB a block may hold."""
    bh = (131073 << 3) | (1 << 1) | 1  # size, RLE, last
    return struct.pack("<I", 0xFD2FB528) + bytes([0, (20 - 10) << 3]) + struct.pack("<I", bh)[:3] + b"A"


INVALID_FRAMES = [("zlib with CINFO 8", CAlg.ZLIB, _zlib_cinfo8(b"synthetic " * 500)),
                  ("gzip with a reserved FLG bit", CAlg.GZIP, _gzip_reserved_flag(b"synthetic " * 500)),
                  ("zstd RLE block over 128 KiB", CAlg.ZSTD, _zstd_big_rle_block())]


@pytest.mark.parametrize("case, alg, blob", INVALID_FRAMES, ids=[c[0] for c in INVALID_FRAMES])
def test_frames_the_reference_decoders_refuse_are_bad_data(case: str, alg: CAlg, blob: bytes) -> None:
    from compress_ref import served_device

    from libvirt_synth.guest import Device

    with pytest.raises((zlib.error, zstandard.ZstdError)):  # the reference refuses it
        if alg == CAlg.ZSTD:
            zstandard.ZstdDecompressor().decompressobj().decompress(blob)
        else:
            zlib.decompress(blob, 15 if alg == CAlg.ZLIB else 31)
    plugins = ["zstd"] if alg == CAlg.ZSTD else ["zlib", "isal"]
    for plugin in [*plugins, None]:
        with served_device(plugin=plugin) as dev, Device.open(dev.path) as g:
            comp = Compressor(g.queue(0))
            for dst_len in (1 << 20, 64):  # fits, and NO_SPACE's path
                assert oneshot(comp.queue, alg, blob, dst_len)[:2] == (Status.BAD_DATA, 0), (plugin, dst_len)
            for piece in (len(blob), 1):  # a stream, in one op and a byte at a time
                with comp.stream(alg, decompress=True) as s, pytest.raises(CorruptDataError):
                    for i in range(0, len(blob), piece):
                        s.decompress(blob[i:i + piece], final=i + piece >= len(blob))


def _frames() -> list[tuple[str, CAlg, bytes, int | None]]:
    """docs/device-abi.md 13.4, "One frame, precisely": (case, alg, input, OK size or None for BAD_DATA)."""
    import lz4.block

    d = b"data " * 100
    zs = zstandard.ZstdCompressor().compress(d)
    lz = bytes(lz4.frame.compress(d))
    skip = struct.pack("<II", 0x184D2A50, 4) + b"abcd"
    block = lz4.block.compress(d, store_size=False)
    co = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = co.compress(d) + co.flush()
    fdict = bytearray(zlib.compress(d))
    fdict[1] = (fdict[1] | 0x20) & 0xE0
    fdict[1] |= (31 - (fdict[0] * 256 + fdict[1]) % 31) % 31
    return [("zlib with FDICT", CAlg.ZLIB, bytes(fdict[:2]) + b"\0\0\0\1" + bytes(fdict[2:]), None),
            ("gzip of two members", CAlg.GZIP, gz + gz, None),
            ("two zstd frames", CAlg.ZSTD, zs + zs, None), ("two lz4 frames", CAlg.LZ4, lz + lz, None),
            ("zstd skippable frame alone", CAlg.ZSTD, skip, 0), ("lz4 skippable frame alone", CAlg.LZ4, skip, 0),
            ("zstd skippable then a frame", CAlg.ZSTD, skip + zs, None),
            ("lz4 skippable then a frame", CAlg.LZ4, skip + lz, None),
            ("lz4 legacy frame", CAlg.LZ4, struct.pack("<II", 0x184C2102, len(block)) + block, None)]


@pytest.mark.parametrize("case, alg, blob, size", _frames(), ids=[f[0] for f in _frames()])
def test_one_frame_precisely(comp: Compressor, case: str, alg: CAlg, blob: bytes, size: int | None) -> None:
    st, result, _ = oneshot(comp.queue, alg, blob, 1 << 16)
    assert (st, result) == ((Status.OK, size) if size is not None else (Status.BAD_DATA, 0))
    with comp.stream(alg, decompress=True) as s:
        if size is None:
            with pytest.raises(CorruptDataError):
                s.decompress(blob, final=True)
        else:
            assert s.decompress(blob, final=True) == b""


_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393


def _xxh32(b: bytes) -> int:
    """XXH32 with seed 0 (what an LZ4 frame header's checksum byte is made of)."""
    m = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & m

    n, i = len(b), 0
    if n >= 16:
        v = [(_P1 + _P2) & m, _P2, 0, (-_P1) & m]
        while i + 16 <= n:
            for k in range(4):
                v[k] = (rotl((v[k] + struct.unpack_from("<I", b, i)[0] * _P2) & m, 13) * _P1) & m
                i += 4
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & m
    else:
        h = _P5
    h = (h + n) & m
    while i + 4 <= n:
        h = (rotl((h + struct.unpack_from("<I", b, i)[0] * _P3) & m, 17) * _P4) & m
        i += 4
    while i < n:
        h = (rotl((h + b[i] * _P5) & m, 11) * _P1) & m
        i += 1
    h ^= h >> 15
    h = (h * _P2) & m
    h ^= h >> 13
    h = (h * _P3) & m
    return h ^ (h >> 16)


def test_a_corrupt_lz4_frame_leaves_the_next_ones_alone(comp: Compressor) -> None:
    """Issue 13 reported that after one corrupt LZ4 frame every valid frame too big for its
    destination got BAD_DATA instead of NO_SPACE, even after a driver reset. Hostile frames whose
    header checksum is right (so that the decoder goes past the header: flags, block sizes,
    content sizes, dictionary ids, block bytes), one in ten through a decompression stream, each
    followed by valid frames of every kind."""
    rng = random.Random(1313)
    data = bytes(rng.randbytes(30000)) + bytes(200000)
    goods = [bytes(lz4.frame.compress(data, store_size=s, content_checksum=c, block_checksum=bc, block_linked=ln))
             for s in (True, False) for c in (True, False) for bc in (True, False) for ln in (True, False)]
    q = comp.queue
    verdicts = set()
    streams_refused = 0
    for trial in range(300):
        b = bytearray(rng.choice(goods))
        kind = trial % 5
        if kind == 0:
            b[4] ^= 1 << rng.randrange(8)  # FLG
        elif kind == 1:
            b[5] ^= 1 << rng.randrange(8)  # BD
        elif kind == 2 and b[4] & 0x08:
            b[6:14] = struct.pack("<Q", rng.choice([0, 1, len(data) - 1, len(data) + 1, 2**40]))
        elif kind == 3:
            b[rng.randrange(7, len(b))] = rng.randrange(256)
        else:
            b[4] |= 0x01
            b[6:6] = struct.pack("<I", rng.randrange(2**32))  # a dictionary id
        hl = 2 + (8 if b[4] & 0x08 else 0) + (4 if b[4] & 0x01 else 0)
        if 5 + hl <= len(b):
            b[4 + hl] = (_xxh32(bytes(b[4:4 + hl])) >> 8) & 0xFF
        if trial % 10 == 9:  # through a decompression stream instead: the stream's LZ4 state is its own
            try:
                with comp.stream(CAlg.LZ4, decompress=True) as st:
                    st.decompress(bytes(b), final=True)
            except (CorruptDataError, LimitError):
                streams_refused += 1
        else:
            verdicts.add(Status(oneshot(q, CAlg.LZ4, bytes(b), rng.choice([1000, 100000, 300000]))[0]))
        if trial % 50 == 49:
            q.device.reset()
        for g in goods[trial % 4::4]:
            assert oneshot(q, CAlg.LZ4, g, 1000)[:2] == (Status.NO_SPACE, len(data)), trial
    assert Status.BAD_DATA in verdicts and streams_refused > 0
