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

import contextlib
import gc
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from libvirt_synth import errors
from libvirt_synth.capabilities import CAPABILITIES, KPIS
from libvirt_synth.inventory import model
from libvirt_synth.vnfd.model import Ask, Vdu

# (free throughput Gb/s, free ops/s, capacity Gb/s, capacity ops/s, latency us, sessions per device,
#  Gb/s of one worker core, ops/s of one worker core); for packet I/O the ops are packets.
Row = tuple[float | None, float | None, float | None, float | None, float | None, float | None, float | None,
            float | None]
# The rate KPI each class is counted in (capacity, committed and asked alike).
OPS_KPI = {"packet": "packets_per_s"}


_EMPTY: dict[str, Any] = {}


class Host(NamedTuple):
    """What placement needs of one inventory, precomputed (a tuple: cheap to build by the
    thousand, and what the index stores)."""

    name: str
    caps: dict[str, Row]
    source: str = ""

    @classmethod
    def from_inventory(cls, doc: dict[str, Any], source: str = "") -> Host:
        # What model.number() says of each value, with the common cases (None, a finite float)
        # inline: this runs for every capability of every host of a cold load.
        num = model.number
        c = doc.get("committed")
        used = c.get("by_capability") if isinstance(c, dict) else None
        if not isinstance(used, dict):
            used = _EMPTY
        caps: dict[str, Row] = {}
        for cap, e in doc["capacity"].items():
            if not isinstance(e, dict):
                continue
            u = used.get(cap, _EMPTY)
            if not isinstance(u, dict):
                u = _EMPTY
            ops_kpi = "packets_per_s" if e.get("class") == "packet" else "ops_per_s"  # OPS_KPI
            gbps = e.get("throughput_gbps")
            ops = e.get(ops_kpi)
            core = e.get("gbps_per_core")
            lat = e.get("latency_us")
            per_dev = e.get("sessions_per_device")
            if gbps is not None and (type(gbps) is not float or gbps - gbps):  # nan - nan, inf - inf: nan
                gbps = num(gbps)
            if ops is not None and (type(ops) is not float or ops - ops):
                ops = num(ops)
            if core is not None and (type(core) is not float or core - core):
                core = num(core)
            if lat is not None and (type(lat) is not float or lat - lat):
                lat = num(lat)
            if per_dev is not None and (type(per_dev) is not float or per_dev - per_dev):
                per_dev = num(per_dev)
            if gbps is not None:
                took = u.get("throughput_gbps")
                free_gbps: float | None = gbps - (num(took) or 0.0) if took is not None else gbps
            else:
                free_gbps = None
            if ops is not None:
                took = u.get(ops_kpi)
                free_ops: float | None = ops - (num(took) or 0.0) if took is not None else ops
            else:
                free_ops = None
            caps[cap] = (free_gbps, free_ops, gbps, ops, lat, per_dev, core,
                         ops * core / gbps if ops is not None and core is not None and gbps else None)
        return cls(str(doc["host"]), caps, source)


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


@dataclass
class Result:
    vdu: str
    asks: list[Ask]
    ranked: list[Verdict]
    rejected: list[Verdict]

    def as_dict(self, top: int | None = None) -> dict[str, Any]:
        return {"vdu": self.vdu, "asks": [describe_ask(a) for a in self.asks], "hosts": len(self.ranked)
                + len(self.rejected), "fits": len(self.ranked),
                "ranked": [v.as_dict() for v in self.ranked[:top]],
                "rejected": [v.as_dict() for v in self.rejected[:top]]}


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


def judge(host: Host, asks: Sequence[Ask]) -> Verdict:
    """One host's verdict on a VDU's asks."""
    return _judge(host, [_Compiled.of(a) for a in asks])


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Bulk work that allocates many small acyclic objects (a verdict per host, a host per inventory)
    runs with the cyclic garbage collector paused: its passes over the whole fleet, triggered by
    allocation counts alone, cost 3-4 times the work itself. Restored on exit."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def rank(hosts: Iterable[Host], vdu: Vdu) -> Result:
    with _no_gc():
        return _rank(hosts, vdu)


def _rank(hosts: Iterable[Host], vdu: Vdu) -> Result:
    asks = vdu.demand()
    compiled = [_Compiled.of(a) for a in asks]
    fits: list[Verdict] = []
    rejected: list[Verdict] = []
    for h in hosts:
        v = _judge(h, compiled)
        (fits if v.fits else rejected).append(v)
    fits.sort(key=lambda v: (-len(v.preferred_met), -(v.headroom if v.headroom is not None else 1.0), v.host))
    rejected.sort(key=lambda v: v.host)
    return Result(vdu.name, asks, fits, rejected)


# ---- loading a fleet ----

@dataclass
class Fleet:
    hosts: list[Host]
    unreadable: list[tuple[str, str]]  # (path, why)
    parsed: int = 0      # documents parsed in this load
    from_index: int = 0  # hosts taken from the index

    def problems(self) -> list[str]:
        return [f"{p}: {why}" for p, why in self.unreadable]


INDEX_VERSION = 3
#: How recent a file's last change (mtime or ctime) may be, against the clock when the index was
#: taken, for its entry still to be trusted: a file rewritten within one timestamp tick of the
#: scan keeps its mtime and ctime (Linux stamps files from a clock that moves in ticks of a
#: jiffy; FAT's are 2 s), so such an entry is parsed again on the next load, as git does with
#: "racily clean" files.
RACY_NS = 2_000_000_000

# (mtime_ns, ctime_ns, size, inode) of a file: any write changes the ctime, a rename the inode.
Key = tuple[int, int, int, int]


def _files(paths: Sequence[str]) -> list[tuple[str, Key]]:
    """(path, key) of every inventory, sorted: files given, and *.json of directories given (one
    that vanishes while this runs is left out)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            with os.scandir(p) as it:
                for e in it:
                    if e.name.endswith(".json") and not e.name.startswith(".") and e.is_file():
                        try:
                            st = e.stat()
                        except FileNotFoundError:
                            continue
                        out.append((e.path, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)))
        elif os.path.exists(p):
            st = os.stat(p)
            out.append((p, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)))
        else:
            raise errors.NotFoundError(f"inventory {p} does not exist (give a directory of <host>.json "
                                          "documents or a file)")
    out.sort()
    return out


def _parse(path: str, size: int) -> tuple[str, Any]:
    """One inventory file -> ("ok", host as a plain tuple), ("error", why) or ("gone", path).
    Only the members placement needs are read (model.read_head: the writer puts them first, in
    the first few KiB)."""
    try:
        doc = model.check(model.read_head(path, size), path)
        return "ok", tuple(Host.from_inventory(doc, path))
    except FileNotFoundError:
        return "gone", path
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return "error", str(e).removeprefix(f"{path}: ")


def load(paths: Sequence[str], index: str | None = None) -> Fleet:
    """Every inventory under ``paths`` (directories of ``*.json``, or files). With ``index`` (a file
    path), the precomputed hosts of unchanged files are taken from it (same mtime, ctime, size and
    inode, and not changed within RACY_NS of the scan that indexed them), and it is rewritten when
    anything changed, appeared or disappeared. The index is this Python's ``marshal`` format
    (plain data, no code), about ten times faster to read than JSON; a missing, corrupt or stale
    one is rebuilt."""
    with _no_gc():
        return _load(paths, index)


def _load(paths: Sequence[str], index: str | None = None) -> Fleet:
    stamp = time.time_ns()  # before the scan: a change after this shows in a later one
    files = _files(paths)
    cached, trusted_before = _read_index(index) if index else ({}, 0)
    fresh: dict[str, Any] = {}
    todo = []
    for path, key in files:
        hit = cached.get(path)
        if hit is not None and hit[0] == key and max(key[0], key[1]) < trusted_before:
            fresh[path] = hit
        else:
            todo.append((path, key))
    for path, key in todo:
        status, value = _parse(path, key[2])
        if status != "gone":
            fresh[path] = (key, status, value)
    fleet = Fleet([], [], parsed=len(todo), from_index=len(files) - len(todo))
    make = Host._make
    for path, _ in files:
        entry = fresh.get(path)
        if entry is None:
            continue
        if entry[1] == "ok":
            fleet.hosts.append(make(entry[2]))
        else:
            fleet.unreadable.append((path, entry[2]))
    if index and (todo or fresh.keys() != cached.keys()):
        _write_index(index, stamp - RACY_NS, fresh)
    return fleet


def _index_tag() -> str:
    import sys

    return f"libvirt-synth place index {INDEX_VERSION} python {sys.version_info[0]}.{sys.version_info[1]}"


def _read_index(path: str) -> tuple[dict[str, Any], int]:
    """The entries of an index and the time before which a change is sure to show in their keys;
    nothing when it is missing, corrupt or of another version."""
    import marshal

    try:
        with open(path, "rb") as f:
            doc = marshal.loads(f.read())
        if isinstance(doc, dict) and doc.get("tag") == _index_tag() and isinstance(doc.get("files"), dict) \
                and isinstance(doc.get("trusted_before"), int):
            return doc["files"], doc["trusted_before"]
    except (OSError, EOFError, ValueError, TypeError):
        pass
    return {}, 0


def _write_index(path: str, trusted_before: int, files: dict[str, Any]) -> None:
    import marshal
    import tempfile

    d = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".place-index-", dir=d)
        with os.fdopen(fd, "wb") as f:
            f.write(marshal.dumps({"tag": _index_tag(), "trusted_before": trusted_before, "files": files}))
        os.replace(tmp, path)
    except (OSError, ValueError) as e:
        from libvirt_synth import log

        log.warning("cannot write the placement index %s: %s", path, e)


def default_index(paths: Sequence[str]) -> str:
    """The index file for a set of inventory paths, in the cache directory."""
    import hashlib

    from libvirt_synth.inventory.plugins import default_cache_dir

    key = hashlib.sha256("\0".join(os.path.realpath(p) for p in paths).encode()).hexdigest()[:16]
    return os.path.join(default_cache_dir(), f"place-index-{key}.json")
