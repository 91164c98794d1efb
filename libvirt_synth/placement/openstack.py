# SPDX-License-Identifier: Apache-2.0
"""A host inventory as OpenStack Placement data, so that Nova's scheduler can place VNFs with the
same capacities ``virt-synth place`` uses.

- **Traits** (what a host can do): ``CUSTOM_SYNTH_CAP_<CAPABILITY>`` for each capability a plugin
  serves (``CUSTOM_SYNTH_CAP_AES_256_GCM``), ``CUSTOM_SYNTH_CLASS_<CLASS>``, and for hardware found on
  the PCI bus ``CUSTOM_SYNTH_HW_<FAMILY>[_<GENERATION>]`` (``CUSTOM_SYNTH_HW_QAT_GEN4``) and
  ``CUSTOM_SYNTH_HW_SRIOV_NIC``.
- **Custom resource classes** (what a host has, in integers): ``CUSTOM_SYNTH_<CAPABILITY>_MBPS``, the
  measured throughput in Mb/s, for each capability whose capacity was calibrated.
  ``reserved`` is 0 unless asked to reserve what VMs defined outside Nova committed (Nova's own
  VMs are allocations in Placement already; counting them again would reserve them twice).

Two forms: the bodies of the Placement API calls (``placement_requests``), or a Nova *provider
configuration file* (``provider_config``: drop it into /etc/nova/provider_config/ on the compute
host; nova-compute reports it). ``flavor_extra_specs`` turns a VDU's mandatory asks into the flavor
extra specs that request them. Placement has no soft traits: preferred asks are left out, and said so.
"""

from __future__ import annotations

import re
from typing import Any

from libvirt_synth.capabilities import CAPABILITIES
from libvirt_synth.inventory import model
from libvirt_synth.vnfd.model import Vdu

PREFIX = "CUSTOM_SYNTH_"
NAME_RE = re.compile(r"^CUSTOM_[A-Z0-9_]{1,248}$")  # Placement's rule for custom traits and classes


def _part(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")


def capability_trait(capability: str) -> str:
    return f"{PREFIX}CAP_{_part(capability)}"


def resource_class(capability: str) -> str:
    return f"{PREFIX}{_part(capability)}_MBPS"


def traits(doc: dict[str, Any]) -> list[str]:
    """The custom traits of a host inventory, sorted."""
    out: set[str] = set()
    for cap, entry in doc["capacity"].items():
        if cap in CAPABILITIES and isinstance(entry, dict):
            out.add(capability_trait(cap))
            out.add(f"{PREFIX}CLASS_{_part(CAPABILITIES[cap].dev_class)}")
    pci = doc.get("pci") or {}
    for a in pci.get("accelerators") or []:
        fam = a.get("family")
        if fam:
            out.add(f"{PREFIX}HW_{_part(fam)}")
            if a.get("generation"):
                out.add(f"{PREFIX}HW_{_part(fam)}_{_part(a['generation'])}")
    if any((n.get("sriov") or {}).get("total_vfs") for n in pci.get("nics") or []):
        out.add(f"{PREFIX}HW_SRIOV_NIC")
    return sorted(t for t in out if NAME_RE.match(t))


def inventories(doc: dict[str, Any], reserve_committed: bool = False) -> dict[str, dict[str, Any]]:
    """Resource class -> Placement inventory record, for each calibrated capability."""
    used = model.committed(doc)
    out: dict[str, dict[str, Any]] = {}
    for cap, entry in sorted(doc["capacity"].items()):
        if cap not in CAPABILITIES or not isinstance(entry, dict):
            continue
        gbps = model.number(entry.get("throughput_gbps"))
        if gbps is None:
            continue
        total = int(gbps * 1000)
        if total < 1:
            continue
        reserved = 0
        if reserve_committed:
            reserved = min(total, int(round((model.number(used.get(cap, {}).get("throughput_gbps")) or 0) * 1000)))
        out[resource_class(cap)] = {"total": total, "reserved": reserved, "min_unit": 1, "max_unit": total,
                                    "step_size": 1, "allocation_ratio": 1.0}
    return out


def placement_requests(doc: dict[str, Any], reserve_committed: bool = False) -> dict[str, Any]:
    """The Placement API calls that publish a host: create the custom resource classes, then set the
    provider's inventories and traits. ``{provider_uuid}`` and ``resource_provider_generation`` are
    the compute node provider's (``openstack resource provider list --name HOST``)."""
    inv = inventories(doc, reserve_committed)
    tr = traits(doc)
    calls: list[dict[str, Any]] = [{"method": "PUT", "path": f"/resource_classes/{rc}", "body": None}
                                   for rc in inv]
    calls += [{"method": "PUT", "path": f"/traits/{t}", "body": None} for t in tr]
    calls.append({"method": "PUT", "path": "/resource_providers/{provider_uuid}/inventories",
                  "body": {"resource_provider_generation": "{generation}", "inventories": inv},
                  "note": "replaces the provider's whole inventory: merge with the inventories it has "
                          "(GET the same path) before sending"})
    calls.append({"method": "PUT", "path": "/resource_providers/{provider_uuid}/traits",
                  "body": {"resource_provider_generation": "{generation}", "traits": tr},
                  "note": "replaces the provider's traits: merge with the traits it has (GET the same path)"})
    return {"host": doc["host"], "microversion": "1.26", "resource_classes": list(inv), "traits": tr,
            "inventories": inv, "requests": calls}


def provider_config(doc: dict[str, Any], reserve_committed: bool = False) -> dict[str, Any]:
    """A Nova provider configuration document (schema 1.0) for the compute node of this host."""
    inv = inventories(doc, reserve_committed)
    return {"meta": {"schema_version": "1.0"},
            "providers": [{"identification": {"uuid": "$COMPUTE_NODE"},
                           "inventories": {"additional": [{rc: rec} for rc, rec in inv.items()]},
                           "traits": {"additional": traits(doc)}}]}


def flavor_extra_specs(vdu: Vdu) -> dict[str, Any]:
    """Flavor extra specs asking Placement for a VDU's mandatory capabilities and throughput."""
    specs: dict[str, str] = {}
    left_out: list[str] = []
    for a in vdu.demand():
        if not a.mandatory:
            left_out.append(f"{a.capability} (preferred: Placement has no soft traits)")
            continue
        specs[f"trait:{capability_trait(a.capability)}"] = "required"
        gbps = a.kpis.get("throughput_gbps")
        if gbps is not None and CAPABILITIES[a.capability].dev_class != "packet":
            specs[f"resources:{resource_class(a.capability)}"] = str(max(1, int(round(gbps * 1000))))
        for k in a.kpis:
            if k not in ("throughput_gbps",):
                left_out.append(f"{a.capability} {k} (no resource class: checked by virt-synth place only)")
    return {"vdu": vdu.name, "extra_specs": specs, "not_expressed": left_out}
