# SPDX-License-Identifier: Apache-2.0
"""A VNFD once validated: VDUs, their synthetic devices, and each device's capability requirements.

``Vdu.demand()`` sums what a VDU asks of a host per capability (the placement's input);
``Vdu.spec_devices()`` gives its devices in the device-spec form that ``virt-synth xml`` takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import errors
from libvirt_synth.capabilities import CAPABILITIES, KPIS, kpi_key


@dataclass(frozen=True)
class Requirement:
    """One capability a device needs (SOL001 RequestedAdditionalCapability)."""

    capability: str
    mandatory: bool
    kpis: dict[str, float] = field(default_factory=dict)
    path: str = ""

    @property
    def dev_class(self) -> str:
        return CAPABILITIES[self.capability].dev_class


@dataclass(frozen=True)
class Device:
    dev_class: str
    requirements: tuple[Requirement, ...]
    id: str | None = None
    queues: int | None = None
    channels: int | None = None
    ring_entries: int | None = None
    size: int | str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def spec(self) -> dict[str, Any]:
        """This device as a mapping of the device-spec format (docs/libvirt.md). KPIs of the first
        capability are written as they are; those of the others as ``<capability>.<kpi>``."""
        kpis: dict[str, float] = {}
        for i, r in enumerate(self.requirements):
            for k, v in r.kpis.items():
                kpis[kpi_key(r.capability, k, i == 0)] = v
        out: dict[str, Any] = {"class": self.dev_class, "capabilities": [r.capability for r in self.requirements]}
        if kpis:
            out["kpis"] = kpis
        for key in ("queues", "channels", "ring_entries", "size"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.options:
            out["options"] = dict(self.options)
        return out


@dataclass(frozen=True)
class Ask:
    """What a VDU asks of a host for one capability, summed over its devices."""

    capability: str
    mandatory: bool
    kpis: dict[str, float]  # summed KPIs add up; max_latency_us is the smallest asked
    devices: int            # how many devices ask for it (per-device limits apply to each)
    per_device_sessions: float = 0.0  # the most sessions one device asks for
    per_device_gbps: float = 0.0      # the most throughput one device asks for (one worker core serves a device)
    per_device_ops: float = 0.0       # the most ops/s (packet I/O: packets/s) one device asks for


@dataclass(frozen=True)
class Vdu:
    name: str
    devices: tuple[Device, ...]
    description: str = ""
    vcpus: int | None = None
    memory_mib: int | None = None
    path: str = ""
    source: str = ""

    def spec_devices(self) -> list[dict[str, Any]]:
        return [d.spec() for d in self.devices]

    def demand(self) -> list[Ask]:
        """One Ask per (capability, mandatory or preferred). A capability asked for as mandatory by
        one device and preferred by another gets one Ask of each."""
        acc: dict[tuple[str, bool], dict[str, Any]] = {}
        for d in self.devices:
            for r in d.requirements:
                a = acc.setdefault((r.capability, r.mandatory),
                                   {"kpis": {}, "devices": 0, "sessions": 0.0, "gbps": 0.0, "ops": 0.0})
                a["devices"] += 1
                for k, v in r.kpis.items():
                    if KPIS[k].summed:
                        a["kpis"][k] = a["kpis"].get(k, 0) + v
                    else:
                        a["kpis"][k] = min(a["kpis"].get(k, v), v)
                a["sessions"] = max(a["sessions"], r.kpis.get("sessions", 0))
                a["gbps"] = max(a["gbps"], r.kpis.get("throughput_gbps", 0))
                # ops/s or, for packet I/O, packets/s (no class has both)
                a["ops"] = max(a["ops"], r.kpis.get("ops_per_s", 0), r.kpis.get("packets_per_s", 0))
        return [Ask(cap, mand, a["kpis"], a["devices"], a["sessions"], a["gbps"], a["ops"])
                for (cap, mand), a in sorted(acc.items(), key=lambda kv: (not kv[0][1], kv[0][0]))]


@dataclass(frozen=True)
class Vnfd:
    descriptor_id: str
    vdus: dict[str, Vdu]
    descriptor_version: str = ""
    provider: str = ""
    product_name: str = ""
    software_version: str = ""
    description: str = ""
    source: str = ""

    def vdu(self, name: str | None = None) -> Vdu:
        """A VDU by name; without a name, the only one (an error names them when there are several)."""
        if name is None:
            if len(self.vdus) == 1:
                return next(iter(self.vdus.values()))
            raise errors.ValueError(f"{self.source}: the VNFD has {len(self.vdus)} VDUs ("
                                    f"{', '.join(self.vdus)}); say which with --vdu NAME")
        try:
            return self.vdus[name]
        except KeyError:
            raise errors.NotFoundError(f"{self.source}: no VDU {name!r}; the VNFD has: "
                                          f"{', '.join(self.vdus)}") from None
