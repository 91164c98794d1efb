# SPDX-License-Identifier: Apache-2.0
"""What the tests of the DPDK PMDs (native/dpdk/, docs/dpdk.md) share: the built PMD copied where
EAL will load it from, the EAL command line for a device, a device held by another process, and
the driver of the check programs' reset test."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from libvirt_synth._native import lib
from libvirt_synth.abi import DevClass
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.testbed import dpdk as guestdpdk

from rawregion import RawRegion

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "native" / "build" / "dpdk"


def install_pmd(name: str, *programs: pathlib.Path) -> pathlib.Path:
    """`make dpdk`, then the PMD native/build/dpdk/<name>.so copied where EAL will load it from
    (testbed.dpdk.loadable_copy); programs are the check programs that must have been built beside it."""
    subprocess.run(["make", "-s", "-C", str(ROOT), "dpdk"], check=True)
    built = BUILD / f"{name}.so"
    assert built.is_file() and all(p.is_file() for p in programs)
    return guestdpdk.loadable_copy(built)


def needs(tool: str | None, name: str) -> pytest.MarkDecorator:
    """A test module's mark: skipped, with the reason, if the DPDK tool name is not installed."""
    return pytest.mark.skipif(tool is None, reason=f"{name} is not installed (Debian: dpdk-dev)")


def pmd_fixture(name: str, *programs: pathlib.Path) -> Callable[[], pathlib.Path]:
    """A test module's `pmd` fixture: the PMD <name>.so, built and copied where EAL will load it
    from (install_pmd), once per module."""

    @pytest.fixture(scope="module", name="pmd")
    def pmd() -> pathlib.Path:
        return install_pmd(name, *programs)

    return pmd


def eal(pmd: pathlib.Path, vdev: str, prefix: str, lcores: str) -> list[str]:
    """EAL's arguments for the PMD on vdev (e.g. "crypto_synth0,region=..."): no hugepages, no PCI
    scan, EAL's files under prefix (each test's own: its region directory's name)."""
    return ["-l", lcores, "--no-huge", "-m", "256", "--no-pci", "--file-prefix", prefix, "-d", str(pmd),
            "--vdev", vdev]


def device_eal(pmd: pathlib.Path, driver: str, dev: HostDevice, lcores: str) -> list[str]:
    """EAL's arguments for the PMD's first device (<driver>0) over dev's region."""
    return eal(pmd, f"{driver}0,region={dev.path}", pathlib.Path(dev.path).parent.name, lcores)


@contextlib.contextmanager
def served(region_dir: pathlib.Path, worker: Worker, name: str, cls: DevClass, **kw: object) -> Iterator[HostDevice]:
    """A device region_dir/name of class cls, served by worker for the duration, then destroyed."""
    dev = HostDevice.create(str(region_dir / name), cls, **kw)
    try:
        worker.add(dev)
        yield dev
    finally:
        dev.destroy()


# Devargs each PMD refuses at probe, and what its message says.
BAD_DEVARGS = [
    ("region={dir}/absent", "cannot open"),
    ("", "give exactly one of region=PATH"),
    ("region={dir}/absent,pci=0000:00:05.0", "give exactly one of region=PATH"),
    ("regoin={dir}/absent", "bad devargs"),
]


def bad_vdev(driver: str, devargs: str, region_dir: pathlib.Path) -> str:
    """--vdev's value for the PMD's first device with one of BAD_DEVARGS."""
    return f"{driver}0" + ("," + devargs.format(dir=region_dir) if devargs else "")


@contextlib.contextmanager
def held(dev: HostDevice) -> Iterator[None]:
    """The device claimed by this process, as another driver claims it (a lock on the region's
    first byte), for the duration."""
    fd = os.open(dev.path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        yield
    finally:
        os.close(fd)


def mark_needs_reset(dev: HostDevice) -> None:
    """The host's verdict, written behind the backend's back: the device needs a reset."""
    raw = RawRegion(dev.path)
    raw.hdr.dev_status = lib.SYNTH_DEV_READY | lib.SYNTH_DEV_NEEDS_RESET
    raw.close()


def counts(line: str) -> dict[str, int]:
    """{"ok": 64, ...} from a check program's "<what> ok=64 error=0 other=0"."""
    return {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}


def _wait_in_ring(dev: HostDevice, n: int) -> None:
    """Until queue 0's submission ring holds n descriptors the backend has not taken."""
    raw = RawRegion(dev.path)
    try:
        sq = raw.queue(0)[0]
        deadline = time.monotonic() + 30
        while (sq.prod - sq.cons) & 0xFFFFFFFF < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (sq.prod - sq.cons) & 0xFFFFFFFF == n
    finally:
        raw.close()


def check_reset(cmd: list[str], device: HostDevice, worker: Worker, in_flight: bool) -> list[str]:
    """Drive a check program's "reset" test (cmd): a burst of 64 ops passes; the device is marked
    NEEDS_RESET between bursts, or with the next burst in flight (the backend not serving it, the
    burst all in queue 0's ring); that burst must come back failed, every op with an error status;
    stop/start must reset the device and a third burst pass. The lines the program writes after
    those, for the caller to check."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdin is not None
        assert counts(p.stdout.readline()) == {"ok": 64, "error": 0, "other": 0}
        if in_flight:
            worker.remove(device)
            p.stdin.write("go\n")
            p.stdin.flush()
            _wait_in_ring(device, 64)
            mark_needs_reset(device)
            failed = p.stdout.readline()
            worker.add(device)  # serving again (for the reset's handshake) only once the burst failed
        else:
            mark_needs_reset(device)
            p.stdin.write("go\n")
            p.stdin.flush()
            failed = p.stdout.readline()
        out, err = p.communicate("go\n", timeout=60)
        out = failed + out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out + err
    lines = out.splitlines()
    assert counts(lines[0]) == {"ok": 0, "error": 64, "other": 0}, out
    assert lines[1] == "start 0" and "reset: ok" in err, out + err
    assert counts(lines[2]) == {"ok": 64, "error": 0, "other": 0}, out
    return lines[3:]
