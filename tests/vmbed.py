# SPDX-License-Identifier: Apache-2.0
"""One boot of the test guest with its crypto devices served by a real virt-synthd, for the VM tests
that run guest steps (tests/test_provider_vm.py, tests/test_dpdk_vm.py): the image published where
QEMU can read it, the domain's devices created in the daemon, the run parsed from the console, the
daemon's statistics taken after it; everything torn down however the test ends."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from libvirt_synth.hook import metadata
from libvirt_synth.testbed import image as guestimage
from libvirt_synth.testbed import vm as guestvm

import libvirtctl
from daemonctl import Daemon

SHM = pathlib.Path("/dev/shm")


@dataclass
class Booted:
    image: guestimage.GuestImage
    console: str
    run: guestvm.GuestRun
    stats: dict[str, Any]
    seconds: float


@contextlib.contextmanager
def boot(built: guestimage.GuestImage, *, name: str, uuid: str, prefix: str, cmdline: str, devices: list[str],
         regions: Iterable[str], timeout: float, **xml_kw: Any) -> Iterator[Booted]:
    """Boot `built` as domain name/uuid with `cmdline` after the testbed's base command line and
    `devices` (the daemon's device specs), wait for it to power off (at most `timeout` s), and yield
    what it printed. `regions`: the region files in /dev/shm the devices use, removed at the end.
    xml_kw: more arguments of testbed.vm.domain_xml (memory_mib, cpu_model...)."""
    from libvirt_synth.xml import connect

    libvirtctl.ensure_running()
    base = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    base.chmod(0o755)  # QEMU (libvirt-qemu) reads the kernel and initrd from here
    daemon: Daemon | None = None
    try:
        image = guestimage.publish(built, base / "image")
        console_log = base / "console.log"
        xml = guestvm.domain_xml(name, uuid, str(image.kernel), str(image.initrd), f"{guestvm.BASE_CMDLINE} {cmdline}",
                                 devices, str(console_log), **xml_kw)
        daemon = Daemon(base, "--qemu-user", "libvirt-qemu", regions=SHM).start()
        dom_uuid, dom_name, specs = metadata.parse_devices(xml)
        daemon.call("domain.create", uuid=dom_uuid, name=dom_name, devices=specs, existing="replace")
        conn = connect.open_connection("qemu:///system")
        t0 = time.monotonic()
        console = guestvm.run_domain(conn, xml, str(console_log), timeout=timeout)
        seconds = time.monotonic() - t0
        yield Booted(image, console, guestvm.parse_console(console), daemon.call("stats"), seconds)
    finally:
        libvirtctl.virsh("destroy", name, check=False)
        libvirtctl.virsh("undefine", name, check=False)
        if daemon is not None:
            daemon.call("domain.destroy", uuid=uuid)
            daemon.stop()
        for r in regions:
            (SHM / r).unlink(missing_ok=True)
        shutil.rmtree(base, ignore_errors=True)
