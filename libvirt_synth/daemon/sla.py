# SPDX-License-Identifier: Apache-2.0
"""SLA telemetry: what each device achieved, over a sliding window, against each KPI its domain's
metadata asks for (docs/daemon.md, "SLA").

Achieved, per device (all its capabilities together), from its counters sampled once a second:

    throughput_gbps   input bytes of successful operations, as Gb/s
    ops_per_s         completions per second (packet devices: packets_per_s, the same count)
    sessions          live sessions (crypto) or streams (compress) at the end of the window
    max_latency_us    the mean worker time per operation, in microseconds (lower is better)

A device violates a KPI only when it had demand it could not serve, and fell short meanwhile:

    demand unmet  = its quota throttled it in the window, or it kept its worker busy for 90 % of
                    the window (work waited in its rings), or (for sessions) a SESSION_CREATE
                    was refused for want of room
    violation     = demand unmet and achieved < asked (max_latency_us: achieved > asked)

An idle VNF asks for nothing, so it is never in violation, however far below its KPIs it runs."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import capabilities, log

BUSY_SHARE = 0.9


@dataclass
class Sample:
    t: float
    ops: int
    bytes_in: int
    sessions: int
    throttled: int
    busy_ns: int
    no_resources: int


@dataclass
class Tracker:
    """One device's samples over the window, and which KPIs it is in violation of."""

    window: float
    samples: collections.deque[Sample] = field(default_factory=collections.deque)
    violating: set[str] = field(default_factory=set)

    def add(self, s: Sample) -> None:
        self.samples.append(s)
        while len(self.samples) > 2 and s.t - self.samples[1].t >= self.window:
            self.samples.popleft()


def sample(dev: Any, now: float) -> Sample:
    st = dev.stats()
    return Sample(now, st.ops, st.bytes_in, st.sessions, st.throttled, st.busy_ns,
                  int(st.by_status.get("no_resources", 0)))


def evaluate(tr: Tracker, dev_class: str, kpis: dict[str, Any], first_cap: str | None) -> list[dict[str, Any]]:
    """The device's KPIs, asked against achieved over the window."""
    if len(tr.samples) < 2:
        return []
    a, b = tr.samples[0], tr.samples[-1]
    dt = max(b.t - a.t, 1e-9)
    ops = b.ops - a.ops
    throttled = b.throttled > a.throttled
    busy = (b.busy_ns - a.busy_ns) / 1e9 / dt >= BUSY_SHARE
    achieved = {
        "throughput_gbps": (b.bytes_in - a.bytes_in) * 8 / dt / 1e9,
        "ops_per_s": ops / dt,
        "packets_per_s": ops / dt,
        "sessions": float(b.sessions),
        "max_latency_us": (b.busy_ns - a.busy_ns) / ops / 1e3 if ops else 0.0,
    }
    out = []
    for key, asked in sorted(kpis.items()):
        cap, name = capabilities.split_kpi_key(key, first_cap)
        if name not in achieved or isinstance(asked, bool) or not isinstance(asked, int | float):
            continue
        got = achieved[name]
        if name == "sessions":
            unmet = b.no_resources > a.no_resources
            short = got < asked
        elif name == "max_latency_us":
            unmet = throttled or busy
            short = ops > 0 and got > asked
        else:
            unmet = throttled or busy
            short = got < asked
        out.append({"kpi": key, "capability": cap, "asked": asked, "achieved": round(got, 6),
                    "unit": capabilities.KPIS[name].unit, "demand_unmet": unmet, "violation": unmet and short,
                    "throttled": throttled, "busy": busy, "window_s": round(dt, 1)})
    return out


class Sla:
    """Every served device's tracker; ``tick`` (once a second) samples and logs transitions."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.trackers: dict[str, Tracker] = {}

    def tick(self, service: Any, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.window = float(service.cfg.sla_window_s)
        devices = dict(service.devices)
        for name in list(self.trackers):
            if name not in devices:
                del self.trackers[name]
        records = {r.name: r for r in service.registry.devices()}  # one query a tick, not one a device
        for name, dev in devices.items():
            tr = self.trackers.setdefault(name, Tracker(self.window))
            tr.window = self.window
            try:
                tr.add(sample(dev, now))
            except Exception:  # a device destroyed meanwhile
                continue
            rec = records.get(name)
            if rec is None:
                continue
            for row in self.rows(name, rec):
                key = row["kpi"]
                if row["violation"] and key not in tr.violating:
                    tr.violating.add(key)
                    log.warning("device %s: SLA violation starts: %s achieved %.3g %s, asked %s (%s)", name, key,
                                row["achieved"], row["unit"], row["asked"],
                                "throttled by its quota" if row["throttled"] else "demand waited")
                elif not row["violation"] and key in tr.violating:
                    tr.violating.discard(key)
                    log.warning("device %s: SLA violation ends: %s achieved %.3g %s, asked %s", name, key,
                                row["achieved"], row["unit"], row["asked"])

    def rows(self, name: str, rec: Any) -> list[dict[str, Any]]:
        tr = self.trackers.get(name)
        kpis = rec.spec.get("kpis") or {}
        if tr is None or not kpis:
            return []
        caps = rec.spec.get("capabilities") or []
        return evaluate(tr, rec.dev_class, kpis, caps[0] if caps else None)

    def report(self, service: Any, domain: str | None = None) -> list[dict[str, Any]]:
        out = []
        doms = {d["uuid"]: d["name"] for d in service.registry.domains()}
        for rec in service.registry.devices():
            if domain is not None and domain not in (rec.domain_uuid, doms.get(rec.domain_uuid)):
                continue
            for row in self.rows(rec.name, rec):
                out.append({"device": rec.name, "domain": rec.domain_uuid, "domain_name": doms.get(rec.domain_uuid),
                            "class": rec.dev_class} | row)
        return out
