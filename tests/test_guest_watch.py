# SPDX-License-Identifier: Apache-2.0
"""``synth-guest watch``: synthetic devices coming and going on the PCI bus (what ACPI hot-plug by
virt-synth attach / detach looks like inside a VM), here on the host. The guest library finds PCI
devices under ``$LIBVIRT_SYNTH_SYSFS/bus/pci/devices`` (default ``/sys``), so a fake sysfs tree
whose ``resource2`` points at a served region file stands for the VM's bus: a device directory that
appears is a hot-plug, one that goes is an unplug. The guest must list, use (AES-256-GCM, checked
against ``cryptography``), close and forget each one; docs/guest.md ("Hot-plug")."""

from __future__ import annotations

import json
import os
import pathlib
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from test_guest_api import make_fake_pci

from libvirt_synth.abi import DevClass
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.testbed import vm as guestvm

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEED = 20250302


@pytest.fixture(scope="module")
def synth_guest() -> pathlib.Path:
    subprocess.run(["make", "-s", "-C", str(ROOT), "synth-guest"], check=True)
    return ROOT / "native/build/synth-guest"


def add_pci(sysfs: pathlib.Path, bdf: str, resource: pathlib.Path | None, vendor: str = "0x1af4",
            device: str = "0x1110") -> pathlib.Path:
    """A PCI function in the fake tree: an ivshmem-plain device (BAR2 = ``resource2``) unless told
    otherwise."""
    return make_fake_pci(sysfs, bdf, vendor, device, resource)


class Watcher:
    """``synth-guest watch`` running on the fake bus; its lines read as they come."""

    def __init__(self, exe: pathlib.Path, sysfs: pathlib.Path, params: pathlib.Path, *extra: str) -> None:
        env = dict(os.environ, LIBVIRT_SYNTH_SYSFS=str(sysfs))
        self.proc = subprocess.Popen([str(exe), "--params", str(params), *extra, "watch"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._q.put(json.loads(raw))
        self._q.put(None)

    def expect(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """The next line that matches; every line read is kept in ``lines``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                rec = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching line within {timeout} s; read so far: {self.lines}") from None
            if rec is None:
                raise AssertionError(f"synth-guest ended first (rc {self.proc.wait()}); read: {self.lines}")
            self.lines.append(rec)
            if match(rec):
                return rec

    def event(self, event: str, dev: str, timeout: float = 10.0) -> dict[str, Any]:
        return self.expect(lambda r: r["type"] == "watch" and r["event"] == event and r["dev"] == dev, timeout)

    def finish(self, timeout: float = 20.0) -> tuple[int, dict[str, Any], str]:
        """Exit status, summary line and stderr once the watch ends."""
        summary = self.expect(lambda r: r["type"] == "summary", timeout)
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        assert self.proc.stderr is not None
        return rc, summary, self.proc.stderr.read()

    def holds(self, path: str) -> bool:
        """Whether the process still maps or has open the region file (the device not closed)."""
        pid = self.proc.pid
        maps = pathlib.Path(f"/proc/{pid}/maps").read_text()
        fds = [os.readlink(f) for f in pathlib.Path(f"/proc/{pid}/fd").iterdir() if f.is_symlink()]
        return path in maps or path in fds

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def sysfs(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "sys"
    (root / "bus" / "pci" / "devices").mkdir(parents=True)
    add_pci(root, "0000:00:01.0", None, "0x8086", "0x7000")  # a host bridge: not ours
    return root


def params(tmp_path: pathlib.Path, inputs: guestvm.Inputs, **watch: int) -> pathlib.Path:
    """The kernel command line a VM would get, with the watch's words."""
    p = tmp_path / "cmdline"
    p.write_text(inputs.cmdline() + "".join(f" synth.{k}={v}" for k, v in watch.items()))
    return p


def until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_crypto_device_plugged_in_is_used_closed_and_seen_to_go(
        synth_guest: pathlib.Path, sysfs: pathlib.Path, region_dir: pathlib.Path, worker: Worker,
        tmp_path: pathlib.Path) -> None:
    inputs = guestvm.Inputs.make(SEED, steps=("watch",))
    expected = AESGCM(inputs.key[:32]).encrypt(inputs.iv[:12], inputs.data, inputs.aad)
    comp = HostDevice.create(str(region_dir / "z0"), DevClass.COMPRESS, size=1 << 20)
    crypto = [HostDevice.create(str(region_dir / f"c{i}"), DevClass.CRYPTO, size=1 << 20) for i in range(2)]
    worker.add(comp)
    add_pci(sysfs, "0000:00:04.0", pathlib.Path(comp.path))
    w = Watcher(synth_guest, sysfs, params(tmp_path, inputs, watch_ms=30000))
    try:
        present = w.event("present", "0000:00:04.0")
        assert present["class"] == "compress" and "status" not in present
        assert w.expect(lambda r: r["type"] == "watch-start")["devices"] == 1  # the host bridge is not listed

        for i, dev in enumerate(crypto):
            # The first is plugged in 0.6 s before its backend serves it: the scan lists it within
            # 0.2 s, the open gives up after 0.25 s, and the watch tries again on its next scans
            # (for a second from the first sighting) until the backend is there.
            fn = add_pci(sysfs, "0000:00:05.0", pathlib.Path(dev.path))
            plugged = time.monotonic()
            if i == 0:
                time.sleep(0.6)
            worker.add(dev)
            added = w.event("added", "0000:00:05.0")
            if i == 0:
                assert time.monotonic() - plugged >= 0.6
            assert added["class"] == "crypto" and "status" not in added
            used = w.event("used", "0000:00:05.0")
            assert used["status"] == "ok", used
            assert used["alg"] == "aes-256-gcm"
            assert bytes.fromhex(used["ciphertext"]) + bytes.fromhex(used["tag"]) == expected
            # It let go of the device: session destroyed, region unmapped and its file closed.
            def let_go(d: HostDevice = dev) -> bool:
                return d.stats().sessions == 0 and not w.holds(d.path)
            assert until(let_go), w.lines
            assert dev.stats().ops == 3  # create, encrypt, destroy: nothing more
            with Device.open(dev.path) as g:
                assert used["backend"] == g.info().backend != ""
            shutil.rmtree(fn)  # unplugged
            w.event("removed", "0000:00:05.0")
            worker.remove(dev)

        assert not w.holds(comp.path)  # a device there at start is listed, not kept open
        assert comp.stats().ops == 0
        w.proc.send_signal(signal.SIGTERM)
        rc, summary, err = w.finish()
        assert (rc, err) == (0, "")
        assert {k: summary[k] for k in ("devices", "present", "added", "removed", "used", "failed")} == \
            {"devices": 1, "present": 1, "added": 2, "removed": 2, "used": 2, "failed": 0}
        events = [(r["event"], r["dev"]) for r in w.lines if r["type"] == "watch"]
        assert events == [("present", "0000:00:04.0")] + [("added", "0000:00:05.0"), ("used", "0000:00:05.0"),
                                                          ("removed", "0000:00:05.0")] * 2
        assert summary["events"] == len(events)
        ts = [r["t_ms"] for r in w.lines if r["type"] == "watch"]
        assert ts == sorted(ts)
    finally:
        w.kill()
        for d in (comp, *crypto):
            d.destroy()


def test_a_device_that_never_opens_is_reported_after_a_second(
        synth_guest: pathlib.Path, sysfs: pathlib.Path, region_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Laid out, never served: after a second of attempts the failure is the line, the exit status
    is 1, and synth.watch_events=1 ends the watch there."""
    inputs = guestvm.Inputs.make(SEED, steps=("watch",))
    orphan = HostDevice.create(str(region_dir / "orphan"), DevClass.CRYPTO, size=1 << 20)
    w = Watcher(synth_guest, sysfs, params(tmp_path, inputs, watch_ms=30000, watch_events=1))
    try:
        start = w.expect(lambda r: r["type"] == "watch-start")
        assert (start["devices"], start["watch_events"]) == (0, 1)
        add_pci(sysfs, "0000:00:07.0", pathlib.Path(orphan.path))
        plugged = time.monotonic()
        added = w.event("added", "0000:00:07.0")
        assert time.monotonic() - plugged >= 1.0  # tried for a second first
        assert added["class"] == "unknown" and added["status"] == os.strerror(110)  # ETIMEDOUT
        rc, summary, err = w.finish()
        assert (rc, err) == (1, "")
        assert summary["failed"] == 1 and summary["events"] == 1 and summary["used"] == 0
        assert summary["elapsed_ms"] < 10000  # the event limit ended it, not synth.watch_ms
    finally:
        w.kill()
        orphan.destroy()


def test_watch_ms_ends_the_watch_and_bad_inputs_are_refused(
        synth_guest: pathlib.Path, sysfs: pathlib.Path, tmp_path: pathlib.Path) -> None:
    inputs = guestvm.Inputs.make(SEED, steps=("watch",))
    w = Watcher(synth_guest, sysfs, params(tmp_path, inputs, watch_ms=300))
    try:
        rc, summary, err = w.finish()
        assert (rc, err) == (0, "")
        assert summary["devices"] == 0 and summary["events"] == 0 and 300 <= summary["elapsed_ms"] < 5000
    finally:
        w.kill()
    env = dict(os.environ, LIBVIRT_SYNTH_SYSFS=str(sysfs))
    for args, msg in ((["-p", "watch_ms=soon", "watch"], "bad value for synth.watch_ms: soon"),
                      (["-p", "watch_events=-1", "watch"], "bad value for synth.watch_events: -1"),
                      (["watch", "0000:00:05.0"], "usage:")):
        r = subprocess.run([str(synth_guest), *args], env=env, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and msg in r.stderr and r.stdout == ""
    r = subprocess.run([str(synth_guest), "-p", "watch_ms=200", "watch"], capture_output=True, text=True,
                       env=dict(os.environ, LIBVIRT_SYNTH_SYSFS=str(tmp_path / "nowhere")), timeout=10)
    assert r.returncode == 1
    assert json.loads(r.stdout.splitlines()[0]) == {
        "type": "error", "what": "scanning the PCI bus for synthetic devices", "error": "No such file or directory"}
