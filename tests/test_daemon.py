# SPDX-License-Identifier: Apache-2.0
"""virt-synthd for real: a daemon process in a temporary directory, driven through JSON-RPC, the
CLI and the Python guest API."""

from __future__ import annotations

import json
import os
import pathlib
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from libvirt_synth.daemon import client, protocol
from libvirt_synth.guest import Device
from libvirt_synth.host.plugins import catalog

from daemonctl import Daemon, scratch
from test_hostile import check_still_serves

UUID = "5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20"


@pytest.fixture
def base() -> Iterator[pathlib.Path]:
    with scratch("synthd-test-") as d:  # others may enter it: an unprivileged client reaches the socket
        yield d


@pytest.fixture
def daemon(base: pathlib.Path) -> Iterator[Daemon]:
    d = Daemon(base).start()
    try:
        yield d
    finally:
        d.stop()


def two_devices(prefix: str = "vnf1") -> list[dict[str, object]]:
    return [{"name": f"{prefix}-crypto0", "class": "crypto", "size": 1 << 20, "capabilities": ["aes-256-gcm"]},
            {"name": f"{prefix}-crypto1", "class": "crypto", "queues": 2}]


def test_health_and_plugins(daemon: Daemon) -> None:
    h = daemon.call("health")
    assert h["status"] == "ok" and h["devices"] == 0 and h["pid"] == daemon.proc.pid  # type: ignore[union-attr]
    out = json.loads(daemon.cli("health", "--json").stdout)
    assert out["socket"] == daemon.socket
    plugins = json.loads(daemon.cli("plugins", "--json").stdout)["plugins"]
    # The daemon lists this host's catalog, each plugin as able to run here as the catalog says.
    assert {(p["name"], p["available"]) for p in plugins} == {(p.name, p.available) for p in catalog()}
    assert "PLUGIN" in daemon.cli("plugins").stdout


def test_domain_life_cycle(daemon: Daemon) -> None:
    r = daemon.call("domain.create", uuid=UUID, name="vnf1", devices=two_devices())
    names = [d["name"] for d in r["devices"]]
    assert names == ["vnf1-crypto0", "vnf1-crypto1"]
    for n in names:
        st = os.stat(daemon.regions / n)
        assert st.st_mode & 0o777 == 0o600
    assert os.stat(daemon.regions / names[0]).st_size == 1 << 20
    with Device.open(str(daemon.regions / names[1])) as g:
        check_still_serves(g.queue(1))
        listing = json.loads(daemon.cli("devices", "--json").stdout)
        by = {d["name"]: d for d in listing}
        assert by["vnf1-crypto1"]["driver_attached"] and by["vnf1-crypto1"]["ops"] >= 3
        assert by["vnf1-crypto0"]["domain"] == UUID
        stats = json.loads(daemon.cli("stats", "vnf1-crypto1", "--json").stdout)
        assert stats["devices"]["vnf1-crypto1"]["by_status"]["ok"] >= 3
    show = daemon.call("device.show", name="vnf1-crypto0")
    assert show["spec"]["capabilities"] == ["aes-256-gcm"] and show["region"]["size"] == 1 << 20
    # Running the hook's create again (a retried start) keeps what is served.
    again = daemon.call("domain.create", uuid=UUID, name="vnf1", devices=two_devices())
    assert [d["generation"] for d in again["devices"]] == [1, 1]
    gone = daemon.call("domain.destroy", uuid=UUID)
    assert gone["destroyed"] == names and gone["existed"]
    assert list(daemon.regions.iterdir()) == []
    assert daemon.call("domain.destroy", uuid=UUID) == {"uuid": UUID, "destroyed": [], "existed": False}
    assert daemon.call("devices.list") == []


@pytest.mark.parametrize("devices,match", [
    ([], "non-empty list"),
    ([{"name": "../etc/passwd", "class": "crypto"}], "not a valid region name"),
    ([{"name": "ok", "class": "quantum"}], "unknown device class"),
    ([{"name": "dup", "class": "crypto"}, {"name": "dup", "class": "crypto"}], "duplicate"),
    ([{"name": "good", "class": "crypto"}, {"name": "bad", "class": "crypto", "size": 3 << 20}], "power of two"),
])
def test_bad_requests_are_refused_and_leave_nothing(daemon: Daemon, devices: list[object], match: str) -> None:
    with pytest.raises(client.RpcError, match=match) as e:
        daemon.call("domain.create", uuid=UUID, name="x", devices=devices)
    assert e.value.code == protocol.INVALID_VALUE
    assert list(daemon.regions.iterdir()) == [] and daemon.call("devices.list") == []


def test_protocol_errors(daemon: Daemon) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(daemon.socket)
        f = s.makefile("rwb")
        for raw, code in [(b"not json\n", protocol.PARSE_ERROR),
                          (b'{"jsonrpc": "2.0", "id": 1}\n', protocol.INVALID_REQUEST),
                          (b'{"jsonrpc": "2.0", "id": 2, "method": "nope"}\n', protocol.METHOD_NOT_FOUND),
                          (b'{"jsonrpc": "2.0", "id": 3, "method": "health", "params": {"x": 1}}\n',
                           protocol.INVALID_PARAMS)]:
            f.write(raw)
            f.flush()
            assert json.loads(f.readline())["error"]["code"] == code
    assert daemon.call("health")["status"] == "ok"  # still up


def untraversable_by(user: pwd.struct_passwd, *paths: str) -> str | None:
    """The first directory on the way to one of these paths that the user (with its own group
    only, as run_as_nobody leaves it) may not enter, or None."""
    for path in paths:
        for d in [pathlib.Path(path), *pathlib.Path(path).parents]:
            st = d.stat()
            if not d.is_dir():
                continue
            bit = 0o100 if st.st_uid == user.pw_uid else 0o010 if st.st_gid == user.pw_gid else 0o001
            if not st.st_mode & bit:
                return str(d)
    return None


def run_as_nobody(code: str, sock: str) -> subprocess.CompletedProcess[str]:
    nobody = pwd.getpwnam("nobody")

    def drop() -> None:
        os.setgid(nobody.pw_gid)
        os.setgroups([])
        os.setuid(nobody.pw_uid)

    return subprocess.run([sys.executable, "-c", code, sock], capture_output=True, text=True, timeout=30,
                          preexec_fn=drop, env={**os.environ, "HOME": "/"})


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a client as another user")
def test_unprivileged_callers_may_read_but_not_change(daemon: Daemon) -> None:
    import libvirt_synth

    closed = untraversable_by(pwd.getpwnam("nobody"), sys.prefix, os.path.dirname(libvirt_synth.__file__))
    if closed:
        pytest.skip(f"user nobody cannot enter {closed}, on the way to the venv or the checkout: "
                    "run the suite from a checkout others may enter")
    code = f"""
import sys
from libvirt_synth.daemon import client
s = sys.argv[1]
print(client.call("health", s)["status"])
try:
    client.call("domain.create", s, uuid="{UUID}", name="x", devices=[{{"name": "x0", "class": "crypto"}}])
except client.RpcError as e:
    print(e.code, e)
"""
    r = run_as_nobody(code, daemon.socket)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ok"
    assert lines[1].startswith(str(protocol.PERMISSION_DENIED)) and "permission denied" in lines[1]
    assert daemon.call("devices.list") == []


def test_sigterm_is_prompt_and_restart_reattaches(base: pathlib.Path) -> None:
    d = Daemon(base).start()
    d.call("domain.create", uuid=UUID, name="vnf1", devices=two_devices())
    path = str(d.regions / "vnf1-crypto0")
    g = Device.open(path)
    g.queue(0).nop()
    t = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t < 3, "SIGTERM must stop the daemon promptly"
    assert os.path.exists(path), "a stopped daemon leaves the regions to the VMs"
    d2 = Daemon(base).start()
    try:
        listing = {x["name"]: x for x in d2.call("devices.list")}
        assert listing["vnf1-crypto0"]["served"] and listing["vnf1-crypto0"]["generation"] == 2
        g.queue(0).nop()  # the driver carries on: same epoch, same rings
        assert g.info().generation == 2
        g.close()
    finally:
        d2.call("domain.destroy", uuid=UUID)
        d2.stop()


def test_daemon_down_gives_a_clear_error(base: pathlib.Path) -> None:
    r = subprocess.run([sys.executable, "-m", "libvirt_synth.cli", "stats", "--socket", str(base / "none.sock")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "virt-synthd is not running" in r.stderr and "Traceback" not in r.stderr


def test_prometheus_endpoint_off_by_default_and_on_when_asked(base: pathlib.Path) -> None:
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = Daemon(base, "--prometheus-port", str(port)).start()
    try:
        assert d.proc is not None
        deadline = time.monotonic() + 10
        while tcp_listeners(d.proc.pid) != {port}:  # the one listener the configuration asks for
            assert time.monotonic() < deadline, tcp_listeners(d.proc.pid)
            time.sleep(0.02)
        d.call("domain.create", uuid=UUID, name="vnf1", devices=two_devices())
        with Device.open(str(d.regions / "vnf1-crypto0")) as g:
            check_still_serves(g.queue(0))
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'synth_device_ops_total{device="vnf1-crypto0",status="ok"}' in text
        assert 'synth_device_sessions{device="vnf1-crypto1"} 0.0' in text
        busy0 = 'synth_device_busy_seconds_total{device="vnf1-crypto0"}'
        busy = [ln for ln in text.splitlines() if ln.startswith(busy0)]
        assert len(busy) == 1 and float(busy[0].split()[-1]) > 0, busy
        assert 'synth_device_busy_seconds_total{device="vnf1-crypto1"} 0.0' in text
        d.call("domain.destroy", uuid=UUID)
    finally:
        d.stop()


def tcp_listeners(pid: int) -> set[int]:
    """The TCP ports a process listens on: its sockets (/proc/PID/fd) that the kernel's TCP tables
    (/proc/net/tcp, tcp6) list in state LISTEN."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # st 0A: TCP_LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_no_metrics_port_unless_configured(daemon: Daemon) -> None:
    assert daemon.proc is not None
    assert tcp_listeners(daemon.proc.pid) == set()


def test_registry_records_sessions_without_keys(daemon: Daemon) -> None:
    import sqlite3

    daemon.call("domain.create", uuid=UUID, name="vnf1", devices=two_devices())
    key = bytes(range(100, 132))
    with Device.open(str(daemon.regions / "vnf1-crypto0")) as g:
        s = g.queue(0).session("aes-256-gcm", key, iv_gen=True)
        show = daemon.call("device.show", name="vnf1-crypto0")
        chosen = daemon.call("plugins")["choices"]["aes-256-gcm"]["plugin"]  # the catalog's choice here
        assert chosen, "no plugin serves aes-256-gcm on this host"
        assert show["sessions_live"] == [{"id": s.id, "alg": "aes-256-gcm", "iv_gen": True, "plugin": chosen}]
        deadline = time.monotonic() + 5
        rows: list[tuple[object, ...]] = []
        while time.monotonic() < deadline and not rows:
            time.sleep(0.2)
            db = sqlite3.connect(daemon.state / "registry.sqlite")
            rows = db.execute("SELECT device, session_id, alg FROM sessions").fetchall()
            db.close()
        assert rows == [("vnf1-crypto0", s.id, "aes-256-gcm")]
    assert os.stat(daemon.state / "registry.sqlite").st_mode & 0o777 == 0o600
    assert key not in (daemon.state / "registry.sqlite").read_bytes()
    vault = daemon.state / "vault" / "vnf1-crypto0.vault"
    assert os.stat(vault).st_mode & 0o777 == 0o600 and os.stat(vault.parent).st_mode & 0o777 == 0o700
    daemon.call("domain.destroy", uuid=UUID)
    assert not vault.exists()


def test_packet_devices_of_a_domain_are_wired_and_rewired_after_a_restart(base: pathlib.Path) -> None:
    d = Daemon(base).start()
    devs = [{"name": "pk-a", "class": "packet", "options": {"link": "wire:pk-b"}},
            {"name": "pk-b", "class": "packet", "options": {"link": "wire:pk-a"}},
            {"name": "pk-c", "class": "packet", "options": {"max_frame": "1500"}}]
    try:
        d.call("domain.create", uuid=UUID, name="pk", devices=devs)
        for restart in (False, True):
            if restart:
                d.stop()
                d = Daemon(base).start()
            stats = d.call("stats")["devices"]
            link_a = stats["pk-a"]["packet"]["links"][0]
            assert link_a["link"] == "wire" and link_a["peer"] == "pk-b" and link_a["peer_alive"], link_a
            assert stats["pk-c"]["packet"]["links"][0]["link"] == "none"
        with pytest.raises(client.RpcError, match="expected wire:DEVICE"):
            d.call("domain.create", uuid="11111111-2222-4333-8444-555555555555", name="bad",
                   devices=[{"name": "pk-x", "class": "packet", "options": {"link": "cable:pk-y"}}])
        with pytest.raises(client.RpcError, match="pk-z is a crypto device, not a packet device"):
            d.call("domain.create", uuid="11111111-2222-4333-8444-555555555555", name="bad",
                   devices=[{"name": "pk-x", "class": "packet", "options": {"link": "wire:pk-z"}},
                            {"name": "pk-z", "class": "crypto"}])
        d.call("domain.destroy", uuid=UUID)
    finally:
        d.stop()


def test_regions_nobody_serves_are_replaced_or_taken_over_as_asked(daemon: Daemon) -> None:
    devs = two_devices()
    daemon.call("domain.create", uuid=UUID, name="vnf1", devices=devs)
    stale = daemon.regions / "vnf1-crypto0"
    # The region cannot be re-attached after a restart (its size changed): the daemon loses the
    # device but remembers whose region it is.
    daemon.stop()
    os.truncate(stale, 2 << 20)
    daemon.start()
    assert daemon.call("health")["lost_devices"] == ["vnf1-crypto0"]
    with pytest.raises(client.RpcError, match="File exists"):
        daemon.call("domain.create", uuid=UUID, name="vnf1", devices=devs)
    daemon.call("domain.create", uuid=UUID, name="vnf1", devices=devs, existing="replace")
    assert os.stat(stale).st_size == 1 << 20 and len(daemon.call("devices.list")) == 2
    # A daemon that lost its registry while the VM runs takes the live regions over (reconnect).
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, iv, text = bytes(range(0x40, 0x60)), bytes(range(1, 13)), b"still served after a registry loss"
    with Device.open(str(stale)) as g:
        s = g.queue(0).session("aes-256-gcm", key)
        before = [d["generation"] for d in daemon.call("devices.list")]
        daemon.stop()
        (daemon.state / "registry.sqlite").unlink()
        daemon.start()
        assert daemon.call("devices.list") == []
        r = daemon.call("domain.create", uuid=UUID, name="vnf1", devices=devs, existing="attach")
        assert [d["generation"] for d in r["devices"]] == [g + 1 for g in before]
        ct, tag = s.encrypt(text, iv)  # the vault kept the session, and its key
        assert ct + tag == AESGCM(key).encrypt(iv, text, b"")
    daemon.call("domain.destroy", uuid=UUID)


def test_quotas_apply_when_a_served_domain_is_created_again(daemon: Daemon) -> None:
    devs = two_devices()
    daemon.call("domain.create", uuid=UUID, name="vnf1", devices=devs)
    with Device.open(str(daemon.regions / "vnf1-crypto0")) as g:
        q = g.queue(0)
        q.nop()
        devs[0]["quotas"] = {"ops_per_s": 200}
        daemon.call("domain.create", uuid=UUID, name="vnf1", devices=devs)
        t0 = time.monotonic()
        for _ in range(60):
            q.nop()
        elapsed = time.monotonic() - t0
        assert elapsed > 0.15, f"60 ops at 200/s took {elapsed:.3f} s: the new quota was not applied"
        assert daemon.call("stats", name="vnf1-crypto0")["devices"]["vnf1-crypto0"]["throttled"] > 0
    daemon.call("domain.destroy", uuid=UUID)


def test_a_device_may_ask_for_a_bigger_session_table(daemon: Daemon) -> None:
    daemon.call("domain.create", uuid=UUID, name="vnf1",
                devices=[{"name": "big-sa", "class": "crypto", "size": 8 << 20, "max_sessions": 10000}])
    with Device.open(str(daemon.regions / "big-sa")) as g:
        assert g.info().max_sessions == 10000
    daemon.call("domain.destroy", uuid=UUID)


def test_a_truncated_region_is_abandoned_and_the_daemon_goes_on(base: pathlib.Path) -> None:
    """The QEMU that owns a region can truncate it: the daemon survives, reports that device as
    abandoned, and its other devices keep serving."""
    d = Daemon(base).start()
    try:
        d.call("domain.create", uuid=UUID, name="vnf1", devices=two_devices())
        victim = d.regions / "vnf1-crypto0"
        with Device.open(str(victim)) as g:
            check_still_serves(g.queue(0))
        os.truncate(victim, 0)
        deadline = time.monotonic() + 5
        while d.call("health")["abandoned_devices"] != ["vnf1-crypto0"]:
            assert time.monotonic() < deadline, d.call("health")
            time.sleep(0.02)
        assert sum(w["region_faults"] for w in d.call("health")["workers"]) == 1
        with Device.open(str(d.regions / "vnf1-crypto1")) as g:
            check_still_serves(g.queue(0))
        r = d.cli("health", check=False)
        out = r.stdout
        assert r.returncode == 2, "health says the daemon is degraded"
        assert "abandoned (region file truncated under the backend): vnf1-crypto0" in out
        d.call("domain.destroy", uuid=UUID)
        assert d.call("health")["devices"] == 0
    finally:
        d.stop()


def thread_cpus(pid: int, comm: str) -> list[str]:
    """Cpus_allowed_list of each thread of pid named comm, in the order the threads were made."""
    out = []
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        try:
            status = pathlib.Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except FileNotFoundError:
            continue
        fields = dict(ln.split(":\t", 1) for ln in status.splitlines() if ":\t" in ln)
        if fields["Name"].strip() == comm:
            out.append(fields["Cpus_allowed_list"].strip())
    return out


def test_workers_run_on_the_configured_cpus(base: pathlib.Path) -> None:
    """--cpus pins the worker threads (round robin over the list); the rest of the daemon keeps
    the CPUs it was given (this process's, as the kernel lists them)."""
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        pytest.skip("one CPU only: a pinned worker cannot be told from an unpinned one")
    given = thread_cpus(os.getpid(), pathlib.Path("/proc/self/comm").read_text().strip())[0]
    d = Daemon(base, "--workers", "2", "--cpus", f"{mine[-1]},{mine[0]}").start()
    try:
        assert d.proc is not None
        assert thread_cpus(d.proc.pid, "synth-worker") == [str(mine[-1]), str(mine[0])]
        main = pathlib.Path(f"/proc/{d.proc.pid}/comm").read_text().strip()
        assert set(thread_cpus(d.proc.pid, main)) == {given}, "the daemon's other threads are not pinned"
    finally:
        d.stop()
    d = Daemon(base, "--workers", "2").start()  # not configured: the workers may run anywhere
    try:
        assert d.proc is not None
        assert thread_cpus(d.proc.pid, "synth-worker") == [given] * 2
    finally:
        d.stop()
