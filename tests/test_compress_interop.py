# SPDX-License-Identifier: Apache-2.0
"""What a compression device writes, the reference libraries read, and the reverse: every
algorithm, one-shot and streaming, on a generated corpus (the same on every machine) and on
Hypothesis data, through the default device and through devices pinned to each plugin."""

from __future__ import annotations

import hashlib
import random
import zlib
from collections.abc import Iterator

import pytest
import zstandard
from compress_ref import (
    ALGS,
    DEFLATE_FAMILY,
    REF_LIBS,
    WBITS,
    chunks,
    ref_compress,
    ref_decode_so_far,
    ref_decompress,
    served_device,
    zlib_compress,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isal import isal_zlib

from libvirt_synth import errors
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import CAlg, Flush, Status, comp_bound
from libvirt_synth.guest import Device
from libvirt_synth.guest.compress import Compressor
from libvirt_synth.host.device import HostDevice
from libvirt_synth.host.plugins import catalog

from compress_corpus import corpus, corpus_entry

PLUGINS = {"zlib": DEFLATE_FAMILY, "isal": DEFLATE_FAMILY, "zstd": [CAlg.ZSTD], "lz4": [CAlg.LZ4]}
# Levels to try per algorithm on the default device (0: the default).
LEVELS = {CAlg.DEFLATE: [0, -1, 1, 3, 9], CAlg.ZLIB: [0, 2, 6], CAlg.GZIP: [0, 1, 9],
          CAlg.ZSTD: [0, -5, 1, 19], CAlg.LZ4: [0, -16, 1, 3, 9]}
REF_LEVELS = {"zlib": [1, 6, 9], "isal": [0, 3], "zstandard": [-3, 3, 19], "lz4": [0, 3, 16]}
# The device's ISA-L levels and igzip's (docs/compression.md: igzip's level 0 is the device's -1).
IGZIP_LEVEL = {-1: 0, 1: 1, 2: 2, 3: 3}
# The one header byte that only describes the compressor: zlib's FLEVEL (RFC 1950, with the FCHECK
# bits that cover it), gzip's XFL (RFC 1952). The device writes "fastest" / 0 there, isal_zlib
# "fast" / 4; zlib checks the header either way (ref_decompress).
INFO_BYTE = {CAlg.ZLIB: 1, CAlg.GZIP: 8}


def assert_is_igzip(alg: CAlg, out: bytes, data: bytes, level: int) -> None:
    """out is what isal_zlib (python-isal, ISA-L's igzip) writes for data at the device's level."""
    ref = isal_zlib.compress(data, IGZIP_LEVEL[level], WBITS[alg])
    i = INFO_BYTE.get(alg)
    if i is None:
        assert out == ref, (alg, level)
    else:
        assert len(out) == len(ref) and out[:i] + out[i + 1:] == ref[:i] + ref[i + 1:], (alg, level)
    assert ref_decompress(alg, out) == data, (alg, level)


@pytest.fixture(scope="module")
def dev() -> Iterator[HostDevice]:
    with served_device() as d:
        yield d


@pytest.fixture(scope="module")
def comp(dev: HostDevice) -> Iterator[Compressor]:
    with Device.open(dev.path) as g:
        yield Compressor(g.queue(0))


# sha256 over the corpus's names, sizes and bytes
CORPUS_SHA256 = "a2d6e5dae8f938df56f73120ff6e2a91326ca946ce255bf930b2d771032b98d4"


def test_the_corpus_is_the_same_on_every_machine() -> None:
    """Generated from a fixed seed, not read from the machine: a change to the generator (or to
    Python's random) shows here, not as a verdict that differs from one machine to the next."""
    h = hashlib.sha256()
    for name, data in corpus():
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    assert h.hexdigest() == CORPUS_SHA256, [(name, len(data)) for name, data in corpus()]


def test_default_device_serves_every_algorithm_with_the_best_plugins(dev: HostDevice, comp: Compressor) -> None:
    assert dev.plugin == "isal,zlib,zstd,lz4"
    info = comp.info
    assert info.algorithms == ["deflate", "zlib", "gzip", "zstd", "lz4"]
    assert info.levels["gzip"] == (-1, 9, 6)  # igzip's -1..3 and zlib's 1..9; default zlib's 6
    assert info.levels["zstd"] == (-5, 19, 3) and info.levels["lz4"] == (-16, 9, 1)
    assert info.max_chunk == 1 << 20 and info.zstd_window_log == 23 and info.max_streams == 64
    cat = {p.name: p for p in catalog() if p.dev_class == "compress"}
    assert set(cat) == {"zlib", "isal", "zstd", "lz4"} and all(p.available for p in cat.values())
    assert cat["isal"].priority > cat["zlib"].priority
    assert cat["zlib"].detail.startswith("zlib 1.") and cat["lz4"].algorithms == ["lz4"]


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_corpus_device_to_reference(comp: Compressor, alg: CAlg) -> None:
    for i, (name, data) in enumerate(corpus()):
        level = LEVELS[alg][i % len(LEVELS[alg])]
        blob = comp.compress(data, alg, level)
        assert len(blob) <= comp_bound(len(data))
        for ref in REF_LIBS[alg]:
            assert ref_decompress(alg, blob, ref) == data, (name, level, ref)
        assert comp.decompress(blob, alg) == data, (name, level)


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_corpus_reference_to_device(comp: Compressor, alg: CAlg) -> None:
    for i, (name, data) in enumerate(corpus()):
        for ref in REF_LIBS[alg]:
            level = REF_LEVELS[ref][i % len(REF_LEVELS[ref])]
            blob = ref_compress(alg, data, level, ref)
            assert comp.decompress(blob, alg) == data, (name, ref, level)


def reference_stream(alg: CAlg, parts: list[bytes], sync_every: int) -> bytes:
    """A stream compressed piece by piece by the reference library, with sync flushes."""
    out = []
    if alg in DEFLATE_FAMILY:
        z = zlib.compressobj(5, zlib.DEFLATED, WBITS[alg])
        for i, p in enumerate(parts):
            out.append(z.compress(p))
            if i % sync_every == sync_every - 1:
                out.append(z.flush(zlib.Z_SYNC_FLUSH))
        out.append(z.flush())
    elif alg == CAlg.ZSTD:
        zc = zstandard.ZstdCompressor(level=4, write_checksum=True).compressobj()
        for i, p in enumerate(parts):
            out.append(zc.compress(p))
            if i % sync_every == sync_every - 1:
                out.append(zc.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
        out.append(zc.flush())
    else:
        import lz4.frame

        lc = lz4.frame.LZ4FrameCompressor(compression_level=4, content_checksum=True)
        out.append(lc.begin())
        out += [lc.compress(p) for p in parts]
        out.append(lc.flush())
    return b"".join(out)


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_streams_both_ways_on_the_corpus(comp: Compressor, alg: CAlg) -> None:
    rng = random.Random(int(alg))
    data = b"".join(d for _, d in corpus())
    parts = list(chunks(data, rng, 300_000))
    with comp.stream(alg, level=LEVELS[alg][int(alg) % len(LEVELS[alg])]) as s:
        out = []
        for i, p in enumerate(parts):
            out.append(s.compress(p))
            if i % 3 == 2:
                out.append(s.flush())
        out.append(s.finish())
        assert s.ended
    blob = b"".join(out)
    for ref in REF_LIBS[alg]:
        assert ref_decompress(alg, blob, ref) == data, ref
    ref_blob = reference_stream(alg, parts, 4)
    with comp.stream(alg, decompress=True) as s:
        back = [s.decompress(p) for p in chunks(ref_blob, rng, 50_000)]
        assert s.ended
    assert b"".join(back) == data


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    alg=st.sampled_from(ALGS),
    data=st.one_of(st.binary(max_size=5000), st.text(max_size=3000).map(str.encode),
                   st.lists(st.sampled_from([b"GET /", b"HTTP/1.1 ", b"200", b"\r\n", b"\0" * 50]), max_size=300)
                   .map(b"".join)),
    level_pick=st.integers(0, 1000),
    seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis_data_both_ways_one_shot_and_streaming(comp: Compressor, alg: CAlg, data: bytes, level_pick: int,
                                                          seed: int) -> None:
    rng = random.Random(seed)
    lo, hi, _ = comp.info.levels[alg.label]
    level = lo + level_pick % (hi - lo + 1)
    blob = comp.compress(data, alg, level)
    for ref in REF_LIBS[alg]:
        assert ref_decompress(alg, blob, ref) == data
    ref = rng.choice(REF_LIBS[alg])
    assert comp.decompress(ref_compress(alg, data, None, ref), alg) == data
    with comp.stream(alg, level) as s:
        out = b"".join(s.compress(p) for p in chunks(data, rng, 700)) + s.finish()
    assert ref_decompress(alg, out, ref) == data
    with comp.stream(alg, decompress=True) as s:
        back = b"".join(s.decompress(p) for p in chunks(out, rng, 300))
        assert s.ended
    assert back == data


@pytest.mark.parametrize("plugin", list(PLUGINS))
def test_each_plugin_pinned_interoperates(plugin: str) -> None:
    algs = PLUGINS[plugin]
    files = corpus()[::3]
    with served_device(plugin) as d, Device.open(d.path) as g:
        comp = Compressor(g.queue(1))
        assert g.info().backend == plugin and d.plugin == plugin
        assert comp.info.algorithms == [a.label for a in algs]
        for alg in algs:
            lo, hi, dflt = comp.info.levels[alg.label]
            for i, (name, data) in enumerate(files):
                level = [0, lo, hi, dflt][i % 4]
                blob = comp.compress(data, alg, level)
                for ref in REF_LIBS[alg]:
                    assert ref_decompress(alg, blob, ref) == data, (plugin, alg, name, level, ref)
                    assert comp.decompress(ref_compress(alg, data, None, ref), alg) == data, (plugin, name, ref)
            with comp.stream(alg, dflt) as s:
                out = s.compress(files[0][1]) + s.flush() + s.compress(files[1][1]) + s.finish()
            assert ref_decompress(alg, out) == files[0][1] + files[1][1]


def test_isal_pinned_device_defaults_to_igzip_level_2() -> None:
    with served_device("isal") as d, Device.open(d.path) as g:
        comp = Compressor(g.queue(0))
        assert comp.info.levels["zlib"] == (-1, 3, 2)
        data = corpus()[0][1]
        for alg in DEFLATE_FAMILY:
            assert_is_igzip(alg, comp.compress(data, alg), data, 2)  # its default
            for level in IGZIP_LEVEL:
                assert_is_igzip(alg, comp.compress(data, alg, level), data, level)
        with pytest.raises(errors.OpError) as e:
            comp.compress(data, "zlib", 6)
        assert e.value.status == Status.NOT_SUPPORTED


def test_zlib_plugin_writes_the_same_bytes_as_python_zlib() -> None:
    """Same library, same parameters: the same bytes, whatever level the previous op used."""
    data = b"".join(d for _, d in corpus()[:4])[:300_000]
    with served_device("zlib") as d, Device.open(d.path) as g:
        comp = Compressor(g.queue(0))
        for alg in DEFLATE_FAMILY:
            for level in (1, 9, 4, 6, 2, 8):
                assert comp.compress(data, alg, level) == zlib_compress(alg, data, level), (alg, level)


def test_default_device_compresses_with_isal_at_its_levels_and_zlib_above(comp: Compressor) -> None:
    data = corpus()[1][1]
    for alg in DEFLATE_FAMILY:
        for level in IGZIP_LEVEL:
            assert_is_igzip(alg, comp.compress(data, alg, level), data, level)
    for level in (0, 4, 6, 9):
        assert comp.compress(data, "gzip", level) == zlib_compress(CAlg.GZIP, data, level or 6), level


@pytest.mark.parametrize("plugin", list(PLUGINS))
def test_bound_holds_for_incompressible_data_at_every_level(plugin: str) -> None:
    data = random.Random(7).randbytes(1 << 18)
    with served_device(plugin) as d, Device.open(d.path) as g:
        comp = Compressor(g.queue(0))
        q = comp.queue
        out = ffi.new("uint32_t *")
        for alg in PLUGINS[plugin][:1]:
            lo, hi, _ = comp.info.levels[alg.label]
            levels = sorted({lo, hi, (lo + hi) // 2, 1} - {0})
            with q.scratch(len(data), comp_bound(len(data))) as (src, dst):
                src.write(data)
                for level in levels:
                    st_ = lib.synth_comp_compress(q.handle, alg, level, src.offset, len(data), dst.offset,
                                                  comp_bound(len(data)), out)
                    assert st_ == Status.OK and out[0] <= comp_bound(len(data)), (alg, level, st_)
                    assert ref_decompress(alg, dst.read(out[0])) == data


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_output_too_small_says_the_size_needed(comp: Compressor, alg: CAlg) -> None:
    q = comp.queue
    data = corpus()[2][1] + corpus()[3][1]
    blob = comp.compress(data, alg)
    out = ffi.new("uint32_t *")
    with q.scratch(len(data), len(blob), len(data) + 64) as (src, cbuf, dst):
        src.write(data)
        st_ = lib.synth_comp_compress(q.handle, alg, 0, src.offset, len(data), dst.offset, len(blob) - 1, out)
        assert (st_, out[0]) == (Status.NO_SPACE, len(blob)), "compression: the exact size"
        st_ = lib.synth_comp_compress(q.handle, alg, 0, src.offset, len(data), dst.offset, len(blob), out)
        assert st_ == Status.OK and dst.read(out[0]) == blob, "exactly that size is enough"
        cbuf.write(blob)
        st_ = lib.synth_comp_decompress(q.handle, alg, cbuf.offset, len(blob), dst.offset, len(data) // 2, out)
        assert (st_, out[0]) == (Status.NO_SPACE, len(data)), "decompression: the exact size"
        st_ = lib.synth_comp_decompress(q.handle, alg, cbuf.offset, len(blob), dst.offset, len(data), out)
        assert st_ == Status.OK and dst.read(out[0]) == data
    if alg == CAlg.ZSTD:  # a frame without its content size: a bound that suffices
        with comp.stream(alg) as s:
            nosize = s.compress(data) + s.finish()
        assert zstandard.get_frame_parameters(nosize).content_size == zstandard.CONTENTSIZE_UNKNOWN
        with q.scratch(len(nosize), 8 * len(data)) as (cbuf, dst):
            cbuf.write(nosize)
            st_ = lib.synth_comp_decompress(q.handle, alg, cbuf.offset, len(nosize), dst.offset, 100, out)
            assert st_ == Status.NO_SPACE and out[0] >= len(data)
            st_ = lib.synth_comp_decompress(q.handle, alg, cbuf.offset, len(nosize), dst.offset, out[0], out)
            assert st_ == Status.OK and dst.read(out[0]) == data


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_stream_output_in_tiny_pieces_with_more(comp: Compressor, alg: CAlg) -> None:
    """A 5-byte destination: MORE stays set while output is pending; the pieces make the stream."""
    q = comp.queue
    data = corpus()[4][1][:20000]
    p = ffi.new("struct synth_comp_stream_params *", {"alg": alg, "direction": 0})
    sid = ffi.new("uint32_t *")
    assert lib.synth_comp_stream_create(q.handle, p, sid) == 0
    out, flags = ffi.new("uint32_t *"), ffi.new("uint16_t *")
    pieces, ops = [], 0
    with q.scratch(len(data), 5) as (src, dst):
        src.write(data)
        st_ = lib.synth_comp_stream_op(q.handle, sid[0], Flush.FINISH, src.offset, len(data), dst.offset, 5, out, flags)
        while True:
            assert st_ == Status.OK and out[0] <= 5
            pieces.append(dst.read(out[0]))
            ops += 1
            if not flags[0] & lib.SYNTH_CPL_F_MORE:
                break
            st_ = lib.synth_comp_stream_op(q.handle, sid[0], Flush.NONE, 0, 0, dst.offset, 5, out, flags)
    assert flags[0] & lib.SYNTH_CPL_F_END and ops > 3
    assert ref_decompress(alg, b"".join(pieces)) == data
    assert lib.synth_comp_stream_destroy(q.handle, sid[0]) == 0
    blob = b"".join(pieces)
    p.direction = 1
    assert lib.synth_comp_stream_create(q.handle, p, sid) == 0
    back = []
    with q.scratch(len(blob), 7) as (src, dst):
        src.write(blob)
        n = len(blob)
        while True:
            st_ = lib.synth_comp_stream_op(q.handle, sid[0], Flush.NONE, src.offset, n, dst.offset, 7, out, flags)
            assert st_ == Status.OK
            back.append(dst.read(out[0]))
            n = 0
            if not flags[0] & lib.SYNTH_CPL_F_MORE:
                break
    assert flags[0] & lib.SYNTH_CPL_F_END and b"".join(back) == data
    assert lib.synth_comp_stream_destroy(q.handle, sid[0]) == 0


# What each sync flush ends, in the device's lz4 stream: a block that decodes to more than twice the
# stream so far (python-lz4's decompressor cut it short: see compress_ref.lz4_decode), another such
# block, a stored (incompressible) one, a full 64 KiB block and a partial one, and two of zeros.
SYNC_PARTS = (("pyc-like", 20_000), ("json log", 40_000), ("random", 30_000), ("mixed", 120_000), ("zeros", 100_000))


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_sync_flush_makes_everything_so_far_decodable(comp: Compressor, alg: CAlg) -> None:
    """Judged by the reference decoders (for lz4, liblz4 itself) and by the device's own."""
    parts = [corpus_entry(name)[:n] for name, n in SYNC_PARTS]
    with comp.stream(alg) as s:
        sofar = b""
        for i, p in enumerate(parts):
            sofar += s.compress(p) + s.flush()
            want = b"".join(parts[: i + 1])
            if i == 0 and alg == CAlg.LZ4:
                assert len(want) > 2 * len(sofar), "the regression input no longer compresses 2:1"
            assert ref_decode_so_far(alg, sofar) == want, (alg, i)
            with comp.stream(alg, decompress=True) as d:
                assert d.decompress(sofar) == want and not d.ended, (alg, i)
        blob = sofar + s.finish()
    assert ref_decompress(alg, blob) == b"".join(parts)
    if alg == CAlg.LZ4:
        assert ref_decompress(alg, blob, "liblz4") == b"".join(parts)


def test_c_stream_feed_drains_through_a_sink(comp: Compressor) -> None:
    q = comp.queue
    data = b"".join(d for _, d in corpus()[:5])[:400_000]
    got: list[bytes] = []

    @ffi.callback("int(void *, const void *, size_t)")
    def sink(arg: object, buf: object, n: int) -> int:
        got.append(bytes(ffi.buffer(buf, n)))
        return 0

    p = ffi.new("struct synth_comp_stream_params *", {"alg": CAlg.GZIP, "direction": 0, "level": 1})
    sid = ffi.new("uint32_t *")
    flags = ffi.new("uint16_t *")
    assert lib.synth_comp_stream_create(q.handle, p, sid) == 0
    with q.scratch(len(data), 1000) as (src, dst):
        src.write(data)
        rc = lib.synth_comp_stream_feed(q.handle, sid[0], Flush.FINISH, src.offset, len(data), dst.offset, 1000,
                                        sink, ffi.NULL, flags)
    assert rc == 0 and flags[0] & lib.SYNTH_CPL_F_END and len(got) > 10
    assert isal_zlib.decompress(b"".join(got), 31) == data
    assert lib.synth_comp_stream_destroy(q.handle, sid[0]) == 0


def test_buffers_larger_than_the_arena_go_through_a_stream() -> None:
    """A 1 MiB region: 700 kB of data and its output do not fit the arena at once; the Python API
    streams them through it and still gives one standard frame."""
    data = (b"".join(d for _, d in corpus()) * 4)[:700_000]
    with served_device(size=1 << 20, queues=1) as d, Device.open(d.path) as g:
        comp = Compressor(g.queue(0))
        assert comp.queue.arena_size < 2 * len(data)
        for alg in (CAlg.GZIP, CAlg.LZ4):
            blob = comp.compress(data, alg)
            assert ref_decompress(alg, blob) == data
            assert comp.decompress(blob, alg) == data
            assert comp.decompress(ref_compress(alg, data), alg) == data
