# SPDX-License-Identifier: Apache-2.0
"""Shared by the compression tests: the reference libraries (Python's zlib; zstandard, lz4 and
isal from PyPI; the system's liblz4 itself for what an unfinished lz4 frame decodes to), a generated
corpus that is the same on every machine, and a served compression device."""

from __future__ import annotations

import ctypes
import functools
import json
import os
import random
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import lz4.frame
import pytest
import zstandard
from isal import isal_zlib

from libvirt_synth.abi import CAlg, DevClass
from libvirt_synth.backend import HostDevice, Worker
from libvirt_synth.compress import Compressor
from libvirt_synth.guest import Device

ALGS = list(CAlg)
DEFLATE_FAMILY = [CAlg.DEFLATE, CAlg.ZLIB, CAlg.GZIP]
WBITS = {CAlg.DEFLATE: -15, CAlg.ZLIB: 15, CAlg.GZIP: 31}


class RefError(Exception):
    """A reference library refused the data."""


def zlib_compress(alg: CAlg, data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, WBITS[alg])
    return c.compress(data) + c.flush()


def isal_compress(alg: CAlg, data: bytes, level: int = 2) -> bytes:
    return isal_zlib.compress(data, level, WBITS[alg])


def zstd_compress(data: bytes, level: int = 3) -> bytes:
    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)


def lz4_compress(data: bytes, level: int = 0) -> bytes:
    return bytes(lz4.frame.compress(data, compression_level=level, content_checksum=True))


def ref_compress(alg: CAlg, data: bytes, level: int | None = None, lib: str = "") -> bytes:
    """One frame of data from a reference library (deflate family: zlib, or isal with lib="isal")."""
    if alg in DEFLATE_FAMILY:
        if lib == "isal":
            return isal_compress(alg, data, 2 if level is None else level)
        return zlib_compress(alg, data, 6 if level is None else level)
    if alg == CAlg.ZSTD:
        return zstd_compress(data, 3 if level is None else level)
    return lz4_compress(data, 0 if level is None else level)


def ref_decompress(alg: CAlg, blob: bytes, lib: str = "") -> bytes:
    """The data of exactly one frame; RefError if corrupt, truncated or followed by other bytes. lz4:
    python-lz4, or liblz4 itself with lib="liblz4"."""
    try:
        if alg in DEFLATE_FAMILY:
            d: Any = isal_zlib.decompressobj(WBITS[alg]) if lib == "isal" else zlib.decompressobj(WBITS[alg])
            out = d.decompress(blob) + d.flush()
            if not d.eof or d.unused_data:
                raise RefError("truncated or trailing data")
            return bytes(out)
        if alg == CAlg.ZSTD:
            z = zstandard.ZstdDecompressor().decompressobj()
            out = z.decompress(blob)
            if not z.eof or z.unused_data:
                raise RefError("truncated or trailing data")
            return bytes(out)
        if lib == "liblz4":
            out, ended, n = lz4_decode(blob)
            if not ended or n != len(blob):
                raise RefError("truncated or trailing data")
            return out
        ld = lz4.frame.LZ4FrameDecompressor()
        out = ld.decompress(blob)
        if not ld.eof or ld.unused_data:
            raise RefError("truncated or trailing data")
        return bytes(out)
    except (zlib.error, isal_zlib.error, zstandard.ZstdError, RuntimeError) as e:
        raise RefError(str(e)) from e


# ---- liblz4's own frame decoder (LZ4F_decompress), the reference for lz4 ----


@functools.cache
def _liblz4() -> ctypes.CDLL:
    """The liblz4 the device's plugin links (the C core needs it, so it is there)."""
    lib = ctypes.CDLL("liblz4.so.1")
    size_p = ctypes.POINTER(ctypes.c_size_t)
    lib.LZ4F_createDecompressionContext.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint]
    lib.LZ4F_freeDecompressionContext.argtypes = [ctypes.c_void_p]
    lib.LZ4F_decompress.argtypes = [ctypes.c_void_p, ctypes.c_void_p, size_p, ctypes.c_void_p, size_p, ctypes.c_void_p]
    for f in (lib.LZ4F_createDecompressionContext, lib.LZ4F_freeDecompressionContext, lib.LZ4F_decompress):
        f.restype = ctypes.c_size_t
    lib.LZ4F_isError.argtypes = lib.LZ4F_getErrorName.argtypes = [ctypes.c_size_t]
    lib.LZ4F_isError.restype = ctypes.c_uint
    lib.LZ4F_getErrorName.restype = ctypes.c_char_p
    return lib


LZ4F_VERSION = 100


def lz4_decode(blob: bytes, out_size: int = 4096) -> tuple[bytes, bool, int]:
    """What the system's liblz4 (LZ4F_decompress) makes of blob: (output, whether the frame ended,
    bytes read); RefError if it refuses the data.

    blob may stop anywhere, e.g. at a sync flush: the output is then everything decodable so far.
    With less than a block's worth of room (64 KiB for the device's frames) left in dst, LZ4F
    decodes a block into its own buffer, counts the block as read and hands its output out over
    later calls, so this calls again, with no input, until a call gives nothing. python-lz4 4.4's
    LZ4FrameDecompressor returns as soon as its input is read: it drops the rest of a block that
    ends the input and decodes past twice the input's size (the first output buffer it takes)."""
    lib = _liblz4()
    ctx = ctypes.c_void_p()
    if lib.LZ4F_isError(lib.LZ4F_createDecompressionContext(ctypes.byref(ctx), LZ4F_VERSION)):
        raise MemoryError("LZ4F_createDecompressionContext")
    src = ctypes.create_string_buffer(blob, len(blob))
    dst = ctypes.create_string_buffer(out_size)
    out: list[bytes] = []
    pos = 0
    try:
        while True:
            sn, dn = ctypes.c_size_t(len(blob) - pos), ctypes.c_size_t(out_size)
            r = lib.LZ4F_decompress(ctx, dst, ctypes.byref(dn), ctypes.addressof(src) + pos, ctypes.byref(sn), None)
            if lib.LZ4F_isError(r):
                raise RefError(lib.LZ4F_getErrorName(r).decode())
            pos += sn.value
            out.append(dst.raw[: dn.value])
            if r == 0 or (pos == len(blob) and dn.value == 0):
                return b"".join(out), r == 0, pos
            if sn.value == 0 and dn.value == 0:
                raise RefError("LZ4F_decompress made no progress")
    finally:
        lib.LZ4F_freeDecompressionContext(ctx)


def ref_decode_so_far(alg: CAlg, blob: bytes) -> bytes:
    """What the reference decoder gives for the start of a frame (e.g. up to a sync flush)."""
    if alg in DEFLATE_FAMILY:
        return zlib.decompressobj(WBITS[alg]).decompress(blob)
    if alg == CAlg.ZSTD:
        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return lz4_decode(blob)[0]


REF_LIBS: dict[CAlg, list[str]] = {a: ["zlib", "isal"] for a in DEFLATE_FAMILY} | {CAlg.ZSTD: ["zstandard"],
                                                                                     CAlg.LZ4: ["lz4"]}


# ---- corpus: generated, the same on every machine ----

_WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
          "they you were her she there been one all we their has would when if so no will more can out up who them "
          "some into time than only other its then may about these could like two over first very after any such "
          "what new must our made where most through also well down should because each just those people how many "
          "too little state good make world still own see men work long get here between both life being under "
          "never day same another know while last might us great old year off come since against go came right "
          "used take three device memory queue host guest frame block stream buffer")
_IDENTS = ("data buf size offset count index value result status frame block queue stream device host guest level "
           "window chunk header length flags limit config options name path parts out src dst ctx")
_UTF8 = ("Gerät Größe Übertragung schließen Datenstrom κατάσταση μνήμη συσκευή поток данных устройство память "
         "圧縮 展開 ストリーム デバイス メモリ 队列 缓冲区 帧 설정 장치 façade déjà naïve 𝄞 🙂")
WORDS, IDENTS, UTF8_WORDS = _WORDS.split(), _IDENTS.split(), _UTF8.split()
# CPython 3.11 opcodes a .pyc is full of, with the inline cache entries (two zero bytes each) after them
PYC_OPS = ((100, 0), (124, 0), (125, 0), (116, 5), (106, 4), (171, 4), (122, 1), (83, 0), (1, 0), (151, 0),
           (90, 0), (114, 0), (160, 10), (25, 4), (110, 0))


def _english(rng: random.Random, n: int) -> bytes:
    """Prose of common words (Zipf-like frequencies) that repeats some of its phrases."""
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    out: list[str] = []
    said: list[list[str]] = []
    size = 0
    while size < n:
        words: list[str] = []
        while len(words) < rng.randint(6, 24):
            if said and rng.random() < 0.25:
                s = rng.choice(said)
                i = rng.randrange(len(s))
                words += s[i : i + rng.randint(2, 6)]
            else:
                words += rng.choices(WORDS, weights, k=rng.randint(1, 4))
        said.append(words)
        out.append(" ".join(words).capitalize() + rng.choice(".....,?;:") + ("\n\n" if rng.random() < 0.12 else " "))
        size += len(out[-1])
    return "".join(out).encode()[:n]


def _source(rng: random.Random, n: int) -> bytes:
    """Python-like functions: docstrings, comments, indented statements over a few identifiers."""
    out: list[str] = []
    size = 0
    while size < n:
        a, b, c = rng.sample(IDENTS, 3)
        lines = [f"def {a}_{b}({', '.join(rng.sample(IDENTS, rng.randint(0, 4)))}) -> int:",
                 f'    """{_english(rng, rng.randint(30, 90)).decode().strip()}"""']
        for _ in range(rng.randint(2, 12)):
            a, b, c = rng.sample(IDENTS, 3)
            lines.append(rng.choice([f"    {a} = {b} + {rng.randint(0, 4096)}",
                                     f"    if {a} > {b}:\n        return {c}",
                                     f"    for {a} in range({b}):\n        {c}.append({a})",
                                     f"    {a} = self.{b}({c}, {rng.randint(0, 64)})",
                                     f"    # {_english(rng, rng.randint(20, 60)).decode().strip()}"]))
        out.append("\n".join(lines) + f"\n    return {c}\n\n\n")
        size += len(out[-1])
    return "".join(out).encode()[:n]


def _api_doc(rng: random.Random) -> bytes:
    """A generated API client's docstring (the same template, other names)."""
    verb, noun = rng.choice(("Get", "List", "Create", "Delete", "Patch")), "".join(rng.sample(IDENTS, 2)).title()
    return (f"{verb} a {noun}.\n\n      Args:\n        request: ({noun}{verb}Request) input message\n        "
            f"global_params: (StandardQueryParameters, default: None) global arguments\n      Returns:\n        "
            f"({noun}) The response message.\n      ").encode()


def _pyc(rng: random.Random, n: int) -> bytes:
    """Laid out like a .pyc: header, then marshalled code objects (bytecode with its zeroed inline
    caches, docstrings, name tuples with back-references, line tables)."""
    out = bytearray(b"\xa7\r\r\n" + bytes(4) + struct.pack("<II", 1718064000, n))
    names: list[str] = []
    while len(out) < n:
        code = bytearray()
        for _ in range(rng.randint(6, 60)):
            op, cache = rng.choice(PYC_OPS)
            code += bytes((op, rng.randrange(12))) + bytes(2 * cache)
        out += b"\xe3" + struct.pack("<5I", rng.randint(0, 4), 0, 0, rng.randint(1, 12), rng.choice((3, 67, 131)))
        out += b"\xf3" + struct.pack("<I", len(code)) + code
        consts = [b"\xe9" + struct.pack("<i", rng.randint(-1, 300)) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.6:
            doc = _english(rng, rng.randint(40, 400)) if rng.random() < 0.5 else _api_doc(rng)
            consts.insert(0, b"\xf5" + struct.pack("<I", len(doc)) + doc)
        out += b")" + bytes([len(consts)]) + b"".join(consts)
        picked = rng.sample(IDENTS, rng.randint(1, 6))
        out += b")" + bytes([len(picked)])
        for w in picked:
            if w in names:
                out += b"r" + struct.pack("<I", names.index(w))
            else:
                names.append(w)
                out += b"\xda" + bytes([len(w)]) + w.encode()
        out += b"\xf3" + struct.pack("<I", 8) + bytes(rng.randrange(0x80, 0x90) for _ in range(8))
    return bytes(out[:n])


def _json_log(rng: random.Random, n: int) -> bytes:
    """JSON lines of a service log: timestamps, levels, counters, addresses, now and then a message."""
    out: list[str] = []
    t, size = 1718064000.0, 0
    while size < n:
        t += rng.expovariate(20)
        rec: dict[str, Any] = {
            "ts": f"{t:.3f}", "level": rng.choices(["INFO", "DEBUG", "WARNING", "ERROR"], [60, 30, 8, 2])[0],
            "host": f"vnf-{rng.randint(0, 7)}", "queue": rng.randint(0, 3),
            "op": rng.choice(["compress", "decompress", "stream"]), "bytes": rng.randint(0, 1 << 20),
            "latency_us": round(rng.lognormvariate(3, 1), 1),
            "peer": f"10.0.{rng.randint(0, 3)}.{rng.randint(1, 254)}:{rng.choice([443, 8443, 5201])}"}
        if rng.random() < 0.1:
            rec["msg"] = _english(rng, rng.randint(20, 80)).decode().strip()
        out.append(json.dumps(rec) + "\n")
        size += len(out[-1])
    return "".join(out).encode()[:n]


def _records(rng: random.Random, n: int) -> bytes:
    """Fixed-size little-endian records: a sequence number, a few types and lengths, a slowly
    drifting float, one of a few ids, a noisy field."""
    out = bytearray()
    seq, val = rng.randint(0, 1 << 20), 20.0
    ids = [rng.randbytes(8) for _ in range(6)]
    while len(out) < n:
        seq += 1
        val += rng.uniform(-0.5, 0.5)
        out += struct.pack("<IHHf8sI", seq, rng.choice((1, 2, 2, 3, 17)), rng.choice((64, 128, 1500)), val,
                           rng.choice(ids), rng.getrandbits(12))
    return bytes(out[:n])


def _utf8(rng: random.Random, n: int) -> bytes:
    """Words of several scripts (two-, three- and four-byte UTF-8), as in a translation catalogue."""
    out = [" ".join(rng.choices(UTF8_WORDS, k=rng.randint(3, 12))) + rng.choice("\n  ") for _ in range(n // 20)]
    return "".join(out).encode()[:n]


CORPUS_SEED = 20240611


@functools.cache
def corpus() -> tuple[tuple[str, bytes], ...]:
    """The compression tests' data, generated from a fixed seed (the same bytes on every machine):
    realistic kinds of what a VNF compresses, then extremes. "pyc-like" and "json log" decode to
    more than twice their lz4-compressed size: a sync-flushed lz4 stream of them is what
    python-lz4's decompressor cuts short (see lz4_decode)."""
    rng = random.Random(CORPUS_SEED)
    out = [("text", _english(rng, 48_000)), ("python source", _source(rng, 32_000)), ("pyc-like", _pyc(rng, 20_000)),
           ("json log", _json_log(rng, 40_000)), ("records", _records(rng, 64_000)), ("utf-8 text", _utf8(rng, 16_000))]
    out.append(("mixed", _english(rng, 30_000) + rng.randbytes(70_000) + _json_log(rng, 20_000)))
    out += [("zeros", bytes(200_000)), ("random", rng.randbytes(100_000)), ("empty", b""), ("one byte", b"x"),
            ("repeat", b"abcdefgh" * 40_000)]
    return tuple(out)


def corpus_entry(name: str) -> bytes:
    return dict(corpus())[name]


# ---- a served device ----

@contextmanager
def served_device(plugin: str | None = None, size: int = 32 << 20, queues: int = 2,
                  options: tuple[tuple[str, Any], ...] = (), worker: Worker | None = None) -> Iterator[HostDevice]:
    """A compression device in a fresh /dev/shm directory, served by a worker thread."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="synth-comp-", dir=base)
    own = worker is None
    w = worker or Worker(spin_us=200, max_sleep_us=200)
    dev = HostDevice.create(os.path.join(d, plugin or "all"), DevClass.COMPRESS, size=size, queues=queues,
                            plugin=plugin, options=options)
    try:
        w.add(dev)
        yield dev
    finally:
        dev.destroy()
        if own:
            w.stop()
        shutil.rmtree(d, ignore_errors=True)


def chunks(data: bytes, rng: random.Random, max_len: int) -> Iterator[bytes]:
    """data cut at random places (pieces of 0..max_len bytes)."""
    i = 0
    while i < len(data):
        n = rng.randint(0, max_len)
        yield data[i : i + n]
        i += n


Codec = Callable[[bytes], bytes]


# ---- a device with small limits, for the hostile tests ----

LIMIT_OUT = 4 << 20
MAX_CHUNK = 512 << 10
WINDOW_LOG = 20
HOSTILE_OPTIONS = (("max_stream_output", LIMIT_OUT), ("max_streams", 4), ("max_chunk", MAX_CHUNK),
                   ("zstd_window_log", WINDOW_LOG))


def sample() -> bytes:
    return b"".join(d for _, d in corpus()[:6])[:150_000]


def check_still_serves(c: Any) -> None:
    """A correct one-shot and stream round trip still work and match the reference libraries."""
    data = sample()
    for alg in (CAlg.GZIP, CAlg.ZSTD):
        blob = c.compress(data[:20000], alg)
        assert ref_decompress(alg, blob) == data[:20000]
        with c.stream(alg) as s:
            assert c.decompress(s.compress(data[:5000]) + s.finish(), alg) == data[:5000]


@functools.lru_cache(maxsize=16)
def zeros_bomb(alg: CAlg, total: int) -> bytes:
    """total zero bytes in one frame (a window the hostile device accepts), a MiB at a time."""
    mib = bytes(1 << 20)
    if alg in DEFLATE_FAMILY:
        z = zlib.compressobj(9, zlib.DEFLATED, WBITS[alg])
        return b"".join(z.compress(mib) for _ in range(total >> 20)) + z.flush()
    if alg == CAlg.ZSTD:
        params = zstandard.ZstdCompressionParameters.from_level(3, window_log=WINDOW_LOG)
        zc = zstandard.ZstdCompressor(compression_params=params).compressobj()
        return b"".join(zc.compress(mib) for _ in range(total >> 20)) + zc.flush()
    lc = lz4.frame.LZ4FrameCompressor(compression_level=12)
    return bytes(lc.begin() + b"".join(lc.compress(mib) for _ in range(total >> 20)) + lc.flush())


# ---- fixtures of the hostile-input modules, one device per module. Named explicitly, so that a
# module imports them under other names (`from compress_ref import comp_fixture`) without its test
# parameters shadowing the import. ----


@pytest.fixture(scope="module", name="dev")
def dev_fixture() -> Iterator[HostDevice]:
    """A compression device with the hostile-input limits (HOSTILE_OPTIONS)."""
    with served_device(options=HOSTILE_OPTIONS) as d:
        yield d


@pytest.fixture(scope="module", name="guest")
def guest_fixture(dev: HostDevice) -> Iterator[Device]:
    with Device.open(dev.path) as g:
        yield g


@pytest.fixture(name="comp")
def comp_fixture(guest: Device, dev: HostDevice) -> Iterator[Compressor]:
    """A compressor on queue 0; afterwards the device has no ring error and still serves."""
    c = Compressor(guest.queue(0))
    yield c
    assert dev.stats().ring_errors == 0
    check_still_serves(c)
