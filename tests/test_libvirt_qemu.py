# SPDX-License-Identifier: Apache-2.0
"""The real stack: libvirtd + virtlogd + QEMU (TCG) starting a domain with two synthetic devices,
the libvirt hook creating them in a real virt-synthd, QEMU mapping the regions, and the devices
going away with the domain. Also: a start with the daemon down, and a libvirtd restart while the
domain runs. Root only (it installs the hook under /etc/libvirt/hooks/qemu.d and restarts libvirtd;
both are undone afterwards)."""

from __future__ import annotations

import grp
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from libvirt_synth.hook import install as hookinstall
from libvirt_synth.hook import metadata

import libvirtctl
from daemonctl import Daemon

why_not = libvirtctl.available()
pytestmark = [pytest.mark.skipif(why_not is not None, reason=why_not or ""), pytest.mark.slow]

UUID = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"
NAME = "synth-test-vm"
DEVS = ["synth-b1c2d3e4f5a6-0", "synth-b1c2d3e4f5a6-1"]
SHM = pathlib.Path("/dev/shm")


def domain_xml(base: pathlib.Path) -> str:
    """A minimal TCG domain (nothing to boot: QEMU runs SeaBIOS) with two synthetic devices
    injected by the XML generator, as an operator would with `virt-synth xml`."""
    plain = base / "plain.xml"
    plain.write_text(libvirtctl.MINIMAL_DOMAIN.format(name=NAME, uuid=UUID))
    r = subprocess.run([sys.executable, "-m", "libvirt_synth.cli", "xml", str(plain), "--device", "crypto:size=1M",
                        "--device", "crypto:size=4M,caps=aes-256-gcm"], capture_output=True, text=True, check=True)
    return r.stdout


@pytest.fixture(scope="module")
def stack() -> Iterator[Daemon]:
    libvirtctl.ensure_running()
    base = pathlib.Path(tempfile.mkdtemp(prefix="synth-libvirt-", dir="/dev/shm"))
    d = Daemon(base, "--qemu-user", "libvirt-qemu", regions=SHM).start()
    hookinstall.install("/", d.socket)
    libvirtctl.restart_libvirtd()  # libvirt reads its hooks when it starts
    xml = base / "domain.xml"
    xml.write_text(domain_xml(base))
    libvirtctl.virsh("define", str(xml))
    try:
        yield d
    finally:
        libvirtctl.virsh("destroy", NAME, check=False)
        libvirtctl.virsh("undefine", NAME, check=False)
        hookinstall.remove("/")
        libvirtctl.restart_libvirtd()
        d.stop()
        for n in DEVS:
            (SHM / n).unlink(missing_ok=True)
        shutil.rmtree(base, ignore_errors=True)


def qemu_pid() -> int:
    return int(pathlib.Path(f"/run/libvirt/qemu/{NAME}.pid").read_text())


def qemu_cmdline() -> str:
    return pathlib.Path(f"/proc/{qemu_pid()}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def served(d: Daemon) -> list[str]:
    return sorted(x["name"] for x in d.call("devices.list") if x["served"])


def test_start_serves_and_maps_the_devices_and_destroy_removes_them(stack: Daemon) -> None:
    d = stack
    libvirtctl.virsh("start", NAME)
    try:
        assert served(d) == DEVS
        # The domain's QEMU runs as its own uid (virt-synth xml's default here: no SELinux or
        # AppArmor), in libvirt's QEMU group; its regions are that uid's alone.
        uid = metadata.parse_domain(libvirtctl.virsh("dumpxml", "--inactive", NAME).stdout)["uid"]
        assert uid is not None and os.stat(f"/proc/{qemu_pid()}").st_uid == uid
        group = grp.getgrnam("libvirt-qemu").gr_gid
        for n, size in zip(DEVS, (1 << 20, 4 << 20), strict=True):
            st = os.stat(SHM / n)
            assert (st.st_uid, st.st_gid, st.st_mode & 0o777, st.st_size) == (uid, group, 0o600, size)
        cmd = qemu_cmdline()
        assert cmd.count("ivshmem-plain") == 2
        for n in DEVS:
            assert f"/dev/shm/{n}" in cmd and '"master":"on"' in cmd
        assert libvirtctl.virsh("domstate", NAME).stdout.strip() == "running"
    finally:
        libvirtctl.virsh("destroy", NAME)
    deadline = time.monotonic() + 10
    while served(d) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served(d) == [] and not any((SHM / n).exists() for n in DEVS)


def test_start_with_the_daemon_down_fails_clearly_and_leaves_nothing(stack: Daemon) -> None:
    d = stack
    d.stop()
    try:
        r = libvirtctl.virsh("start", NAME, check=False)
        assert r.returncode != 0
        assert "cannot create the synthetic devices of synth-test-vm" in r.stderr
        assert "virt-synthd is not running" in r.stderr
        assert libvirtctl.virsh("domstate", NAME).stdout.strip() == "shut off"
        assert not any((SHM / n).exists() for n in DEVS)
    finally:
        d.start()
    assert served(d) == []


def test_libvirtd_restart_keeps_the_vm_and_its_devices(stack: Daemon) -> None:
    """The daemon first loses the devices (restarted without its registry, the VM running on);
    only the reconnect hook, run by the restarted libvirtd, can make it serve them again."""
    d = stack
    libvirtctl.virsh("start", NAME)
    try:
        pid_before = pathlib.Path(f"/run/libvirt/qemu/{NAME}.pid").read_text()
        inodes = [os.stat(SHM / n).st_ino for n in DEVS]
        d.stop()
        (d.state / "registry.sqlite").unlink()
        d.start()
        assert served(d) == [] and d.call("devices.list") == []
        libvirtctl.restart_libvirtd()  # the hook runs "reconnect"
        deadline = time.monotonic() + 30
        while served(d) != DEVS:
            assert time.monotonic() < deadline, f"the reconnect hook did not serve {DEVS}: {served(d)}"
            time.sleep(0.1)
        assert libvirtctl.virsh("domstate", NAME).stdout.strip() == "running"
        assert pathlib.Path(f"/run/libvirt/qemu/{NAME}.pid").read_text() == pid_before
        # Taken over, not replaced: the files QEMU maps, now served again (generation bumped).
        assert [os.stat(SHM / n).st_ino for n in DEVS] == inodes
        assert [x["generation"] for x in d.call("devices.list")] == [2, 2]
    finally:
        libvirtctl.virsh("destroy", NAME)
