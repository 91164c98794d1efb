# SPDX-License-Identifier: Apache-2.0
"""Guest API for packet devices: a typed wrapper over ``synth/guest_packet.h``.

A packet device has channels; each one sends and receives Ethernet frames with the paper's three
primitives, with burst semantics (a call returns how many frames it handled; partial is normal):

    with Device.open("/dev/shm/vnf0-net") as dev:
        ch = PacketChannel(dev, 0)
        sent = ch.send_packets([frame1, frame2])      # how many were taken
        if ch.are_there_packets():
            for frame in ch.give_me_packets(32):      # bytes, oldest first
                ...

Zero copy: ``alloc`` hands out transmit buffers in the arena to fill in place and ``send`` them;
``give_me_packets_zc`` hands out received frames in place (a memoryview each), to be given back
with ``release``. A channel is single-threaded, like a queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from libvirt_synth import errors
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import DevClass, Link
from libvirt_synth.guest.device import Device


class Packet:
    """A packet buffer in a queue arena: a received frame, or a transmit buffer to fill."""

    __slots__ = ("_ptr", "cap", "id", "len")

    def __init__(self, ptr: Any, length: int, cap: int, pid: int) -> None:
        self._ptr = ptr
        self.len = length
        self.cap = cap
        self.id = pid

    @property
    def data(self) -> memoryview:
        """The frame (``len`` bytes), in place."""
        return memoryview(ffi.buffer(self._ptr, self.len))

    @property
    def buffer(self) -> memoryview:
        """The whole buffer (``cap`` bytes), in place."""
        return memoryview(ffi.buffer(self._ptr, self.cap))

    def write(self, frame: bytes | bytearray | memoryview) -> None:
        """Copy a frame into a transmit buffer and set its length."""
        if not 1 <= len(frame) <= self.cap:
            raise errors.ValueError(f"a {len(frame)}-byte frame does not fit a {self.cap}-byte packet buffer")
        self.buffer[: len(frame)] = frame
        self.len = len(frame)

    def tobytes(self) -> bytes:
        return bytes(self.data)


def _array(pkts: Sequence[Packet]) -> Any:
    arr = ffi.new("struct synth_pkt[]", max(1, len(pkts)))
    for i, p in enumerate(pkts):
        arr[i].data = p._ptr
        arr[i].len = p.len
        arr[i].cap = p.cap
        arr[i].id = p.id
    return arr


class PacketChannel:
    """Channel ``index`` of an open packet device: its transmit and receive queues and buffer pools.

    ``buf_size`` (bytes per buffer; 0: the device's max_frame rounded up to 64), ``rx_bufs`` and
    ``tx_bufs`` (0: as many as the ring and the arena allow) size the pools. Open a channel once
    per device open; a device reset invalidates it (open it again)."""

    def __init__(self, device: Device, index: int = 0, *, buf_size: int = 0, rx_bufs: int = 0,
                 tx_bufs: int = 0) -> None:
        info = device.info()
        if info.dev_class != DevClass.PACKET:
            raise errors.ValueError(f"{device.where} is not a packet device (class {info.dev_class})")
        channels = info.num_queues // 2
        if not 0 <= index < channels:
            raise errors.ValueError(f"channel {index} out of range (device has {channels})")
        for name, v in (("buf_size", buf_size), ("rx_bufs", rx_bufs), ("tx_bufs", tx_bufs)):
            if not 0 <= v <= 0xFFFFFFFF:
                raise errors.ValueError(f"{name} {v} out of range")
        opts = ffi.new("struct synth_pkt_chan_opts *")
        opts.buf_size, opts.rx_bufs, opts.tx_bufs = buf_size, rx_bufs, tx_bufs
        out = ffi.new("struct synth_pkt_chan **")
        rc = lib.synth_pkt_chan_open(device.handle, index, opts, out)
        if rc < 0:
            raise errors.from_errno(rc, f"opening channel {index} of {device.where}")
        self.device = device
        self.index = index
        self._h = ffi.gc(out[0], lib.synth_pkt_chan_close)
        st = self.stats()
        self.buf_size: int = st["buf_size"]
        self.max_frame: int = st["max_frame"]

    @property
    def handle(self) -> Any:
        if self._h is None:
            raise errors.DeviceError(f"channel {self.index} of {self.device.where} is closed")
        return self._h

    def close(self) -> None:
        if self._h is not None:
            ffi.release(self._h)
            self._h = None

    def __enter__(self) -> PacketChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- receive ----

    def are_there_packets(self) -> int:
        """How many received frames are ready now (never blocks)."""
        return int(lib.synth_pkt_are_there_packets(self.handle))

    def give_me_packets_zc(self, max_n: int = 32) -> list[Packet]:
        """Receive burst, zero copy: up to ``max_n`` ready frames, in place. Give them back with
        ``release`` (their buffers are posted again)."""
        if max_n < 1:
            return []
        arr = ffi.new("struct synth_pkt[]", max_n)
        n = lib.synth_pkt_give_me_packets(self.handle, arr, max_n)
        return [Packet(arr[i].data, arr[i].len, arr[i].cap, arr[i].id) for i in range(n)]

    def release(self, pkts: Iterable[Packet]) -> None:
        """Give received packets back."""
        lst = list(pkts)
        if lst:
            lib.synth_pkt_rx_free(self.handle, _array(lst), len(lst))

    def give_me_packets(self, max_n: int = 32) -> list[bytes]:
        """Receive burst: up to ``max_n`` ready frames, copied out (oldest first)."""
        pkts = self.give_me_packets_zc(max_n)
        frames = [p.tobytes() for p in pkts]
        self.release(pkts)
        return frames

    def wait(self, timeout: float = 5.0) -> None:
        """Wait until a frame is ready; TimeoutError if none comes."""
        rc = lib.synth_pkt_wait_rx(self.handle, max(1, int(timeout * 1000)))
        if rc < 0:
            raise errors.from_errno(rc, f"waiting for a frame on channel {self.index}")

    def receive(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """Wait for and return ``count`` frames."""
        out: list[bytes] = []
        while len(out) < count:
            self.wait(timeout)
            out.extend(self.give_me_packets(count - len(out)))
        return out

    # ---- transmit ----

    def alloc(self, n: int = 1) -> list[Packet]:
        """Up to ``n`` free transmit buffers (fewer when the pool is short)."""
        if n < 1:
            return []
        arr = ffi.new("struct synth_pkt[]", n)
        got = lib.synth_pkt_tx_alloc(self.handle, arr, n)
        return [Packet(arr[i].data, 0, arr[i].cap, arr[i].id) for i in range(got)]

    def send(self, pkts: Sequence[Packet]) -> int:
        """Transmit burst, zero copy: returns how many were taken, k. ``pkts[:k]`` now belong to the
        device; ``pkts[k:]`` are still yours (send them again or ``free`` them)."""
        if not pkts:
            return 0
        return int(lib.synth_pkt_send_packets(self.handle, _array(pkts), len(pkts)))

    def free(self, pkts: Iterable[Packet]) -> None:
        """Give unsent transmit buffers back to the pool."""
        lst = list(pkts)
        if lst:
            lib.synth_pkt_tx_free(self.handle, _array(lst), len(lst))

    def send_packets(self, frames: Sequence[bytes | bytearray | memoryview]) -> int:
        """Transmit burst: copy the frames into transmit buffers and send them, in order. Returns
        how many were taken (partial when the pool or the ring is short)."""
        for f in frames:
            if not 1 <= len(f) <= self.buf_size:
                raise errors.ValueError(f"a {len(f)}-byte frame does not fit the {self.buf_size}-byte buffers "
                                        "of this channel")
        pkts = self.alloc(len(frames))
        for p, f in zip(pkts, frames, strict=False):
            p.write(f)
        sent = self.send(pkts)
        self.free(pkts[sent:])
        return sent

    def reclaim(self) -> int:
        """Take the transmit completions that arrived; returns how many."""
        return int(lib.synth_pkt_tx_reclaim(self.handle))

    # ---- counters ----

    def stats(self) -> dict[str, int]:
        """What this channel saw (guest side)."""
        st = ffi.new("struct synth_pkt_chan_stats *")
        lib.synth_pkt_chan_get_stats(self.handle, st)
        return {k: int(getattr(st, k)) for k in ("tx_sent", "tx_ok", "tx_dropped", "rx_frames", "rx_dropped",
                                                  "tx_free", "rx_posted", "rx_ready", "buf_size", "max_frame")}

    def counters(self) -> dict[str, Any]:
        """The device's own counters and links, as the host publishes them."""
        return device_counters(self.device)


def device_counters(device: Device) -> dict[str, Any]:
    """The packet device's configuration block: counters (all channels) and the link of each channel."""
    cfg = ffi.new("struct synth_pkt_cfg *")
    rc = lib.synth_pkt_dev_counters(device.handle, cfg)
    if rc < 0:
        raise errors.from_errno(rc, f"reading the counters of {device.where}")
    out: dict[str, Any] = {k: int(getattr(cfg, k)) for k in (
        "channels", "max_frame", "min_frame", "tx_frames", "rx_frames", "tx_drops", "rx_drops",
        "tx_bytes", "rx_bytes")}
    out["links"] = [Link(cfg.link[i]).name.lower() if cfg.link[i] in Link._value2member_map_ else int(cfg.link[i])
                    for i in range(min(cfg.channels, lib.SYNTH_PKT_MAX_CHANNELS))]
    return out


__all__ = ["Packet", "PacketChannel", "device_counters"]
