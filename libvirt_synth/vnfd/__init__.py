# SPDX-License-Identifier: Apache-2.0
"""VNF descriptors: which synthetic devices each VDU of a VNF needs, by capability and KPI.

A VNFD is a YAML (or JSON) document described by the JSON Schema ``schema.json`` of this package
(``libvirt_synth.vnfd.schema()``); docs/vnfd.md is the reference, with examples in examples/.
It is modelled on ETSI GS NFV-SOL 001 (the TOSCA VNFD): a VDU is a ``tosca.nodes.nfv.Vdu.Compute``
node, and each capability a device asks for is a ``tosca.datatypes.nfv.RequestedAdditionalCapability``
(``requested_additional_capability_name`` -> ``capability``, ``support_mandatory`` -> ``support``,
``target_performance_parameters`` -> ``kpis``). docs/vnfd.md has the full mapping.

    from libvirt_synth import vnfd
    d = vnfd.load("examples/vnfd/ipsec-gateway.yaml")
    for ask in d.vdu("gw").demand():
        print(ask.capability, ask.mandatory, ask.kpis)

May import ``capabilities`` and ``errors`` only: placement and the XML tools build on it.
"""

from __future__ import annotations

from libvirt_synth.vnfd.loader import FORMAT_VERSION, Problem, VnfdError, json_path, load, loads, problems, schema
from libvirt_synth.vnfd.model import Ask, Device, Requirement, Vdu, Vnfd

__all__ = ["FORMAT_VERSION", "Ask", "Device", "Problem", "Requirement", "Vdu", "Vnfd", "VnfdError", "json_path",
           "load", "loads", "problems", "schema"]
