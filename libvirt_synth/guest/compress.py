# SPDX-License-Identifier: Apache-2.0
"""Guest API for compression devices: a typed wrapper over ``synth/guest_compress.h``.

One-shot calls take and return whole buffers; streams keep (de)compressor state on the host:

    with Device.open("/dev/shm/vnf0-comp") as dev:
        z = Compressor(dev.queue(0))
        blob = z.compress(data, "zstd", level=3)
        assert z.decompress(blob, "zstd") == data
        with z.stream("gzip") as s:                       # compression stream
            out = s.compress(part1) + s.compress(part2) + s.finish()
        with z.stream("gzip", decompress=True) as s:      # decompression stream
            back = s.decompress(out[:100]) + s.decompress(out[100:], final=True)
            assert s.ended

Output is standard: what the device compresses, zlib, zstd, lz4 and ISA-L decompress, and the
reverse. Errors are statuses of the operation, raised as exceptions: ``CorruptDataError`` (bad,
truncated or trailing input), ``LimitError`` (a device limit: output, window, input chunk),
``errors.OutputTooSmallError``, ``errors.InvalidOpError``, and ``errors.OpError`` for the rest
(its ``status`` says which: NOT_SUPPORTED, NO_RESOURCES, ...). A queue is single-threaded, as in C.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass
from typing import Any

from libvirt_synth import errors
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import CPL_END, CPL_MORE, CAlg, DevClass, Direction, Flush, Status, comp_bound
from libvirt_synth.guest.device import Buffer, Device, Queue
from libvirt_synth.guest.device import raise_for_status as _raise_generic

STREAM_OUT = 256 * 1024  # output buffer of a stream op (bytes)


CorruptDataError = errors.CorruptDataError  # BAD_DATA: the compressed input is corrupt or truncated
LimitError = errors.LimitError  # LIMIT: a stream's total output, the zstd window, the input chunk


def raise_for_status(status: int, result: int, what: str) -> None:
    """Raise the exception matching a non-OK status of a compression op."""
    if status == Status.BAD_DATA:
        raise CorruptDataError(status, f"{what}: the compressed data is corrupt or truncated")
    if status == Status.LIMIT:
        raise LimitError(status, f"{what}: a limit of the device was reached (see Compressor.info)")
    _raise_generic(status, result, what)


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise errors.from_errno(rc, what)
    return rc


def _alg(alg: CAlg | str | int) -> CAlg:
    try:
        return CAlg.parse(alg) if isinstance(alg, str) else CAlg(alg)
    except builtins.ValueError as e:
        raise errors.ValueError(str(e)) from None


@dataclass(frozen=True)
class CompressInfo:
    """What a compression device serves (its class configuration block)."""

    algorithms: list[str]
    levels: dict[str, tuple[int, int, int]]  # alg -> (min, max, default)
    max_streams: int
    max_chunk: int
    zstd_window_log: int
    max_stream_output: int
    max_count: int  # a one-shot decompress decodes at most this much to report NO_SPACE (else LIMIT)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def device_info(dev: Device) -> CompressInfo:
    cfg = ffi.new("struct synth_comp_cfg *")
    _check(lib.synth_comp_get_cfg(dev.handle, cfg), f"reading the compression configuration of {dev.where}")
    served = [a for a in CAlg if cfg.alg_mask & (1 << a)]
    return CompressInfo(
        algorithms=[a.label for a in served],
        levels={a.label: (cfg.levels[a].min, cfg.levels[a].max, cfg.levels[a].dflt) for a in served},
        max_streams=cfg.max_streams,
        max_chunk=cfg.max_chunk,
        zstd_window_log=cfg.zstd_window_log,
        max_stream_output=cfg.max_stream_output,
        max_count=cfg.max_count or cfg.max_stream_output,  # ABI 1.0 hosts: the stream limit
    )


class Compressor:
    """Compression ops on one queue of a compression device."""

    def __init__(self, queue: Queue) -> None:
        if queue.device.info().dev_class != DevClass.COMPRESS:
            raise errors.ValueError(f"{queue.device.where} is not a compression device")
        self.queue = queue
        self.info = device_info(queue.device)

    def compress(self, data: bytes | bytearray | memoryview, alg: CAlg | str, level: int = 0) -> bytes:
        """One complete frame of ``data``. Longer than the device's max_chunk, or too large for
        the queue's arena with its output: through a stream (the same single frame)."""
        a = _alg(alg)
        bound = comp_bound(len(data))
        if len(data) > self.info.max_chunk or len(data) + bound + 128 > self.queue.arena_size:
            with self.stream(a, level) as s:
                return s.compress(data) + s.finish()
        out = ffi.new("uint32_t *")
        with self.queue.scratch(len(data), bound) as (src, dst):
            src.write(data)
            st = _check(lib.synth_comp_compress(self.queue.handle, a, level, src.offset, len(data), dst.offset,
                                                bound, out), f"compressing with {a.label}")
            raise_for_status(st, out[0], f"compressing {len(data)} bytes with {a.label} level {level}")
            return dst.read(out[0])

    def decompress(self, data: bytes | bytearray | memoryview, alg: CAlg | str, max_output: int | None = None) -> bytes:
        """The data of one complete frame. Longer than max_chunk: through a stream. ``max_output``
        refuses (LimitError) output larger than that."""
        a = _alg(alg)
        room = self.queue.arena_size - len(data) - 128
        if len(data) > self.info.max_chunk or room < 4096:
            return self._decompress_stream(data, a, max_output)
        size = min(max(4 * len(data), 4096), max_output if max_output is not None else 1 << 62, room)
        while True:
            out = ffi.new("uint32_t *")
            with self.queue.scratch(len(data), size) as (src, dst):
                src.write(data)
                st = _check(lib.synth_comp_decompress(self.queue.handle, a, src.offset, len(data), dst.offset,
                                                      size, out), f"decompressing with {a.label}")
                if st == Status.OK:
                    return dst.read(out[0])
            if st == Status.LIMIT:  # too big for the device to count (max_count): a stream has no such limit
                return self._decompress_stream(data, a, max_output)
            if st != Status.NO_SPACE:
                raise_for_status(st, out[0], f"decompressing {len(data)} bytes with {a.label}")
            need = out[0] if out[0] > size else 2 * size
            if max_output is not None and need > max_output:
                raise LimitError(Status.LIMIT, f"decompressing with {a.label}: more than {max_output} bytes")
            if need > room:  # the output does not fit the arena in one piece
                return self._decompress_stream(data, a, max_output)
            size = need

    def _decompress_stream(self, data: bytes | bytearray | memoryview, a: CAlg, max_output: int | None) -> bytes:
        with self.stream(a, decompress=True) as s:
            out = s.decompress(data, final=True)
        if max_output is not None and len(out) > max_output:
            raise LimitError(Status.LIMIT, f"decompressing with {a.label}: more than {max_output} bytes")
        return out

    def stream(self, alg: CAlg | str, level: int = 0, *, decompress: bool = False) -> Stream:
        """A compression stream (or, with ``decompress``, a decompression stream) on the host."""
        return Stream.create(self, _alg(alg), Direction.DECOMPRESS if decompress else Direction.COMPRESS, level)


class Stream:
    """A (de)compression stream: state held by the backend, named by an id. Destroy it (or use
    ``with``) when done; a device reset destroys it too."""

    def __init__(self, comp: Compressor, sid: int, alg: CAlg, direction: Direction) -> None:
        self.comp = comp
        self.queue = comp.queue
        self.id = sid
        self.alg = alg
        self.direction = direction
        self.ended = False
        self.chunk = min(comp.info.max_chunk, max(4096, self.queue.arena_size // 4))
        self.out_size = min(STREAM_OUT, max(4096, self.queue.arena_size // 4))

    @classmethod
    def create(cls, comp: Compressor, alg: CAlg, direction: Direction, level: int = 0) -> Stream:
        p = ffi.new("struct synth_comp_stream_params *")
        p.alg = alg
        p.direction = direction
        p.level = level
        sid = ffi.new("uint32_t *")
        what = f"creating a {alg.label} {direction.name.lower()} stream"
        rc = _check(lib.synth_comp_stream_create(comp.queue.handle, p, sid), what)
        raise_for_status(rc, 0, what)
        return cls(comp, int(sid[0]), alg, direction)

    def destroy(self) -> None:
        rc = _check(lib.synth_comp_stream_destroy(self.queue.handle, self.id), f"destroying stream {self.id:#x}")
        raise_for_status(rc, 0, f"destroying stream {self.id:#x}")

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def _op(self, src: Buffer | None, n: int, flush: Flush, dst: Buffer) -> tuple[bytes, int]:
        out = ffi.new("uint32_t *")
        flags = ffi.new("uint16_t *")
        rc = _check(lib.synth_comp_stream_op(self.queue.handle, self.id, flush, src.offset if src else 0, n,
                                             dst.offset, dst.size, out, flags), f"stream {self.id:#x}")
        raise_for_status(rc, out[0], f"{self.alg.label} {self.direction.name.lower()} stream")
        return dst.read(out[0]), int(flags[0])

    def feed(self, data: bytes | bytearray | memoryview, flush: Flush = Flush.NONE) -> bytes:
        """Hand ``data`` to the stream in chunks and return the output it gives back; ``flush``
        applies after the last chunk."""
        view = memoryview(bytes(data))
        parts: list[bytes] = []
        with self.queue.scratch(self.chunk, self.out_size) as (src, dst):
            first = True
            while first or len(view):
                n = min(len(view), self.chunk)
                src.write(view[:n])
                view = view[n:]
                f = flush if not len(view) else Flush.NONE
                piece, flags = self._op(src if n else None, n, f, dst)
                parts.append(piece)
                while flags & CPL_MORE:
                    piece, flags = self._op(None, 0, f, dst)
                    parts.append(piece)
                if flags & CPL_END:
                    self.ended = True
                first = False
        return b"".join(parts)

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return self.feed(data, Flush.NONE)

    def flush(self) -> bytes:
        """All input so far becomes decodable output (byte-aligned)."""
        return self.feed(b"", Flush.SYNC)

    def finish(self, data: bytes | bytearray | memoryview = b"") -> bytes:
        """The rest of the output and the frame's end; the stream is complete (``ended``)."""
        return self.feed(data, Flush.FINISH)

    def decompress(self, data: bytes | bytearray | memoryview, final: bool = False) -> bytes:
        """Decoded output of ``data``. ``final``: no more input follows, so a stream that has not
        ended is truncated (CorruptDataError)."""
        return self.feed(data, Flush.FINISH if final else Flush.NONE)


__all__ = [
    "CompressInfo",
    "Compressor",
    "CorruptDataError",
    "LimitError",
    "Stream",
    "device_info",
    "raise_for_status",
]
