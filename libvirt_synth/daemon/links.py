# SPDX-License-Identifier: Apache-2.0
"""Which links a domain's packet devices get: the ``link[.CHANNEL]`` options of their metadata
(``wire:DEVICE[.CHANNEL]`` or ``tap:IFNAME``), within the domain and across domains.

A wire may end on a packet device of another domain: a service chain of VMs. It is asked for by
either end (or both); the VM that starts second completes it, because only then are both ends
served. Until then the end that is served has no link (its driver sees link-down), and the wire
waits. When one VM stops, its devices go and the other end is left with a clean link-down; the
wire is made again when that VM starts again, since its other end still asks for it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from libvirt_synth import capabilities, errors
from libvirt_synth.daemon.registry import DeviceRecord
from libvirt_synth.host.packet import LinkPlan

End = tuple[str, int]


def resolve(text: str, names: Collection[str]) -> End | None:
    """``NAME`` or ``NAME.CHANNEL`` against known device names (a name with a dot in it wins)."""
    if text in names:
        return text, 0
    base, dot, chan = text.rpartition(".")
    if dot and chan.isdigit() and base in names:
        return base, int(chan)
    return None


def asked(rec: DeviceRecord) -> list[tuple[int, str, str]]:
    """A packet device's links as its options ask for them: (channel, kind, target text)."""
    out = []
    for key, value in (rec.spec.get("options") or {}).items():
        chan = capabilities.link_channel(key)
        if chan is not None:
            kind, _, target = str(value).partition(":")
            out.append((chan, kind, target))
    return out


@dataclass
class DomainLinks:
    """The links to set when a domain's devices are served."""

    plan: LinkPlan = field(default_factory=LinkPlan)  # wires (also to served devices of other domains), TAPs
    waiting: list[str] = field(default_factory=list)  # wires whose other end is not served yet


def plan(records: list[DeviceRecord], served: Mapping[str, DeviceRecord]) -> DomainLinks:
    """The links of one domain's ``records``. ``served`` are the packet devices of other domains
    that are served now, by name. Raises ValueError for a link that can never be made: a wire
    to a device of this domain that is not a packet device, or a channel linked twice."""
    mine = {r.name: r for r in records if r.dev_class == capabilities.PACKET}
    known = set(mine) | set(served)
    out = DomainLinks()
    used: dict[End, tuple[object, str]] = {}

    def claim(end: End, link: object, what: str) -> None:
        if end in used and used[end][0] != link:
            raise errors.ValueError(f"{end[0]} channel {end[1]} is linked twice ({used[end][1]} and {what})")
        used[end] = (link, what)

    def add_wire(a: End, b: End, what: str) -> None:
        edge = tuple(sorted([a, b]))
        if a in used and used[a][0] == ("wire", edge):
            return  # the same wire, named from its other end
        claim(a, ("wire", edge), what)
        claim(b, ("wire", edge), what)
        out.plan.wires.append((a[0], a[1], b[0], b[1]))

    for r in mine.values():
        for chan, kind, target in asked(r):
            what = f"device {r.name}: option link{'.' + str(chan) if chan else ''}={kind}:{target}"
            if chan >= r.queues // 2:
                raise errors.ValueError(f"{what}: the device has no channel {chan} (it has {r.queues // 2})")
            if kind == "tap" and target:
                claim((r.name, chan), ("tap", target), what)
                out.plan.taps.append((r.name, chan, target))
            elif kind == "wire":
                peer = resolve(target, known | {x.name for x in records})
                if peer is not None and peer[0] not in known:
                    raise errors.ValueError(f"{what}: {peer[0]} is not a packet device")
                if peer is None:
                    claim((r.name, chan), ("wire", target), what)
                    out.waiting.append(f"{r.name}.{chan} -> {target} (not served yet)")
                    continue
                peer_rec = mine.get(peer[0]) or served[peer[0]]
                if peer[1] >= peer_rec.queues // 2:
                    raise errors.ValueError(f"{what}: {peer[0]} has no channel {peer[1]} (it has "
                                            f"{peer_rec.queues // 2})")
                add_wire((r.name, chan), peer, what)
            else:
                raise errors.ValueError(f"{what}: expected wire:DEVICE[.CHANNEL] or tap:IFNAME")
    # Wires that served devices of other domains ask for, to a device of this one.
    for s in served.values():
        for chan, kind, target in asked(s):
            peer = resolve(target, set(mine) | {s.name}) if kind == "wire" else None
            if peer is not None and peer[0] in mine:
                add_wire((s.name, chan), peer, f"device {s.name} (domain {s.domain_uuid}): link to {target}")
    # A served device of another domain that asks for a different link on a channel we want.
    for s in served.values():
        for chan, kind, target in asked(s):
            end = (s.name, chan)
            if end not in used:
                continue
            peer = resolve(target, known) if kind == "wire" else None
            link: object = ("tap", target) if kind == "tap" else None
            if peer is not None:
                link = ("wire", tuple(sorted([end, peer])))
            if link != used[end][0]:
                raise errors.ValueError(f"{used[end][1]}: {s.name} channel {chan} is linked to {kind}:{target} by "
                                        f"its own domain ({s.domain_uuid})")
    return out
