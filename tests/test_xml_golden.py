# SPDX-License-Identifier: Apache-2.0
"""Golden files for the XML generator: tests/data/xml/<case>-in.xml (or a template) plus
<case>-devices.yaml -> <case>-out.xml. Regenerate the outputs after a deliberate change with

    LIBVIRT_SYNTH_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_xml_golden.py

and review the diff. Every output is also checked by libvirt's own virt-xml-validate."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from typing import Any

import pytest
from lxml import etree

from libvirt_synth.hook import metadata
from libvirt_synth.xml import designer, spec, template

DATA = pathlib.Path(__file__).parent / "data" / "xml"
REGEN = os.environ.get("LIBVIRT_SYNTH_REGEN_GOLDEN") == "1"
SYNTH = f"{{{metadata.NAMESPACE}}}devices"

# Template cases: the template and the values the command line would give.
TEMPLATES: dict[str, tuple[str, dict[str, str | None]]] = {
    "template-kernel": ("vnf-kernel", {"NAME": "vnf-kernel", "UUID": "8d2c7b9a-3e4f-4a1b-8c5d-6e7f8091a2b3",
                                       "KERNEL": "/var/lib/libvirt-synth/guest/vmlinuz",
                                       "INITRD": "/var/lib/libvirt-synth/guest/initrd.img",
                                       "CMDLINE": "console=ttyS0 quiet",
                                       "CONSOLE_LOG": "/var/log/libvirt/qemu/vnf-kernel-console.log"}),
    "template-disk": ("vnf-disk", {"NAME": "vnf-disk", "UUID": "c4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f70",
                                   "DISK": "/var/lib/libvirt/images/vnf-disk.qcow2", "DOMAIN_TYPE": "kvm",
                                   "MEMORY": "1024", "VCPUS": "2",
                                   "CONSOLE_LOG": "/var/log/libvirt/qemu/vnf-disk-console.log"}),
}
CASES = ["minimal", "preserve", "reinject", "changed", *TEMPLATES]


def load_input(case: str) -> tuple[bytes, str]:
    if case in TEMPLATES:
        name, values = TEMPLATES[case]
        text, source = template.fill(name, values)
        return text.encode(), source
    path = DATA / f"{case}-in.xml"
    return path.read_bytes(), str(path)


def load_specs(case: str) -> list[spec.DeviceSpec]:
    return spec.load([str(DATA / f"{case}-devices.yaml")])


def check_golden(case: str, text: str) -> None:
    path = DATA / f"{case}-out.xml"
    if REGEN:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with LIBVIRT_SYNTH_REGEN_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), (
        f"{case}: output differs from {path.name}; if the change is intended, regenerate with "
        "LIBVIRT_SYNTH_REGEN_GOLDEN=1 and review the diff")


def virt_xml_validate(text: str, tmp_path: pathlib.Path) -> None:
    """libvirt's own validator (a shell script around xmllint and the same RNG schemas)."""
    exe = shutil.which("virt-xml-validate")
    if exe is None or shutil.which("xmllint") is None:
        pytest.skip("virt-xml-validate (libvirt-clients) or xmllint (libxml2-utils) is not installed")
    path = tmp_path / "generated.xml"
    path.write_text(text, encoding="utf-8")
    r = subprocess.run([exe, str(path), "domain"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"virt-xml-validate rejects the generated XML:\n{r.stdout}{r.stderr}"
    assert "validates" in r.stdout + r.stderr


def without_ours(text: str | bytes) -> bytes:
    """The document minus what the generator owns (our metadata element, the shmem elements it
    names, and a <metadata> or <devices> left empty), canonicalised, blank text ignored: what must
    come out as it went in."""
    parser = etree.XMLParser(remove_blank_text=True)
    doc = etree.fromstring(text.encode() if isinstance(text, str) else text, parser)
    md = doc.find("metadata")
    names: set[str] = set()
    if md is not None:
        for el in md.findall(SYNTH):
            names |= {d.get("name") for d in el}
            md.remove(el)
    devices = doc.find("devices")
    for shmem in devices.findall("shmem") if devices is not None else []:
        if shmem.get("name") in names:
            devices.remove(shmem)
    for el in (md, devices):
        if el is not None and len(el) == 0:
            doc.remove(el)
    return bytes(etree.tostring(doc, method="c14n"))


def inject_case(case: str) -> Any:
    data, source = load_input(case)
    return designer.inject(data, load_specs(case), source)


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return {case: inject_case(case) for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, results: dict[str, Any], tmp_path: pathlib.Path) -> None:
    result = results[case]
    check_golden(case, result.xml)
    virt_xml_validate(result.xml, tmp_path)


@pytest.mark.parametrize("case", CASES)
def test_injecting_twice_gives_the_same_xml(case: str, results: dict[str, Any]) -> None:
    first = results[case]
    again = designer.inject(first.xml, load_specs(case))
    assert again.xml == first.xml
    assert set(again.status.values()) <= {designer.KEPT} and again.removed == [] and not again.changed


@pytest.mark.parametrize("case", [c for c in CASES if c not in TEMPLATES])
def test_everything_else_is_preserved(case: str, results: dict[str, Any]) -> None:
    data, _ = load_input(case)
    assert without_ours(results[case].xml) == without_ours(data)


@pytest.mark.parametrize("case", CASES)
def test_metadata_round_trip(case: str, results: dict[str, Any]) -> None:
    """What the generator (lxml) writes is what metadata.py (the hook's reader) reads."""
    result = results[case]
    uuid, name, devices = metadata.parse_devices(result.xml)
    assert (uuid, name) == (result.uuid, result.name)
    assert devices == [d.as_dict() for d in result.devices]
    shmem = {el.get("name"): el for el in etree.fromstring(result.xml.encode()).iterfind("devices/shmem")}
    for d in devices:
        el = shmem[d["name"]]
        assert el.get("role") == "master" and el.find("model").get("type") == "ivshmem-plain"
        assert el.find("size").get("unit") == "M" and int(el.find("size").text) << 20 == d["size"]
        assert d["name"].startswith(f"synth-{uuid.replace('-', '')[:12]}-") and len(d["name"]) <= 31


def test_preserve_keeps_addresses_comments_and_the_users_shmem(results: dict[str, Any]) -> None:
    xml = results["preserve"].xml
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!-- ipsec-gw-1: kept by')
    assert "<!-- the root disk: virtio, on the second PCI slot -->" in xml
    assert 'slot="0x06"' in xml and '<shmem name="ops-telemetry">' in xml
    assert "<libosinfo:os" in xml and "<ops:ticket>NET-1234</ops:ticket>" in xml
    assert "<qemu:arg value=\"-no-user-config\"/>" in xml


def test_reinjection_keeps_libvirt_addresses_on_our_shmem(results: dict[str, Any]) -> None:
    """reinject-in.xml is what libvirt gives back (single quotes, addresses assigned to our
    shmem): injecting the same devices again changes nothing but the quoting."""
    data, _ = load_input("reinject")
    result = results["reinject"]
    assert not result.changed
    canon = [etree.tostring(etree.fromstring(x), method="c14n") for x in (data, result.xml.encode())]
    assert canon[0] == canon[1]
    assert result.xml.count("<address type=\"pci\"") == data.count(b"<address type='pci'")


def test_changed_list_keeps_removes_and_adds(results: dict[str, Any]) -> None:
    result = results["changed"]
    prefix = designer.region_prefix(result.uuid)
    assert result.status == {f"{prefix}0": designer.KEPT, f"{prefix}2": designer.ADDED}
    assert result.removed == [f"{prefix}1"]
    assert f"{prefix}1" not in result.xml
    # A name just removed is not handed to the new device.
    assert [d.dev_class for d in result.devices] == ["crypto", "packet"]


def test_an_edited_device_keeps_its_name(results: dict[str, Any]) -> None:
    first = results["preserve"]
    specs = load_specs("preserve")
    specs[0].kpis["throughput_gbps"] = 20
    specs[1].size = 16 << 20
    result = designer.inject(first.xml, list(reversed(specs)))
    assert {d.name: d.dev_class for d in result.devices} == {d.name: d.dev_class for d in first.devices}
    assert set(result.status.values()) == {designer.UPDATED} and result.removed == []
    assert '<size unit="M">16</size>' in result.xml and 'value="20"' in result.xml


def test_removing_every_device_restores_the_input(results: dict[str, Any]) -> None:
    for case in ("minimal", "preserve"):
        data, _ = load_input(case)
        result = designer.inject(results[case].xml, [])
        assert result.devices == [] and len(result.removed) == len(results[case].devices)
        assert without_ours(result.xml) == without_ours(data)
        assert metadata.NAMESPACE not in result.xml
    # The minimal input had neither <metadata> nor <devices>: both go away again.
    assert designer.inject(results["minimal"].xml, []).xml == load_input("minimal")[0].decode().replace("'", '"')
