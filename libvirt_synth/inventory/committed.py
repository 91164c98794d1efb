# SPDX-License-Identifier: Apache-2.0
"""Capacity already committed on this host: the KPIs that the synthetic devices of defined VMs ask for.

Two sources, merged by device (region) name:

- virt-synthd's registry, over JSON-RPC (``devices.list`` then ``device.show``): the devices of the
  domains it serves (running VMs), with the capabilities and KPIs their metadata asked for;
- libvirt: every defined domain (running or not) on a URI, whose ``<metadata>`` lists its devices
  (libvirt_synth.hook.metadata) — a VM defined but stopped still holds its share.

KPIs of a device belong to its first capability, except those written ``<capability>.<kpi>``
(what a VNFD device with several capabilities produces; see libvirt_synth.vnfd.model). Only the
KPIs that consume capacity are summed (throughput, ops/s, sessions, packets/s; not latency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import log
from libvirt_synth.capabilities import CAPABILITIES, CONSUMED, split_kpi_key


@dataclass
class CommittedDevice:
    name: str
    domain: str  # uuid
    dev_class: str
    capabilities: list[str]
    kpis: dict[str, Any]
    source: str  # daemon | libvirt

    def asks(self) -> dict[str, dict[str, float]]:
        """capability -> consumed KPI -> amount."""
        out: dict[str, dict[str, float]] = {}
        first = self.capabilities[0] if self.capabilities else None
        for key, value in self.kpis.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            cap, kpi = split_kpi_key(key, first)
            if cap not in CAPABILITIES or kpi not in CONSUMED:
                continue
            out.setdefault(cap, {})
            out[cap][kpi] = out[cap].get(kpi, 0) + value
        return out


@dataclass
class Committed:
    devices: dict[str, CommittedDevice] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, dev: CommittedDevice) -> None:
        self.devices.setdefault(dev.name, dev)

    def by_capability(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for d in self.devices.values():
            for cap, kpis in d.asks().items():
                acc = out.setdefault(cap, {})
                for k, v in kpis.items():
                    acc[k] = round(acc.get(k, 0) + v, 6)
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, Any]:
        domains = sorted({d.domain for d in self.devices.values()})
        return {"sources": self.sources, "problems": self.problems, "domains": len(domains),
                "devices": [vars(d) for d in sorted(self.devices.values(), key=lambda d: d.name)],
                "by_capability": self.by_capability()}


def from_daemon(into: Committed, socket: str | None = None) -> bool:
    """Add the devices virt-synthd serves; False (and a problem noted) when it cannot be reached."""
    from libvirt_synth.daemon import client

    try:
        with client.Client(socket, timeout=5.0) as c:
            for d in c.call("devices.list"):
                show = c.call("device.show", name=d["name"])
                spec = show.get("spec") or {}
                into.add(CommittedDevice(name=d["name"], domain=str(d.get("domain", "")), dev_class=d.get("class", ""),
                                         capabilities=list(spec.get("capabilities") or []),
                                         kpis=dict(spec.get("kpis") or {}), source="daemon"))
    except client.RpcError as e:
        into.problems.append(f"virt-synthd: {e}")
        log.info("committed capacity: virt-synthd not used: %s", e)
        return False
    into.sources.append(f"virt-synthd ({client.socket_path(socket)})")
    return True


def from_libvirt(into: Committed, uri: str) -> bool:
    """Add the devices of every domain defined on ``uri``; False (and a problem noted) on failure."""
    from libvirt_synth import errors
    from libvirt_synth.hook import metadata
    from libvirt_synth.xml import connect

    try:
        conn = connect.open_connection(uri)
    except errors.SynthError as e:
        into.problems.append(f"libvirt {uri}: {e}")
        return False
    try:
        import libvirt

        for dom in conn.listAllDomains():
            try:
                xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                uuid, _name, devices = metadata.parse_devices(xml)
            except (libvirt.libvirtError, errors.SynthError) as e:
                into.problems.append(f"libvirt {uri}: domain {dom.name()}: {e}")
                continue
            for d in devices:
                into.add(CommittedDevice(name=d["name"], domain=uuid or "", dev_class=d["class"],
                                         capabilities=list(d.get("capabilities") or []),
                                         kpis=dict(d.get("kpis") or {}), source="libvirt"))
    finally:
        conn.close()
    into.sources.append(f"libvirt ({uri})")
    return True


def collect(socket: str | None = None, uri: str | None = None, use_daemon: bool = True) -> Committed:
    """What defined VMs committed: virt-synthd's registry (if it runs), then libvirt's domains on
    ``uri`` (if given). A device both know counts once."""
    c = Committed()
    if use_daemon:
        from_daemon(c, socket)
    if uri:
        from_libvirt(c, uri)
    return c
