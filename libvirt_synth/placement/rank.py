# SPDX-License-Identifier: Apache-2.0
"""Placement: which hosts can take a VDU, best first, and why each other host cannot.

Each host inventory is reduced once to a small ``Host``: per capability, the capacity left
(calibrated capacity minus what defined VMs committed), the mean time per op and the sessions one
device holds. A VDU's asks (``Vdu.demand()``: KPIs summed per capability over its devices) are then
checked against every host:

- a **mandatory** ask the host cannot meet rejects the host, with every reason, e.g.
  ``host7: aes-256-gcm 8.1 Gb/s free < 12 Gb/s asked``;
- a **preferred** ask only ranks: hosts meeting more preferred asks come first;
- among equals, the host left with the most headroom comes first (spread): headroom is, over the
  asks with a measured capacity, the smallest fraction of a capability's capacity still free after
  the VDU is placed. Then the host name, so the order is stable.

Capacity that was not measured (packet I/O; a plugin not calibrated) cannot reject a host: the
verdict carries a note instead. See docs/inventory.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from libvirt_synth.capabilities import CAPABILITIES, KPIS
from libvirt_synth.placement.fleet import OPS_KPI, Fleet, Host, Row, default_index, load, no_gc
from libvirt_synth.vnfd.model import Ask, Vdu

# Loading is libvirt_synth.placement.fleet's (its index and RACY_NS too); these names are here as
# well, where callers have always found them.
__all__ = ["OPS_KPI", "Fleet", "Host", "Result", "Row", "Verdict", "Verdicts", "ask_text", "default_index",
           "describe_ask", "fmt", "judge", "load", "rank"]


class Verdict:
    """One host's answer to a VDU: whether it fits, why not, and how well."""

    __slots__ = ("headroom", "host", "fits", "notes", "preferred_met", "preferred_missed", "reasons")

    def __init__(self, host: str, fits: bool, reasons: list[str] | None = None, notes: list[str] | None = None,
                 preferred_met: list[str] | None = None, preferred_missed: list[str] | None = None,
                 headroom: float | None = None) -> None:
        self.host = host
        self.fits = fits
        self.reasons = reasons if reasons is not None else []            # why a mandatory ask is not met
        self.notes = notes if notes is not None else []                  # what could not be checked
        self.preferred_met = preferred_met if preferred_met is not None else []
        self.preferred_missed = preferred_missed if preferred_missed is not None else []  # with the reason
        self.headroom = headroom

    def __repr__(self) -> str:
        return f"Verdict({self.host!r}, fits={self.fits}, reasons={self.reasons}, headroom={self.headroom})"

    def explain(self) -> str:
        return f"{self.host}: " + "; ".join(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        d = {"host": self.host, "fits": self.fits, "headroom": None if self.headroom is None
             else round(self.headroom, 4), "preferred_met": self.preferred_met,
             "preferred_missed": self.preferred_missed, "notes": self.notes}
        if not self.fits:
            d["reasons"] = self.reasons
            d["explanation"] = self.explain()
        return d


def fmt(value: float) -> str:
    """8.1, 12, 2,000,000: one decimal under 100, else grouped integers."""
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2g}"


def describe_ask(a: Ask) -> dict[str, Any]:
    return {"capability": a.capability, "support": "mandatory" if a.mandatory else "preferred", "kpis": a.kpis,
            "devices": a.devices}


def ask_text(a: Ask) -> str:
    parts = [f"{fmt(v)} {KPIS[k].unit}" if k != "max_latency_us" else f"latency <= {fmt(v)} us"
             for k, v in a.kpis.items()]
    support = "mandatory" if a.mandatory else "preferred"
    return f"{a.capability}" + (f" {', '.join(parts)}" if parts else "") + f" ({support})"


@dataclass(frozen=True)
class _Compiled:
    """An ask prepared for the host loop: the KPIs as locals, the notes as ready strings."""

    ask: Ask
    cap: str
    mandatory: bool
    gbps: float | None
    ops: float | None
    latency: float | None
    sessions: float
    device_gbps: float
    device_ops: float
    note_gbps: str
    note_ops: str
    note_latency: str
    note_sessions: str
    unit: str  # of the ops: ops/s, or packets/s for packet I/O

    @classmethod
    def of(cls, a: Ask) -> _Compiled:
        k, c = a.kpis, a.capability
        cap = CAPABILITIES.get(c)
        ops_kpi = OPS_KPI.get(cap.dev_class if cap else "", "ops_per_s")
        unit = KPIS[ops_kpi].unit
        return cls(a, c, a.mandatory, k.get("throughput_gbps"), k.get(ops_kpi), k.get("max_latency_us"),
                   a.per_device_sessions, a.per_device_gbps, a.per_device_ops,
                   f"{c} Gb/s not measured on this host: {fmt(k.get('throughput_gbps') or 0)} Gb/s not checked",
                   f"{c} {unit} not measured on this host: {fmt(k.get(ops_kpi) or 0)} {unit} not checked",
                   f"{c} latency not measured on this host: <= {fmt(k.get('max_latency_us') or 0)} us not checked",
                   f"{c} sessions per device not known on this host: not checked", unit)


def _check(c: _Compiled, row: Row | None, notes: list[str]) -> tuple[list[str] | None, float | None]:
    """Why a host cannot meet one ask (None: it can) and the headroom it leaves."""
    cap = c.cap
    if row is None:
        return [f"{cap} not offered (no plugin serves it)"], None
    free_gbps, free_ops, cap_gbps, cap_ops, latency, per_dev, core_gbps, core_ops = row
    why: list[str] | None = None
    head: float | None = None
    want = c.gbps
    if want is not None:
        if free_gbps is None or not cap_gbps:
            notes.append(c.note_gbps)
        elif free_gbps < want:
            why = [f"{cap} {fmt(max(free_gbps, 0.0))} Gb/s free < {fmt(want)} Gb/s asked"]
        else:
            head = (free_gbps - want) / cap_gbps
    want = c.ops
    if want is not None:
        if free_ops is None or not cap_ops:
            notes.append(c.note_ops)
        elif free_ops < want:
            why = (why or []) + [f"{cap} {fmt(max(free_ops, 0.0))} {c.unit} free < {fmt(want)} {c.unit} asked"]
        else:
            h = (free_ops - want) / cap_ops
            head = h if head is None or h < head else head
    # A device is served by one worker thread: what one device asks must fit one core.
    if c.device_gbps and core_gbps is not None and c.device_gbps > core_gbps:
        why = (why or []) + [f"{cap} {fmt(c.device_gbps)} Gb/s on one device > {fmt(core_gbps)} Gb/s one worker "
                             "core serves"]
    if c.device_ops and core_ops is not None and c.device_ops > core_ops:
        why = (why or []) + [f"{cap} {fmt(c.device_ops)} {c.unit} on one device > {fmt(core_ops)} {c.unit} one "
                             "worker core serves"]
    want = c.latency
    if want is not None:
        if latency is None:
            notes.append(c.note_latency)
        elif latency > want:
            why = (why or []) + [f"{cap} latency {fmt(latency)} us > {fmt(want)} us asked"]
    if c.sessions:
        if per_dev is None:
            notes.append(c.note_sessions)
        elif c.sessions > per_dev:
            why = (why or []) + [f"{cap} {fmt(c.sessions)} sessions on one device > {fmt(per_dev)} a device holds"]
    return why, head


def _judge(host: Host, asks: Sequence[_Compiled]) -> Verdict:
    caps = host.caps
    fits = True
    headroom: float | None = None
    reasons: list[str] = []
    notes: list[str] = []
    met: list[str] = []
    missed: list[str] = []
    for c in asks:
        why, head = _check(c, caps.get(c.cap), notes)
        if c.mandatory:
            if why:
                fits = False
                reasons += why
            elif head is not None and (headroom is None or head < headroom):
                headroom = head
        elif why:
            missed += why
        else:
            met.append(c.cap)
    return Verdict(host.name, fits, reasons, notes, met, missed, headroom)


class Verdicts(Sequence[Verdict]):
    """The verdicts of a ranking, in its order, each made in full (every reason and note, in
    words) only when it is looked at: ranking decides the order from the numbers alone, and most
    callers look at the first few hosts only. Compares equal to a list of the same verdicts."""

    __slots__ = ("_asks", "_hosts", "_made")

    def __init__(self, hosts: list[Host], asks: Sequence[_Compiled]) -> None:
        self._hosts = hosts
        self._asks = asks
        self._made: list[Verdict | None] = [None] * len(hosts)

    def __len__(self) -> int:
        return len(self._hosts)

    def _one(self, i: int) -> Verdict:
        v = self._made[i]
        if v is None:
            v = self._made[i] = _judge(self._hosts[i], self._asks)
        return v

    @overload
    def __getitem__(self, i: int) -> Verdict: ...

    @overload
    def __getitem__(self, i: slice) -> list[Verdict]: ...

    def __getitem__(self, i: int | slice) -> Verdict | list[Verdict]:
        if isinstance(i, slice):
            return [self._one(j) for j in range(*i.indices(len(self._hosts)))]
        return self._one(range(len(self._hosts))[i])

    def __iter__(self) -> Iterator[Verdict]:
        return (self._one(j) for j in range(len(self._hosts)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Verdicts, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by content, as a list

    def __repr__(self) -> str:
        return f"Verdicts({len(self)} hosts)"

    @property
    def hosts(self) -> list[Host]:
        """The hosts, in this order (no verdict is made)."""
        return self._hosts

    def notes(self) -> list[str]:
        """Every distinct note of these verdicts, sorted (no verdict is made)."""
        found: list[str] = []
        for h in self._hosts:
            caps = h.caps
            for c in self._asks:
                row = caps.get(c.cap)
                if row is not None:
                    _check(c, row, found)
        return sorted(set(found))


@dataclass
class Result:
    vdu: str
    asks: list[Ask]
    ranked: Sequence[Verdict]    # Verdicts: each made when looked at
    rejected: Sequence[Verdict]

    def as_dict(self, top: int | None = None) -> dict[str, Any]:
        return {"vdu": self.vdu, "asks": [describe_ask(a) for a in self.asks], "hosts": len(self.ranked)
                + len(self.rejected), "fits": len(self.ranked),
                "ranked": [v.as_dict() for v in self.ranked[:top]],
                "rejected": [v.as_dict() for v in self.rejected[:top]]}

    def notes(self) -> list[str]:
        """Every distinct note of the hosts that fit (what could not be checked), sorted."""
        if isinstance(self.ranked, Verdicts):
            return self.ranked.notes()
        return sorted({n for v in self.ranked for n in v.notes})


def judge(host: Host, asks: Sequence[Ask]) -> Verdict:
    """One host's verdict on a VDU's asks."""
    return _judge(host, [_Compiled.of(a) for a in asks])


def rank(hosts: Iterable[Host], vdu: Vdu) -> Result:
    with no_gc():
        return _rank(hosts, vdu)


def _order(hosts: Iterable[Host], asks: Sequence[_Compiled]) -> tuple[list[Host], list[Host]]:
    """The hosts that fit, best first, and those that do not, by name: what ``_judge`` decides of
    each (fits, headroom, preferred asks met), from the numbers alone, without its words. A host
    is dropped at its first mandatory ask unmet. tests/test_placement.py checks that the two agree
    on every host of a seeded fleet."""
    plan = [(c.cap, c.mandatory, c.gbps, c.ops, c.latency, c.sessions, c.device_gbps, c.device_ops) for c in asks]
    fits: list[tuple[int, float, str, int, Host]] = []
    rejected: list[tuple[str, int, Host]] = []
    for i, h in enumerate(hosts):
        caps = h.caps
        headroom: float | None = None
        met = 0
        for cap, mandatory, gbps, ops, latency, sessions, dev_gbps, dev_ops in plan:
            row = caps.get(cap)
            ok = row is not None
            head: float | None = None
            if row is not None:
                free_gbps, free_ops, cap_gbps, cap_ops, lat, per_dev, core_gbps, core_ops = row
                if gbps is not None and free_gbps is not None and cap_gbps:
                    if free_gbps < gbps:
                        ok = False
                    else:
                        head = (free_gbps - gbps) / cap_gbps
                if ops is not None and free_ops is not None and cap_ops:
                    if free_ops < ops:
                        ok = False
                    else:
                        h2 = (free_ops - ops) / cap_ops
                        head = h2 if head is None or h2 < head else head
                if ok and ((dev_gbps and core_gbps is not None and dev_gbps > core_gbps)
                           or (dev_ops and core_ops is not None and dev_ops > core_ops)
                           or (latency is not None and lat is not None and lat > latency)
                           or (sessions and per_dev is not None and sessions > per_dev)):
                    ok = False
            if mandatory:
                if not ok:
                    rejected.append((h.name, i, h))
                    break
                if head is not None and (headroom is None or head < headroom):
                    headroom = head
            elif ok:
                met += 1
        else:
            fits.append((-met, -(headroom if headroom is not None else 1.0), h.name, i, h))
    fits.sort()
    rejected.sort()
    return [e[4] for e in fits], [e[2] for e in rejected]


def _rank(hosts: Iterable[Host], vdu: Vdu) -> Result:
    asks = vdu.demand()
    compiled = [_Compiled.of(a) for a in asks]
    fits, rejected = _order(hosts, compiled)
    return Result(vdu.name, asks, Verdicts(fits, compiled), Verdicts(rejected, compiled))
