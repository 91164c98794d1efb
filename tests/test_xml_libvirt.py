# SPDX-License-Identifier: Apache-2.0
"""Define and undefine through libvirt-python on test:///default (libvirt's embedded test driver:
libvirt's own domain parser, no daemon): libvirt keeps our shmem and metadata, and what it gives
back can be injected again without changing the devices."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest
from test_xml_golden import virt_xml_validate

from libvirt_synth import errors
from libvirt_synth.hook import metadata
from libvirt_synth.xml import connect, designer, spec, template

SPECS = ["crypto:caps=aes-256-gcm,kpi.throughput_gbps=12", "packet:channels=1,opt.link=wire:peer"]


@pytest.fixture
def conn() -> Iterator[Any]:
    c = connect.open_connection(connect.DEFAULT_URI)
    try:
        yield c
    finally:
        c.close()


def kernel_vm(name: str = "rt-vnf") -> designer.Result:
    text, source = template.fill("vnf-kernel", {"NAME": name, "KERNEL": "/boot/vmlinuz", "INITRD": "/boot/initrd.img",
                                                "CONSOLE_LOG": f"/tmp/{name}-console.log"})
    return designer.inject(text, [spec.parse_cli(s) for s in SPECS], source)


def test_define_lookup_undefine_round_trip(conn: Any, tmp_path: pathlib.Path) -> None:
    result = kernel_vm()
    defined = connect.define(conn, result.xml)
    assert (defined.name, defined.uuid, defined.active) == ("rt-vnf", result.uuid, False)
    assert defined.devices == [d.name for d in result.devices]

    dom = conn.lookupByName("rt-vnf")
    stored = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    for d in result.devices:
        assert f"<shmem name='{d.name}' role='master'>" in stored
        assert f"<size unit='M'>{d.size >> 20}</size>" in stored
    uuid, name, devices = metadata.parse_devices(stored)
    assert (uuid, name) == (result.uuid, "rt-vnf")
    assert devices == [d.as_dict() for d in result.devices]
    assert "<acpi/>" in stored and "<log file='/tmp/rt-vnf-console.log'" in stored

    # What libvirt gives back takes the same devices again without a change to them.
    again = designer.inject(stored, [spec.parse_cli(s) for s in SPECS], "libvirt")
    assert set(again.status.values()) == {designer.KEPT} and again.removed == []
    virt_xml_validate(again.xml, tmp_path)
    assert connect.define(conn, again.xml).devices == defined.devices

    info = connect.undefine(conn, "rt-vnf")
    assert info == {"name": "rt-vnf", "uuid": result.uuid, "uri": "test:///default", "destroyed": False}
    with pytest.raises(errors.NotFoundError, match="no domain 'rt-vnf'"):
        connect.lookup(conn, "rt-vnf")


def test_changed_devices_redefine(conn: Any) -> None:
    result = kernel_vm("rt-change")
    connect.define(conn, result.xml)
    stored = connect.inactive_xml(connect.lookup(conn, "rt-change"))
    changed = designer.inject(stored, [spec.parse_cli(SPECS[0]), spec.parse_cli("compress:caps=deflate")])
    defined = connect.define(conn, changed.xml)
    prefix = designer.region_prefix(result.uuid)
    assert defined.devices == [f"{prefix}0", f"{prefix}2"]
    stored = connect.inactive_xml(connect.lookup(conn, "rt-change"))
    assert f"{prefix}1" not in stored and [d["class"] for d in metadata.parse_devices(stored)[2]] == [
        "crypto", "compress"]
    connect.undefine(conn, result.uuid)  # by uuid


def test_start_and_forced_undefine(conn: Any) -> None:
    result = kernel_vm("rt-start")
    defined = connect.define(conn, result.xml, start=True)
    assert defined.active
    with pytest.raises(errors.ValueError, match="is running"):
        connect.undefine(conn, "rt-start")
    assert connect.undefine(conn, "rt-start", force=True)["destroyed"] is True
    with pytest.raises(errors.NotFoundError):
        connect.lookup(conn, "rt-start")


def test_libvirt_errors_are_synth_errors(conn: Any) -> None:
    with pytest.raises(connect.LibvirtError, match="cannot connect to nosuchdriver:///"):
        connect.open_connection("nosuchdriver:///")
    bad = kernel_vm("rt-bad").xml.replace("<name>rt-bad</name>", "<name>rt/bad</name>")
    with pytest.raises(connect.LibvirtError, match="libvirt refused the domain"):
        connect.define(conn, bad)


def test_the_kvm_and_disk_variants_define(conn: Any) -> None:
    text, source = template.fill("vnf-disk", {"NAME": "rt-disk", "DISK": "/var/lib/libvirt/images/x.qcow2",
                                              "DOMAIN_TYPE": "kvm"})
    result = designer.inject(text, [spec.parse_cli("compress")], source)
    stored = connect.inactive_xml(connect.lookup(conn, connect.define(conn, result.xml).name))
    assert stored.startswith("<domain type='kvm'>") and "<source file='/var/lib/libvirt/images/x.qcow2'/>" in stored
    connect.undefine(conn, "rt-disk")
