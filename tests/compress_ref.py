# SPDX-License-Identifier: Apache-2.0
"""Shared by the compression tests: the reference libraries (Python's zlib; zstandard, lz4 and
isal from PyPI), a corpus of this machine's own files, and a served compression device."""

from __future__ import annotations

import functools
import os
import pathlib
import random
import shutil
import stat
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
    """The data of exactly one frame; RefError if corrupt, truncated or followed by other bytes."""
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
        ld = lz4.frame.LZ4FrameDecompressor()
        out = ld.decompress(blob)
        if not ld.eof or ld.unused_data:
            raise RefError("truncated or trailing data")
        return bytes(out)
    except (zlib.error, isal_zlib.error, zstandard.ZstdError, RuntimeError) as e:
        raise RefError(str(e)) from e


REF_LIBS: dict[CAlg, list[str]] = {a: ["zlib", "isal"] for a in DEFLATE_FAMILY} | {CAlg.ZSTD: ["zstandard"],
                                                                                     CAlg.LZ4: ["lz4"]}


# ---- corpus ----

ROOTS = ("/usr/share", "/usr/lib")


@functools.lru_cache(maxsize=4)
def _files(lo: int, hi: int) -> tuple[str, ...]:
    out = []
    for root in ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                p = os.path.join(dirpath, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and lo <= st.st_size <= hi and os.access(p, os.R_OK):
                    out.append(p)
    return tuple(out)


@functools.lru_cache(maxsize=8)
def corpus(count: int = 16, seed: int = 20240611, lo: int = 2048,
           hi: int = 256 * 1024) -> tuple[tuple[str, bytes], ...]:
    """A fixed, seeded selection of this machine's files under /usr/share and /usr/lib (text,
    binaries, images, compressed files...), plus a few made-up extremes."""
    files = _files(lo, hi)
    picked = random.Random(seed).sample(files, min(count, len(files)))
    out = []
    for p in sorted(picked):
        try:
            out.append((p, pathlib.Path(p).read_bytes()))
        except OSError:
            continue
    rng = random.Random(seed)
    out += [("zeros", bytes(200_000)), ("random", rng.randbytes(100_000)), ("empty", b""),
            ("one byte", b"x"), ("repeat", b"abcdefgh" * 40_000)]
    return tuple(out)


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
