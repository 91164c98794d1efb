# SPDX-License-Identifier: Apache-2.0
"""virt-synthd under a supervisor, as systemd runs it (Type=notify, WatchdogSec=, ExecReload=):
the test stands in for systemd with a datagram socket of its own as $NOTIFY_SOCKET. READY=1 comes
once the socket answers and the registry's regions are re-attached; the watchdog is fed while
the daemon works; SIGHUP rereads the configuration, applies what can change live and keeps the
old configuration when the new file is wrong. And the operator's clean-up commands: `virt-synth
domains` and `destroy`, and `--timeout`."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from libvirt_synth.daemon import supervisor

from daemonctl import CLI, Daemon, scratch

UUID = "7e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"


class Supervisor:
    """What systemd listens with: NOTIFY_SOCKET."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []

    def wait_for(self, word: str, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, m in self.messages:
                if word in m.split("\n"):
                    self.messages.remove((t, m))
                    return t
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))
        raise AssertionError(f"no {word} from the daemon in {timeout} s; got {self.messages}")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Daemon, Supervisor]]:
    with scratch("synth-supervised-") as base:
        sup = Supervisor(base / "notify.sock")
        monkeypatch.setenv("NOTIFY_SOCKET", sup.path)
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        d = Daemon(base)
        try:
            yield d, sup
        finally:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()


def test_ready_once_it_answers_and_the_watchdog_is_fed(env: tuple[Daemon, Supervisor]) -> None:
    d, sup = env
    d.start()
    sup.wait_for("READY=1")
    assert d.call("health")["status"] == "ok"
    t0 = sup.wait_for("WATCHDOG=1")
    t1 = sup.wait_for("WATCHDOG=1")
    t2 = sup.wait_for("WATCHDOG=1")
    assert 0.02 < t2 - t0 < 1.0 and t1 < t2  # every WATCHDOG_USEC / 2 = 0.1 s
    d.stop()
    sup.wait_for("STOPPING=1")


def test_sighup_rereads_the_configuration_and_keeps_the_old_one_when_the_new_is_wrong(
        env: tuple[Daemon, Supervisor]) -> None:
    d, sup = env
    config = d.base / "virt-synthd.toml"
    config.write_text("[quotas]\nops_per_s = 1000\n")
    d.start()
    sup.wait_for("READY=1")
    dev = {"class": "crypto", "size": 1 << 20}

    def quotas_of_a_new_device(i: int) -> dict[str, int]:
        uuid = UUID[:-1] + str(i)
        d.call("domain.create", uuid=uuid, name=f"vm{i}", devices=[dev | {"name": f"vm{i}-c0"}])
        q = d.call("device.show", name=f"vm{i}-c0")["quotas"]
        d.call("domain.destroy", uuid=uuid)
        return dict(q)

    assert quotas_of_a_new_device(1) == {"ops_per_s": 1000}
    config.write_text('[quotas]\nops_per_s = 2000\n[migration]\npeers = ["' + "ab" * 32 + '"]\n'
                      '[workers]\ncount = 2\n')
    d.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    sup.wait_for("RELOADING=1")
    sup.wait_for("READY=1")
    assert quotas_of_a_new_device(2) == {"ops_per_s": 2000}
    log = d.log.read_text()
    assert "configuration reloaded: quotas, migration_peers" in log and "workers changed but take effect only" \
        in log
    config.write_text("[quotas]\nops_per_sec = 5\n")  # a typo
    d.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    sup.wait_for("READY=1")
    assert "configuration not reloaded" in d.log.read_text() and "ops_per_sec" in d.log.read_text()
    assert d.proc.poll() is None and quotas_of_a_new_device(3) == {"ops_per_s": 2000}


def test_domains_and_destroy_clean_up_after_a_vanished_vm(env: tuple[Daemon, Supervisor]) -> None:
    d, _ = env
    d.start()
    d.call("domain.create", uuid=UUID, name="gone", devices=[{"name": "gone-c0", "class": "crypto",
                                                              "size": 1 << 20}])
    r = d.cli("domains", "--json")
    assert [x["name"] for x in json.loads(r.stdout)] == ["gone"]
    assert "gone-c0" in d.cli("domains").stdout
    from libvirt_synth.guest import Device
    with Device.open(str(d.regions / "gone-c0")):  # a driver is attached: its VM would be running
        r = d.cli("destroy", "gone", check=False)
        assert r.returncode == 1 and "--force" in r.stderr, r.stderr
    r = d.cli("destroy", "gone")
    assert "destroyed gone-c0" in r.stdout
    assert d.call("domains.list") == [] and not (d.regions / "gone-c0").exists()
    r = d.cli("destroy", "gone", check=False)
    assert r.returncode == 1 and "no domain 'gone'" in r.stderr


def test_timeout_gives_up_on_a_daemon_that_does_not_answer(tmp_path: pathlib.Path) -> None:
    """A socket that accepts and never answers: --timeout bounds the wait and says why."""
    path = str(tmp_path / "mute.sock")
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(path)
    mute.listen(1)
    try:
        t0 = time.monotonic()
        r = subprocess.run([*CLI, "--timeout", "0.5", "health", "--socket", path], capture_output=True, text=True,
                           timeout=30, env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
        assert r.returncode == 1 and "did not answer" in r.stderr, r.stderr
        assert time.monotonic() - t0 < 10
    finally:
        mute.close()


def test_a_worker_that_makes_no_poll_pass_is_stalled() -> None:
    """The rule the watchdog and `health` use: a shared worker whose pass count stands still for
    longer than the limit is stalled; one that moves again is not."""
    from libvirt_synth.daemon.supervisor import Progress

    p = Progress(limit=5.0)
    assert p.stalled([{"passes": 10}, {"passes": 7}], 0.0) == []
    assert p.stalled([{"passes": 11}, {"passes": 7}], 3.0) == []
    assert p.stalled([{"passes": 12}, {"passes": 7}], 6.0) == [1]
    assert p.stalled([{"passes": 13}, {"passes": 8}], 7.0) == []
    assert p.stalled([{"passes": 13}, {"passes": 9}], 12.5) == [0]


def test_a_parked_worker_is_stalled_only_if_the_watcher_stands_still() -> None:
    """A parked worker makes no pass: its progress is the watcher's rounds of looks at its devices;
    with no device, there is nothing to watch, and it is never stalled."""
    from libvirt_synth.daemon.supervisor import Progress

    p = Progress(limit=5.0)
    one, empty = {"passes": 50, "parked": 1, "devices": 3}, {"passes": 9, "parked": 1, "devices": 0}
    assert p.stalled([one, empty], 0.0, watch_rounds=100) == []
    assert p.stalled([one, empty], 4.0, watch_rounds=560) == []
    assert p.stalled([one, empty], 8.0, watch_rounds=1020) == []  # passes stood still for 8 s: parked
    assert p.stalled([one, empty], 14.0, watch_rounds=1020) == [0]  # the watcher stopped looking
    assert p.stalled([{**one, "parked": 0, "passes": 51}, empty], 15.0, watch_rounds=1020) == []  # woke


def test_a_healthy_daemon_has_no_stalled_worker(env: tuple[Daemon, Supervisor]) -> None:
    d, _ = env
    d.start()
    time.sleep(2.5)  # a few of the daemon's looks at its workers
    h = d.call("health")
    assert h["stalled_workers"] == [] and h["workers"][0]["passes"] > 0
    assert d.cli("health").returncode == 0
    # Idle past the stall limit: the worker has parked (no pass since), and that is no stall.
    time.sleep(supervisor.Progress().limit + 1.5)
    h = d.call("health")
    assert h["workers"][0]["parked"] == 1 and h["stalled_workers"] == []
    assert d.cli("health").returncode == 0


def test_a_worker_stuck_in_a_plugin_is_stalled_and_starves_the_watchdog(env: tuple[Daemon, Supervisor],
                                                                       tmp_path: pathlib.Path) -> None:
    """An external plugin that blocks its worker (tests/plugins/ext_gcm.c with HANG_FILE): after
    a few seconds `health` names the worker, `virt-synth health` is degraded and the watchdog is
    no longer fed (systemd would restart the daemon); once the plugin returns, all is well again."""
    import threading

    from test_external_plugins import build

    from libvirt_synth.guest import Device

    d, sup = env
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    release = tmp_path / "release"
    build("ext_gcm.c", plugins / "ext-hang.so", "-DPLUGIN_ABI=SYNTH_PLUGIN_ABI_VERSION", '-DPLUGIN_NAME="ext-hang"',
          f'-DHANG_FILE="{release}"')
    d.extra = ("--plugin-dir", str(plugins))
    d.start()
    sup.wait_for("READY=1")
    d.call("domain.create", uuid=UUID, name="hang", devices=[{"name": "hang-c0", "class": "crypto", "size": 1 << 20}])
    g = Device.open(str(d.regions / "hang-c0"))
    s = g.queue(0).session("aes-256-gcm", bytes(32))
    done = threading.Event()

    def stuck() -> None:
        with contextlib.suppress(Exception):  # the guest library times out first; the worker is still in the plugin
            s.encrypt(b"x" * 64, bytes(12), b"HANG")
        done.set()

    threading.Thread(target=stuck, daemon=True).start()
    try:
        t0 = time.monotonic()
        while not d.call("health")["stalled_workers"]:
            assert time.monotonic() - t0 < 20, "the stuck worker was never reported"
            time.sleep(0.25)
        assert d.call("health")["stalled_workers"] == [0]
        r = d.cli("health", check=False)
        assert r.returncode == 2 and "stalled workers" in r.stdout
        assert "make no progress" in d.log.read_text()
        sup.messages.clear()
        while True:  # drain what was sent before the stall was seen
            try:
                sup.sock.recv(4096)
            except TimeoutError:
                break
        with pytest.raises(AssertionError):
            sup.wait_for("WATCHDOG=1", timeout=1.0)
    finally:
        release.touch()
    done.wait(15)
    t0 = time.monotonic()
    while d.call("health")["stalled_workers"]:
        assert time.monotonic() - t0 < 10, "the worker stayed stalled after the plugin returned"
        time.sleep(0.25)
    sup.wait_for("WATCHDOG=1", timeout=3.0)
    assert d.cli("health").returncode == 0
    g.close()
