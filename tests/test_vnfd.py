# SPDX-License-Identifier: Apache-2.0
"""The VNFD format: the examples load, the schema and the device ABI agree, and every problem of a
bad document is reported with its JSON path and line."""

from __future__ import annotations

import json
import pathlib

import jsonschema
import pytest

from libvirt_synth import vnfd
from libvirt_synth.abi import ALG_INFO, CAlg
from libvirt_synth.capabilities import CAPABILITIES, KPIS, of_class
from libvirt_synth.xml import designer, spec

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples/vnfd").glob("*.yaml"))

GOOD = """\
synth_vnfd: 1
descriptor_id: gw
vdus:
  gw:
    devices:
      - class: crypto
        capabilities:
          - capability: aes-256-gcm
            kpis: {throughput_gbps: 12}
"""

BAD = """\
synth_vnfd: 2
descriptor_id: "bad id"
colour: blue
vdus:
  gw:
    vcpus: 0
    devices:
      - class: crypto
        channels: 2
        size: 3M
        capabilities:
          - capability: zstd
            support: maybe
            kpis: {throughput_gbps: -3, packets_per_s: 5, speed: 1}
          - capability: aes-256-gcm
          - capability: aes-256-gcm
            kpis: {throughput_gbps: "12 Gb/s"}
      - class: modem
        capabilities: []
  "bad vdu":
    devices: {}
"""


def test_examples_load_and_ask_what_they_say() -> None:
    assert {p.name for p in EXAMPLES} == {"ipsec-gateway.yaml", "compression-proxy.yaml", "packet-core.yaml"}
    gw = vnfd.load(str(ROOT / "examples/vnfd/ipsec-gateway.yaml"))
    assert gw.descriptor_id == "ipsec-gateway" and list(gw.vdus) == ["gw"]
    vdu = gw.vdu()
    assert vdu.vcpus == 2 and vdu.memory_mib == 2048
    asks = {(a.capability, a.mandatory): a for a in vdu.demand()}
    assert set(asks) == {("aes-256-gcm", True), ("io", True), ("chacha20-poly1305", False)}
    assert asks[("aes-256-gcm", True)].kpis == {"throughput_gbps": 12, "sessions": 1000, "max_latency_us": 50}
    core = vnfd.load(str(ROOT / "examples/vnfd/packet-core.yaml"))
    assert list(core.vdus) == ["upf", "smf"]
    with pytest.raises(ValueError, match="2 VDUs .upf, smf.; say which with --vdu"):
        core.vdu()
    with pytest.raises(FileNotFoundError, match="no VDU 'amf'; the VNFD has: upf, smf"):
        core.vdu("amf")


def test_schema_is_valid_and_matches_the_device_abi() -> None:
    schema = vnfd.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(of_class("crypto")) == {i.label for i in ALG_INFO.values()}
    assert set(of_class("compress")) == {a.label for a in CAlg}
    rules = {r["if"]["properties"]["class"]["const"]: r["then"]["properties"]["capabilities"]["items"]["properties"]
             for r in schema["$defs"]["device"]["allOf"]}
    for cls, rule in rules.items():
        assert rule["capability"]["enum"] == of_class(cls)
    assert set(schema["$defs"]["requirement"]["properties"]["kpis"]["properties"]) == set(KPIS)


def test_every_problem_has_its_path_and_line() -> None:
    with pytest.raises(vnfd.VnfdError) as ei:
        vnfd.loads(BAD, "bad.yaml")
    got = {(p.line, p.path) for p in ei.value.problems}
    assert got == {
        (1, "$.synth_vnfd"), (2, "$.descriptor_id"), (3, "$.colour"), (20, "$.vdus['bad vdu']"),
        (6, "$.vdus.gw.vcpus"), (9, "$.vdus.gw.devices[0].channels"), (10, "$.vdus.gw.devices[0].size"),
        (12, "$.vdus.gw.devices[0].capabilities[0].capability"),
        (13, "$.vdus.gw.devices[0].capabilities[0].support"),
        (14, "$.vdus.gw.devices[0].capabilities[0].kpis.packets_per_s"),
        (14, "$.vdus.gw.devices[0].capabilities[0].kpis.speed"),
        (14, "$.vdus.gw.devices[0].capabilities[0].kpis.throughput_gbps"),
        (16, "$.vdus.gw.devices[0].capabilities[2].capability"),
        (17, "$.vdus.gw.devices[0].capabilities[2].kpis.throughput_gbps"),
        (18, "$.vdus.gw.devices[1].class"), (19, "$.vdus.gw.devices[1].capabilities"),
        (21, "$.vdus['bad vdu'].devices"),
    }
    by_path = {p.path: p.message for p in ei.value.problems}
    assert by_path["$.vdus.gw.devices[0].capabilities[0].capability"].startswith(
        "'zstd' is not a capability of crypto devices; crypto capabilities: aes-128-gcm")
    assert by_path["$.vdus.gw.devices[0].capabilities[0].kpis.packets_per_s"].startswith(
        "KPI 'packets_per_s' does not apply to crypto devices")
    assert by_path["$.vdus.gw.devices[0].capabilities[0].kpis.throughput_gbps"] == "must be greater than 0, got -3"
    assert by_path["$.vdus.gw.devices[0].capabilities[2].capability"].startswith(
        "'aes-256-gcm' is already asked for by capabilities[1]")
    assert "power of two" in by_path["$.vdus.gw.devices[0].size"]
    assert by_path["$.synth_vnfd"] == "this reader knows format version 1, the document says 2"
    # One line per problem, each prefixed with the file and line.
    text = str(ei.value).splitlines()
    assert text[0] == f"bad.yaml: {len(got)} problems in the VNFD"
    assert "  bad.yaml:14: $.vdus.gw.devices[0].capabilities[0].kpis.speed: unknown KPI 'speed'" in "\n".join(text)


@pytest.mark.parametrize("text, path, message", [
    ("", "$", "expected a mapping, got null"),
    ("synth_vnfd: 1\ndescriptor_id: x\n", "$", "'vdus' is required"),
    ("synth_vnfd: 1\ndescriptor_id: x\nvdus: {}\n", "$.vdus", "must not be empty"),
    (GOOD.replace("      - class: crypto", "      - class: packet\n        queues: 3").replace("aes-256-gcm", "io"),
     "$.vdus.gw.devices[0].queues", "a packet device has an even number of queues"),
    (GOOD.replace("        capabilities:", "        channels: 1\n        queues: 2\n        capabilities:")
     .replace("class: crypto", "class: packet").replace("aes-256-gcm", "io"),
     "$.vdus.gw.devices[0].queues", "give channels or queues, not both"),
    (GOOD + "      - id: a\n        class: crypto\n        capabilities: [{capability: hmac-sha256}]\n"
     "      - id: a\n        class: crypto\n        capabilities: [{capability: hmac-sha256}]\n",
     "$.vdus.gw.devices[2].id", "id 'a' is already the id of devices[1]"),
    (GOOD.replace("throughput_gbps: 12", "throughput_gbps: true"),
     "$.vdus.gw.devices[0].capabilities[0].kpis.throughput_gbps", "expected a number, got a boolean"),
])
def test_single_problems(text: str, path: str, message: str) -> None:
    with pytest.raises(vnfd.VnfdError) as ei:
        vnfd.loads(text, "x.yaml")
    assert [(p.path, p.message[:len(message)]) for p in ei.value.problems] == [(path, message)]


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(vnfd.VnfdError, match=r"^x.yaml:4: \$: not valid YAML"):
        vnfd.loads("synth_vnfd: 1\nvdus:\n  - [\n", "x.yaml")


def test_json_is_accepted_too() -> None:
    doc = {"synth_vnfd": 1, "descriptor_id": "j", "vdus": {"a": {"devices": [
        {"class": "compress", "capabilities": [{"capability": "zstd", "support": "preferred"}]}]}}}
    v = vnfd.loads(json.dumps(doc), "j.json")
    assert v.vdu("a").devices[0].requirements[0].mandatory is False


def test_demand_sums_devices_and_keeps_the_strictest_latency() -> None:
    text = GOOD + ("      - class: crypto\n        capabilities:\n          - capability: aes-256-gcm\n"
                   "            kpis: {throughput_gbps: 3, max_latency_us: 40, sessions: 10}\n"
                   "      - class: crypto\n        capabilities:\n          - capability: aes-256-gcm\n"
                   "            kpis: {max_latency_us: 80, sessions: 30}\n")
    [ask] = vnfd.loads(text).vdu().demand()
    assert ask.kpis == {"throughput_gbps": 15, "max_latency_us": 40, "sessions": 40}
    assert ask.devices == 3 and ask.per_device_sessions == 30


def test_a_vdu_becomes_device_specs_for_the_xml_generator() -> None:
    v = vnfd.load(str(ROOT / "examples/vnfd/ipsec-gateway.yaml")).vdu("gw")
    specs = spec.from_vdu(v)
    assert [s.dev_class for s in specs] == ["crypto", "packet"]
    crypto, packet = specs
    assert crypto.capabilities == ["aes-256-gcm", "chacha20-poly1305"] and crypto.queues == 2
    # KPIs of the first capability as they are, the others' prefixed with their capability.
    assert crypto.kpis == {"throughput_gbps": 12, "sessions": 1000, "max_latency_us": 50,
                           "chacha20-poly1305.throughput_gbps": 2}
    assert packet.queues == 4 and packet.size == 8 << 20 and packet.kpis == {"packets_per_s": 2000000}
    assert [designer.fill_defaults(s).size for s in specs] == [4 << 20, 8 << 20]
    assert "ipsec-gateway.yaml: $.vdus.gw.devices[1]" in packet.where


def test_capability_vocabulary_is_consistent() -> None:
    for name, c in CAPABILITIES.items():
        assert c.name == name and c.dev_class in ("crypto", "compress", "packet")
    assert of_class("packet") == ["io"]
