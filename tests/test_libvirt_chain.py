# SPDX-License-Identifier: Apache-2.0
"""The examples of docs/libvirt.md start, for real: ipsec-gw-1 and ipsec-gw-2, as the page's
commands generate them, defined in libvirtd and started with the libvirt hook and a real
virt-synthd. Their packet devices gw1-wan and gw2-wan are a wire between two running VMs: the
VM that starts second completes it, and a VM that stops leaves its peer with a clean link-down.

The VMs boot nothing (the page's kernel is replaced by SeaBIOS waiting for a boot device: what
is tested is their devices); this process drives the two regions as the guests' drivers would.
Root only, like test_libvirt_qemu (it installs the hook and restarts libvirtd)."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import pytest
from lxml import etree
from test_daemon_links import crosses, link_of
from test_xml_cli import run_doc_blocks

from libvirt_synth.guest import Device
from libvirt_synth.guest.packet import device_counters
from libvirt_synth.hook import metadata

import libvirtctl
from daemonctl import Daemon

why_not = libvirtctl.available()
pytestmark = [pytest.mark.skipif(why_not is not None, reason=why_not or ""), pytest.mark.slow]

SHM = pathlib.Path("/dev/shm")
VMS = ("ipsec-gw-1", "ipsec-gw-2")


def bootless(path: pathlib.Path) -> list[str]:
    """Drop the page's kernel, initrd and command line (paths of a guest image this host may not
    have); return the domain's region names."""
    doc = etree.parse(str(path))
    os_el = doc.getroot().find("os")
    for tag in ("kernel", "initrd", "cmdline"):
        for el in os_el.findall(tag):
            os_el.remove(el)
    doc.write(str(path))
    return [d["name"] for d in metadata.parse_devices(path.read_text())[2]]


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[Daemon, dict[str, list[str]]]]:
    with libvirtctl.hooked_daemon("synth-chain-") as d:
        docs = d.base / "docs"
        docs.mkdir()
        run_doc_blocks(docs)
        regions = {vm: bootless(docs / f"{vm}.xml") for vm in VMS}
        assert "gw1-wan" in regions["ipsec-gw-1"] and regions["ipsec-gw-2"] == ["gw2-wan"]
        try:
            for vm in VMS:
                libvirtctl.virsh("define", str(docs / f"{vm}.xml"))
            yield d, regions
        finally:
            for vm in VMS:
                libvirtctl.virsh("destroy", vm, check=False)
                libvirtctl.virsh("undefine", vm, check=False)
            for n in (n for names in regions.values() for n in names):
                (SHM / n).unlink(missing_ok=True)  # left only if a stop failed: a rerun must start clean


def state(vm: str) -> str:
    return libvirtctl.virsh("domstate", vm).stdout.strip()


def test_the_docs_vms_start_and_the_second_completes_their_wire(chain: tuple[Daemon, dict[str, list[str]]]) -> None:
    d, regions = chain
    libvirtctl.virsh("start", "ipsec-gw-1")
    try:
        assert state("ipsec-gw-1") == "running"
        assert sorted(x["name"] for x in d.call("devices.list") if x["served"]) == sorted(regions["ipsec-gw-1"])
        assert link_of(d, "gw1-wan")["link"] == "none", "its peer VM is not running yet"
        libvirtctl.virsh("start", "ipsec-gw-2")
        try:
            assert state("ipsec-gw-2") == "running"
            la = link_of(d, "gw1-wan")
            assert (la["link"], la["peer"], la["peer_alive"]) == ("wire", "gw2-wan", True)
            crosses(d, "gw1-wan", "gw2-wan")
            # The second VM stops: the first keeps running, its channel goes down cleanly.
            with Device.open(str(SHM / "gw1-wan")) as g:
                libvirtctl.virsh("destroy", "ipsec-gw-2")
                deadline = time.monotonic() + 10
                while device_counters(g)["links"][0] != "none":
                    assert time.monotonic() < deadline, "gw1-wan's driver never saw the link go down"
                    time.sleep(0.05)
                assert not g.needs_reset
            assert state("ipsec-gw-1") == "running" and not (SHM / "gw2-wan").exists()
            # ... and when it starts again, the wire is back.
            libvirtctl.virsh("start", "ipsec-gw-2")
            crosses(d, "gw1-wan", "gw2-wan")
        finally:
            libvirtctl.virsh("destroy", "ipsec-gw-2", check=False)
    finally:
        libvirtctl.virsh("destroy", "ipsec-gw-1", check=False)
    deadline = time.monotonic() + 10
    while any(x["served"] for x in d.call("devices.list")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(x["served"] for x in d.call("devices.list"))
