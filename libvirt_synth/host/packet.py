# SPDX-License-Identifier: Apache-2.0
"""Host side of packet devices: their options, their links (virtual wires, TAP interfaces) and
their counters. A typed wrapper over ``synth/host_packet.h``.

Options (``HostDeviceSpec.options``): ``max_frame``, the longest frame a device sends or accepts
(14..9216 bytes; default 9216). Links are set while no worker serves the devices, and both ends of
a wire must then be served by the same worker (``standalone.Backend.add_group`` does both):

    a = HostDevice.create(path_a, DevClass.PACKET, queues=2)
    b = HostDevice.create(path_b, DevClass.PACKET, queues=2)
    wire(a, 0, b, 0)
    worker.add(a); worker.add(b)
"""

from __future__ import annotations

import errno
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from libvirt_synth import errors
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import PKT_MAX_FRAME, PKT_MIN_FRAME, DevClass, Link
from libvirt_synth.capabilities import IFNAMSIZ

if TYPE_CHECKING:
    from libvirt_synth.host.device import HostDevice

OPTIONS = {"max_frame": f"longest frame in bytes ({PKT_MIN_FRAME}..{PKT_MAX_FRAME})"}


def class_params(options: dict[str, Any], keep: list[Any]) -> Any:
    """The C parameter block (struct synth_pkt_host_params) of a packet device's options."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise errors.ValueError(f"unknown packet device option(s) {sorted(unknown)}; known: {sorted(OPTIONS)}")
    p = ffi.new("struct synth_pkt_host_params *")
    mf = options.get("max_frame", 0)
    try:
        mf = int(mf)
    except (TypeError, ValueError):
        raise errors.ValueError(f"max_frame must be a number of bytes, got {mf!r}") from None
    if mf and not PKT_MIN_FRAME <= mf <= PKT_MAX_FRAME:
        raise errors.ValueError(f"max_frame must be {PKT_MIN_FRAME}..{PKT_MAX_FRAME} bytes, got {mf}")
    p.max_frame = mf
    keep.append(p)
    return p


def _check(dev: HostDevice, chan: int) -> None:
    if dev.spec.dev_class != DevClass.PACKET:
        raise errors.ValueError(f"{dev.path} is not a packet device")
    channels = dev.spec.queues // 2
    if not 0 <= chan < channels:
        raise errors.ValueError(f"{dev.path} has no channel {chan} (it has {channels})")


def _not_served(*devs: HostDevice) -> None:
    for d in devs:
        if d.worker is not None:
            raise errors.DeviceError(errno.EBUSY, f"{d.path} is served by a worker: set links before serving it")


def wire(a: HostDevice, chan_a: int, b: HostDevice, chan_b: int) -> None:
    """Connect channel ``chan_a`` of ``a`` and channel ``chan_b`` of ``b`` with a virtual wire
    (``a`` may be ``b``). Serve both from the same worker afterwards."""
    _check(a, chan_a)
    _check(b, chan_b)
    _not_served(a, b)
    rc = lib.synth_pkt_wire(a.handle, chan_a, b.handle, chan_b)
    what = f"wiring {a.path} channel {chan_a} to {b.path} channel {chan_b}"
    if rc == -errno.EBUSY:
        raise errors.ValueError(f"{what}: a channel already has a link (one link per channel; unlink it first)")
    if rc < 0:
        raise errors.from_errno(rc, what)


def tap(dev: HostDevice, chan: int, ifname: str) -> None:
    """Attach channel ``chan`` of ``dev`` to the TAP interface ``ifname`` (created if needed, in this
    thread's network namespace; needs CAP_NET_ADMIN unless it is a persistent TAP of this user)."""
    _check(dev, chan)
    _not_served(dev)
    name = ifname.encode()
    if not 0 < len(name) < IFNAMSIZ or b"/" in name or any(c <= 32 for c in name):
        raise errors.ValueError(f"bad interface name {ifname!r}: 1..{IFNAMSIZ - 1} characters, no '/' or spaces")
    rc = lib.synth_pkt_tap(dev.handle, chan, name)
    if rc == -errno.EBUSY:
        raise errors.ValueError(f"attaching {dev.path} channel {chan} to TAP {ifname}: the channel already has "
                                "a link, or another process holds that TAP")
    if rc < 0:
        raise errors.from_errno(rc, f"attaching {dev.path} channel {chan} to TAP {ifname}")


def unlink(dev: HostDevice, chan: int) -> None:
    """Remove the link of a channel (the other end of a wire then drops and counts)."""
    _check(dev, chan)
    _not_served(dev)
    rc = lib.synth_pkt_unlink(dev.handle, chan)
    if rc < 0:
        raise errors.from_errno(rc, f"unlinking {dev.path} channel {chan}")


def link(dev: HostDevice, chan: int) -> dict[str, Any]:
    """What channel ``chan`` is linked to."""
    _check(dev, chan)
    li = ffi.new("struct synth_pkt_link_info *")
    if lib.synth_pkt_get_link(dev.handle, chan, li) < 0:
        raise errors.ValueError(f"{dev.path} channel {chan}: no such packet channel")
    kind = Link(li.link)
    out: dict[str, Any] = {"link": kind.name.lower()}
    if kind == Link.WIRE:
        out |= {"peer": ffi.string(li.peer_name).decode(errors="replace") if li.peer_alive else None,
                "peer_channel": li.peer_chan, "peer_alive": bool(li.peer_alive)}
    elif kind == Link.TAP:
        out["ifname"] = ffi.string(li.ifname).decode(errors="replace")
    return out


STAT_FIELDS = ("tx_frames", "tx_bytes", "rx_frames", "rx_bytes", "tx_drops", "tx_bad", "tx_no_link",
               "tx_peer_full", "tx_tap_error", "rx_drops", "rx_no_buffer", "rx_too_long", "rx_bad_frame",
               "rx_bad_desc", "tap_read_errors", "channels", "max_frame")


def stats(dev: HostDevice) -> dict[str, Any]:
    """Packet counters of a device (host side), with the links of its channels."""
    st = ffi.new("struct synth_pkt_stats *")
    if lib.synth_pkt_get_stats(dev.handle, st) < 0:
        raise errors.ValueError(f"{dev.path} is not a packet device")
    out: dict[str, Any] = {k: int(getattr(st, k)) for k in STAT_FIELDS}
    out["links"] = [link(dev, c) for c in range(st.channels)]
    return out


def parse_endpoint(text: str, names: Collection[str]) -> tuple[str, int]:
    """'NAME' or 'NAME.CHAN' -> (NAME, CHAN). A name that is itself a device wins over the split."""
    if text in names:
        return text, 0
    base, dot, chan = text.rpartition(".")
    if dot and chan.isdigit() and base in names:
        return base, int(chan)
    raise errors.ValueError(f"{text!r} names no device served here (expected NAME or NAME.CHANNEL, "
                            f"with NAME one of: {', '.join(sorted(names))})")


@dataclass
class LinkPlan:
    """Links asked for on a command line, by device name: wires (name, channel, name, channel) and
    TAPs (name, channel, interface)."""

    wires: list[tuple[str, int, str, int]] = field(default_factory=list)
    taps: list[tuple[str, int, str]] = field(default_factory=list)

    def groups(self, names: Sequence[str]) -> list[list[str]]:
        """The devices in groups that must share a worker (joined by wires), in the given order."""
        group = {n: {n} for n in names}
        for a, _, b, _ in self.wires:
            merged = group[a] | group[b]
            for n in merged:
                group[n] = merged
        out: list[list[str]] = []
        seen: set[str] = set()
        for n in names:
            if n not in seen:
                members = [m for m in names if m in group[n]]
                seen.update(members)
                out.append(members)
        return out

    def connect(self, devs: Sequence[HostDevice]) -> None:
        """Set the links among ``devs`` (the members of one group), before they are served."""
        by_name = {d.spec.name: d for d in devs}
        for a, ca, b, cb in self.wires:
            if a in by_name:
                wire(by_name[a], ca, by_name[b], cb)
        for n, c, ifname in self.taps:
            if n in by_name:
                tap(by_name[n], c, ifname)


def parse_links(names: Collection[str], wires: Sequence[str], taps: Sequence[str]) -> LinkPlan:
    """Parse ``--wire A[.C]:B[.C]`` and ``--tap DEV[.C][=IFNAME]`` values against the device names
    (IFNAME defaults to the device name). Checks that no channel gets two links."""
    plan = LinkPlan()
    used: dict[tuple[str, int], str] = {}

    def claim(end: tuple[str, int], what: str) -> None:
        if end in used:
            raise errors.ValueError(f"{end[0]} channel {end[1]} is linked twice ({used[end]} and {what})")
        used[end] = what

    for text in wires:
        parts = text.split(":")
        if len(parts) != 2:
            raise errors.ValueError(f"bad --wire {text!r}: expected A:B or A.CHANNEL:B.CHANNEL")
        a, ca = parse_endpoint(parts[0], names)
        b, cb = parse_endpoint(parts[1], names)
        claim((a, ca), f"--wire {text}")
        if (b, cb) != (a, ca):
            claim((b, cb), f"--wire {text}")
        plan.wires.append((a, ca, b, cb))
    for text in taps:
        end_text, eq, ifname = text.partition("=")
        n, c = parse_endpoint(end_text, names)
        ifname = ifname if eq else n
        if not ifname:
            raise errors.ValueError(f"bad --tap {text!r}: expected DEV[.CHANNEL][=IFNAME]")
        claim((n, c), f"--tap {text}")
        plan.taps.append((n, c, ifname))
    return plan


__all__ = ["OPTIONS", "LinkPlan", "class_params", "link", "parse_endpoint", "parse_links", "stats", "tap",
           "unlink", "wire"]
