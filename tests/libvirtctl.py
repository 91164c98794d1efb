# SPDX-License-Identifier: Apache-2.0
"""The real libvirt stack for the tests: virtlogd and libvirtd (started if they are not running:
this machine has no systemd), restarted when a hook is installed (libvirt reads hooks at start)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

#: A minimal TCG domain that boots nothing (QEMU runs SeaBIOS, waiting for a boot device).
MINIMAL_DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='pty'/>
  </devices>
</domain>"""


def pid_of(name: str) -> int | None:
    r = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    pids = [int(p) for p in r.stdout.split()]
    return pids[0] if pids else None


def available() -> str | None:
    """None if the real stack can run here, else why not."""
    if os.getuid() != 0:
        return "needs root (libvirtd, QEMU as libvirt-qemu)"
    for exe in ("libvirtd", "virtlogd", "virsh", "qemu-system-x86_64"):
        if not shutil.which(exe):
            return f"{exe} is not installed (scripts/apt-packages.txt; make setup)"
    return None


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, timeout=60,
                          check=check)


def wait_up(timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if virsh("version", check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("libvirtd did not come up")


def ensure_running() -> None:
    if pid_of("virtlogd") is None:
        subprocess.run(["virtlogd", "-d"], check=True)
    if pid_of("libvirtd") is None:
        subprocess.run(["libvirtd", "-d"], check=True)
    wait_up()


def restart_libvirtd() -> None:
    """Kill libvirtd and start it again. SIGKILL, because a clean libvirtd shutdown takes seconds
    here; running VMs do not care (QEMU runs on, libvirtd reconnects), which is what we test."""
    pid = pid_of("libvirtd")
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
    subprocess.run(["libvirtd", "-d"], check=True)
    wait_up()


@contextlib.contextmanager
def hooked_daemon(prefix: str) -> Iterator[Any]:
    """The real stack for a module's VMs: libvirtd running, a virt-synthd serving /dev/shm for the
    QEMU user, the hook installed in /etc/libvirt/hooks (libvirtd restarted to read it). Undone
    afterwards; the caller destroys and undefines its domains first."""
    from libvirt_synth.hook import install as hookinstall

    from daemonctl import Daemon, scratch

    ensure_running()
    with scratch(prefix) as base:
        d = Daemon(base, "--qemu-user", "libvirt-qemu", regions=pathlib.Path("/dev/shm")).start()
        try:
            hookinstall.install("/", d.socket)
            restart_libvirtd()  # libvirt reads its hooks when it starts
            yield d
        finally:
            hookinstall.remove("/")
            restart_libvirtd()
            d.stop()
