# SPDX-License-Identifier: Apache-2.0
"""Shared by the compression tests: the reference libraries (Python's zlib; zstandard, lz4 and
isal from PyPI; the system's liblz4 itself for what an unfinished lz4 frame decodes to) and a served
compression device. The corpus is compress_corpus's."""

from __future__ import annotations

import ctypes
import functools
import os
import random
import shutil
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
from libvirt_synth.guest import Device
from libvirt_synth.guest.compress import Compressor
from libvirt_synth.host.device import HostDevice, Worker

from compress_corpus import corpus

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
