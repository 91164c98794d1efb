# SPDX-License-Identifier: Apache-2.0
"""What is the daemon's stays the daemon's: one virt-synthd per state directory, per socket and
per region; the prepare hook replaces only regions of its own domain; a region's blocks are taken
when it is created, so that a full /dev/shm fails the VM's start instead of killing its QEMU."""

from __future__ import annotations

import os
import pathlib
import subprocess
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from test_hook import domain_xml, run_hook

from libvirt_synth import errors
from libvirt_synth.abi import Alg, DevClass
from libvirt_synth.daemon import client
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, HostDeviceSpec

from daemonctl import DAEMON, Daemon, hooked, running, scratch

UUID = "5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20"
OTHER_UUID = "0e1f2a3b-4c5d-4e6f-8a7b-8c9d0e1f2a3b"
KEY = bytes(range(32))


@pytest.fixture
def base() -> Iterator[pathlib.Path]:
    with scratch("synthd-excl-") as d:
        yield d


def second(base: pathlib.Path, socket: str, state: pathlib.Path,
           regions: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Start another daemon in the foreground and return how it ended (it should refuse at once)."""
    (base / "empty.toml").write_text("")
    return subprocess.run([*DAEMON, "--config", str(base / "empty.toml"), "--socket", socket, "--state-dir",
                           str(state), "--region-dir", str(regions)], capture_output=True, text=True, timeout=30)


class Busy(threading.Thread):
    """A guest sealing and opening on one device without pause, checking every result."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.ops = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with Device.open(self.path) as g, g.queue(0).session(Alg.AES256_GCM, KEY) as s:
                while not self.stop.is_set():
                    data = os.urandom(64)
                    iv = self.ops.to_bytes(12, "big")
                    ct, tag = s.encrypt(data, iv, b"hdr")
                    assert ct + tag == AESGCM(KEY).encrypt(iv, data, b"hdr")
                    assert s.decrypt(ct, tag, iv, b"hdr") == data
                    self.ops += 1
        except BaseException as e:  # reported by the test
            self.failure = e


def test_a_second_daemon_refuses_and_the_first_keeps_serving(base: pathlib.Path) -> None:
    first = Daemon(base).start()
    try:
        first.call("domain.create", uuid=UUID, name="vnf1", devices=[{"name": "vnf1-c0", "class": "crypto"}])
        guest = Busy(str(first.regions / "vnf1-c0"))
        guest.start()
        pid = first.proc.pid  # type: ignore[union-attr]
        # The same configuration: the state directory is taken.
        r = second(base, first.socket, first.state, first.regions)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert f"already running (pid {pid})" in r.stderr and "Traceback" not in r.stderr
        # Its own state directory, the same socket: the socket answers, so it is not taken.
        r = second(base, first.socket, base / "state2", first.regions)
        assert r.returncode == 1 and "answers on" in r.stderr and f"pid {pid}" in r.stderr, r.stderr
        # Its own state and socket, the same regions: the region is locked by the first.
        (base / "other").mkdir()
        other = Daemon(base / "other", regions=first.regions).start()
        try:
            with pytest.raises(client.RpcError, match="another backend process serves it"):
                other.call("domain.create", uuid=UUID, name="vnf1", devices=[{"name": "vnf1-c0", "class": "crypto"}],
                           existing="attach")
            with pytest.raises(client.RpcError, match="another backend process serves it"):
                other.call("domain.create", uuid=UUID, name="vnf1", devices=[{"name": "vnf1-c0", "class": "crypto"}],
                           existing="replace")
        finally:
            other.stop()
        assert os.path.exists(first.socket), "nobody else removed the first daemon's socket"
        assert first.call("health")["pid"] == pid
        guest.stop.set()
        guest.join(10)
        assert guest.failure is None, f"the guest got a wrong answer: {guest.failure!r}"
        assert guest.ops > 0
    finally:
        first.stop()
    # A clean stop gives the state directory back: the next daemon starts.
    first.start()
    first.stop()


def test_a_daemon_removes_only_the_socket_it_bound(base: pathlib.Path) -> None:
    (base / "a").mkdir()
    (base / "b").mkdir()
    a = Daemon(base / "a").start()
    b = Daemon(base / "b")
    b.socket = a.socket
    try:
        os.unlink(a.socket)  # someone removed a's socket; b starts on the free path
        b.start()
        a.stop()
        assert os.path.exists(b.socket) and b.call("health")["pid"] == b.proc.pid  # type: ignore[union-attr]
    finally:
        b.stop()
    assert not os.path.exists(b.socket), "the owner removes its socket when it stops"


def test_two_backends_in_one_process_cannot_serve_one_region(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "r")
    dev = HostDevice.create(path, DevClass.CRYPTO, size=1 << 20)
    try:
        with pytest.raises(errors.BusyError, match="another backend process serves it"):
            HostDevice.from_spec(dev.spec, attach=True)
    finally:
        dev.destroy()


def test_attach_never_lays_a_header_over_a_file_that_is_not_a_region(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "r"
    path.write_bytes(b"someone's data".ljust(1 << 20, b"\x01"))
    with pytest.raises(errors.ValueError, match="File exists"):
        HostDevice.create(str(path), DevClass.CRYPTO, size=1 << 20)
    with pytest.raises(errors.DeviceError, match="bad magic"):
        HostDevice.from_spec(HostDeviceSpec(path=str(path), size=1 << 20), attach=True)
    assert path.read_bytes() == b"someone's data".ljust(1 << 20, b"\x01")


# ---- the prepare hook and files that are not this domain's regions ----


@pytest.fixture
def hook_env() -> Iterator[tuple[Daemon, pathlib.Path]]:
    with running("synthd-excl-") as d, hooked(d) as hook:
        yield d, hook


def device_xml(name: str) -> str:
    return domain_xml(f'<synth:device name="{name}" class="crypto" size="1048576" queues="1" ring-entries="256"/>')


def test_prepare_refuses_to_overwrite_a_file_that_is_not_a_region(hook_env: tuple[Daemon, pathlib.Path]) -> None:
    d, hook = hook_env
    victim = d.regions / "other-app"
    victim.write_bytes(b"another application's shared memory")
    r = run_hook(hook, "prepare", "begin", device_xml("other-app"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert str(victim) in r.stderr and "is not a synthetic device region" in r.stderr
    assert victim.read_bytes() == b"another application's shared memory"
    assert d.call("devices.list") == []


def test_prepare_refuses_a_region_its_registry_does_not_give_to_the_domain(
        hook_env: tuple[Daemon, pathlib.Path]) -> None:
    d, hook = hook_env
    # A region of ours, laid out by some other backend (a lost registry, another host's daemon).
    stray = HostDevice.create(str(d.regions / "stray"), DevClass.CRYPTO, size=1 << 20)
    stray.destroy(unlink=False)
    before = (d.regions / "stray").read_bytes()
    r = run_hook(hook, "prepare", "begin", device_xml("stray"))
    assert r.returncode == 1 and "registry has no record of it" in r.stderr and "fuser" in r.stderr, r.stderr
    assert (d.regions / "stray").read_bytes() == before
    # Another domain's region is refused too, even when nothing serves it.
    d.call("domain.create", uuid=OTHER_UUID, name="other", devices=[{"name": "theirs", "class": "crypto",
                                                                     "size": 1 << 20}])
    r = run_hook(hook, "prepare", "begin", device_xml("theirs"))
    assert r.returncode == 1 and f"belongs to domain {OTHER_UUID}" in r.stderr, r.stderr
    assert [x["name"] for x in d.call("devices.list") if x["served"]] == ["theirs"]


# ---- a full /dev/shm ----

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="mounts a small tmpfs (root)")


@pytest.fixture
def small_tmpfs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    mnt = tmp_path / "shm"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@needs_root
def test_a_region_that_does_not_fit_fails_at_creation_and_leaves_nothing(small_tmpfs: pathlib.Path) -> None:
    with pytest.raises(errors.NoSpaceError, match=r"has \d+ KiB free and the region needs 4096 KiB"):
        HostDevice.create(str(small_tmpfs / "big"), DevClass.CRYPTO, size=4 << 20)
    assert list(small_tmpfs.iterdir()) == []
    # What does fit takes its blocks at once: nothing is left to fail later.
    dev = HostDevice.create(str(small_tmpfs / "fits"), DevClass.CRYPTO, size=1 << 20)
    try:
        assert os.stat(small_tmpfs / "fits").st_blocks * 512 >= 1 << 20, "the region is not sparse"
    finally:
        dev.destroy()


@needs_root
def test_the_daemon_refuses_a_domain_whose_regions_do_not_fit(base: pathlib.Path, small_tmpfs: pathlib.Path) -> None:
    d = Daemon(base, regions=small_tmpfs).start()
    try:
        d.call("domain.create", uuid=OTHER_UUID, name="small", devices=[{"name": "s0", "class": "crypto",
                                                                         "size": 1 << 20}])
        with pytest.raises(client.RpcError, match="needs 4096 KiB; free space there or enlarge it") as e:
            d.call("domain.create", uuid=UUID, name="vnf1",
                   devices=[{"name": "v0", "class": "crypto", "size": 1 << 20},
                            {"name": "v1", "class": "crypto", "size": 4 << 20}])
        assert str(small_tmpfs) in str(e.value)
        assert sorted(p.name for p in small_tmpfs.iterdir()) == ["s0"], "all or nothing: v0 went too"
        with Device.open(str(small_tmpfs / "s0")) as g:  # the other domain is untouched
            g.queue(0).nop()
    finally:
        d.stop()
