# SPDX-License-Identifier: Apache-2.0
"""Reaching virt-synthd over ssh: ``Client("ssh://...")`` runs the real ssh client against an
sshd of the test's own (on 127.0.0.1, a free port, host and user keys made here with ssh-keygen,
nothing read from ~/.ssh or /etc/ssh), which runs ``virt-synth bridge`` to a real daemon."""

from __future__ import annotations

import json
import os
import pathlib
import pwd
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest

from libvirt_synth import defaults
from libvirt_synth.daemon import client

from daemonctl import CLI, Daemon, scratch

SSHD = "/usr/sbin/sshd"
UUID = "3c9e2f1a-7b4d-4e6a-8f10-2d5c6b7a8e91"
USER = pwd.getpwuid(os.getuid()).pw_name
# The bridge by its full path: the login shell's PATH does not have the test's virtualenv.
_SCRIPT = pathlib.Path(sys.executable).parent / "virt-synth"
BRIDGE = (f"{shlex.quote(str(_SCRIPT))} bridge" if _SCRIPT.exists()
          else f"{shlex.quote(sys.executable)} -m libvirt_synth.cli bridge")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: pathlib.Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True,
                   capture_output=True)
    return (path.parent / (path.name + ".pub")).read_text().strip()


class Sshd:
    """An sshd of our own, in the foreground, that lets in one key for the current user."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base = base
        self.port = free_port()
        host_pub = keygen(base / "host_ed25519")
        (base / "authorized_keys").write_text(keygen(base / "user_ed25519") + "\n")
        self.key = base / "user_ed25519"
        keygen(base / "other_ed25519")  # a key the server does not know
        self.other_key = base / "other_ed25519"
        self.known_hosts = base / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        self.config = base / "sshd_config"
        self.config.write_text(f"""\
ListenAddress 127.0.0.1:{self.port}
HostKey {base}/host_ed25519
PidFile none
AuthorizedKeysFile {base}/authorized_keys
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {USER}
StrictModes no
UsePAM no
LogLevel VERBOSE
""")
        self.log = base / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        if os.geteuid() == 0:  # sshd as root wants its privilege separation directory (systemd makes it)
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"sshd exited with {self.proc.returncode}:\n{self.log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not come up:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def uri(self, sock: str, *, port: int | None = None, **params: str) -> str:
        q = {"keyfile": str(self.key), "known_hosts": str(self.known_hosts), "command": BRIDGE, **params}
        return (f"ssh://{quote(USER)}@127.0.0.1:{port or self.port}{quote(sock)}?"
                + urlencode({k: v for k, v in q.items() if v}, quote_via=quote))


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    if not os.path.exists(SSHD):
        pytest.skip(f"{SSHD} is missing (Debian package openssh-server, scripts/apt-packages-dev.txt)")
    with scratch("synth-sshd-") as base:
        s = Sshd(base).start()
        try:
            yield s
        finally:
            s.stop()


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with scratch("synth-ssh-daemon-") as base:
        d = Daemon(base).start()
        try:
            yield d
        finally:
            d.stop()


# -- the bridge on its own -------------------------------------------------------------------------


def test_bridge_relays_each_answer_and_ends_with_stdin(daemon: Daemon) -> None:
    reqs = "".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": m}) + "\n"
                   for i, m in enumerate(["health", "domains.list"], 1))
    r = subprocess.run([*CLI, "bridge", "--socket", daemon.socket], input=reqs, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    answers = [json.loads(line) for line in r.stdout.splitlines()]
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[0]["result"]["pid"] == daemon.proc.pid  # type: ignore[union-attr]
    assert "result" in answers[1]


def test_bridge_says_when_the_daemon_is_not_running(tmp_path: pathlib.Path) -> None:
    r = subprocess.run([*CLI, "bridge", "--socket", str(tmp_path / "none.sock")], input="", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == ("virt-synth bridge: error: virt-synthd is not running "
                                f"(no socket at {tmp_path}/none.sock)")


# -- ssh:// addresses ------------------------------------------------------------------------------


def test_uri_gives_the_ssh_command_line(tmp_path: pathlib.Path) -> None:
    key = tmp_path / "id key"
    key.write_text("")
    t = client.parse_uri(f"ssh://ops@Host2.example:2222/run/x%20y.sock?keyfile={quote(str(key))}"
                         f"&known_hosts={quote(str(tmp_path / 'kh'))}&no_verify=1&command=/opt/vs/bin/virt-synth+bridge"
                         "&ssh=/usr/local/bin/ssh")
    assert t.argv(7.5) == [
        "/usr/local/bin/ssh", "-T", "-e", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=8", "-p", "2222",
        "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={tmp_path}/kh",
        "-o", "StrictHostKeyChecking=no", "ops@host2.example", "--",
        "/opt/vs/bin/virt-synth bridge --socket '/run/x y.sock'"]
    plain = client.parse_uri("ssh://host2")
    assert plain.argv(30) == ["ssh", "-T", "-e", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "host2",
                              "--", f"virt-synth bridge --socket {defaults.SOCKET}"]
    assert client.parse_uri("ssh://host2/").socket == defaults.SOCKET and plain.verify
    assert client.is_uri("ssh://h") and not client.is_uri("/run/libvirt-synth/synthd.sock")


@pytest.mark.parametrize(("uri", "words"), [
    ("ssh://", "no host"),
    ("ssh://h:port/", "Port could not be cast"),
    ("ssh://u:secret@h/", "a password in the address is not supported"),
    ("ssh://h/?keyfil=/k", "unknown parameter 'keyfil' (parameters: keyfile, known_hosts, no_verify, command, ssh)"),
    ("ssh://h/?no_verify=yes", "no_verify=yes: expected 1"),
    ("ssh://h/?command=", "parameter 'command' is empty"),
    ("ssh://h/?ssh=a&ssh=b", "parameter 'ssh' given twice"),
    ("ssh://h/?keyfile=/nonexistent/id", "keyfile=/nonexistent/id: no such file"),
    ("tcp://h:16509/", "unsupported transport 'tcp'"),
])
def test_bad_uri_says_what_is_wrong(uri: str, words: str) -> None:
    with pytest.raises(client.RpcError) as e:
        client.Client(uri)
    assert words in str(e.value) and "expected ssh://[user@]host[:port]" in str(e.value)


def test_no_ssh_client() -> None:
    with pytest.raises(client.RpcError, match="no ssh client '/nonexistent/ssh' here; install openssh-client"):
        client.Client("ssh://h/?ssh=/nonexistent/ssh")


# -- through a real sshd ---------------------------------------------------------------------------


def test_calls_over_ssh(sshd: Sshd, daemon: Daemon) -> None:
    uri = sshd.uri(daemon.socket)
    with client.Client(uri) as c:
        h = c.call("health")
        assert h["socket"] == daemon.socket and h["pid"] == daemon.proc.pid  # type: ignore[union-attr]
        # A change of state: the bridge runs as the user ssh logged in as, whom the daemon lets in.
        r = c.call("domain.create", uuid=UUID, name="remote1",
                   devices=[{"name": "remote1-c0", "class": "crypto", "size": 1 << 20}])
        assert [d["name"] for d in r["devices"]] == ["remote1-c0"]
        assert (daemon.regions / "remote1-c0").stat().st_size == 1 << 20
        assert daemon.call("domains.list")  # the same daemon, seen through its socket
        assert c.call("domain.destroy", uuid=UUID)["destroyed"] == ["remote1-c0"]
        assert not (daemon.regions / "remote1-c0").exists()
        with pytest.raises(client.RpcError, match="no device 'remote1-c0'") as e:
            c.call("device.show", name="remote1-c0")  # the daemon's own errors, code and all
        assert e.value.code is not None
    assert client.call("health", uri)["pid"] == h["pid"]
    # The command line takes the address where it takes a socket.
    r = subprocess.run([*CLI, "health", "--json", "--socket", uri], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["socket"] == daemon.socket


def test_remote_daemon_not_running(sshd: Sshd, daemon: Daemon) -> None:
    gone = str(daemon.base / "gone.sock")
    with pytest.raises(client.RpcError) as e:
        client.call("health", sshd.uri(gone))
    msg = str(e.value)
    assert f"cannot reach virt-synthd on {USER}@127.0.0.1:{sshd.port}: the remote bridge failed (exit 1)" in msg
    assert f"virt-synthd is not running (no socket at {gone})" in msg


def test_wrong_key(sshd: Sshd, daemon: Daemon) -> None:
    with pytest.raises(client.RpcError) as e:
        client.call("health", sshd.uri(daemon.socket, keyfile=str(sshd.other_key)))
    assert "ssh failed" in str(e.value) and "Permission denied (publickey)" in str(e.value)


def test_unknown_host_key(sshd: Sshd, daemon: Daemon, tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(client.RpcError) as e:
        client.call("health", sshd.uri(daemon.socket, known_hosts=str(empty)))
    assert "ssh failed" in str(e.value) and "Host key verification failed" in str(e.value)
    # no_verify=1 lets an unknown host in (and ssh notes its key in known_hosts).
    assert client.call("health", sshd.uri(daemon.socket, known_hosts=str(empty), no_verify="1"))["status"] == "ok"
    assert empty.read_text().strip()


def test_no_virt_synth_on_the_remote_host(sshd: Sshd, daemon: Daemon) -> None:
    with pytest.raises(client.RpcError) as e:
        client.call("health", sshd.uri(daemon.socket, command="/nonexistent/virt-synth bridge"))
    msg = str(e.value)
    assert "no '/nonexistent/virt-synth' there" in msg and "install virt-synth on 127.0.0.1" in msg
    assert "?command=/path/to/virt-synth%20bridge" in msg


def test_host_unreachable(sshd: Sshd, daemon: Daemon) -> None:
    with pytest.raises(client.RpcError) as e:
        client.call("health", sshd.uri(daemon.socket, port=free_port()))
    assert "ssh failed" in str(e.value) and "Connection refused" in str(e.value)


def test_timeout(sshd: Sshd, daemon: Daemon) -> None:
    """A socket that accepts and never answers: the call fails after its timeout, as on a socket."""
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(daemon.base / "mute.sock")
    mute.bind(path)
    os.chmod(path, 0o666)
    mute.listen(4)
    try:
        with client.Client(sshd.uri(path), timeout=3) as c:
            with pytest.raises(client.RpcError) as e:
                c.call("health")
            assert bridges_to(path)  # the remote bridge is up, waiting for an answer
        assert str(e.value) == f"virt-synthd on {USER}@127.0.0.1:{sshd.port} (over ssh) did not answer health in time"
        # close() stopped ssh; the remote bridge, whose answers nobody reads any more, ends too.
        deadline = time.monotonic() + 20
        while bridges_to(path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not bridges_to(path)
    finally:
        mute.close()


def bridges_to(path: str) -> list[int]:
    """The pids of the bridges to the socket at path."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bridge" in argv and path.encode() in argv:
            pids.append(int(proc.name))
    return pids


def test_a_hand_over_reaches_the_destination_daemon_over_ssh(sshd: Sshd, daemon: Daemon) -> None:
    """virt-synth migrate's hand-over with the destination daemon given as ssh://: the sealed
    state travels through the bridge, and the guest's session works on at the destination."""
    from test_handover import NAME, Guest, _copy_into_from
    from test_handover import UUID as MOVED

    from libvirt_synth.move import orchestrate

    with scratch("synth-ssh-src-") as base:
        src = Daemon(base).start()
        try:
            dst = orchestrate.Endpoint(sshd.uri(daemon.socket))
            src.call("domain.create", uuid=MOVED, name="vnf", devices=[{"name": NAME, "class": "crypto",
                                                                         "size": 1 << 20}])
            g = Guest(str(src.regions / NAME))
            g.work()
            key = dst.call("daemon.key")["public_key"]
            begin = src.call("migration.begin", uuid=MOVED, peer_key=key)
            dst.call("migration.expect", uuid=MOVED, name="vnf", records=begin["records"], sender=begin["sender"])
            dst.call("domain.create", uuid=MOVED, name="vnf", devices=[{"name": NAME, "class": "crypto",
                                                                         "size": 1 << 20}])
            src.call("domain.destroy", uuid=MOVED)
            _copy_into_from(str(src.regions / NAME), str(daemon.regions / NAME))
            out = orchestrate.hand_over(orchestrate.Endpoint(src.socket), dst, MOVED, orchestrate.Report("vnf", MOVED))
            assert out["imported"]
            g.moved_to(str(daemon.regions / NAME))
            g.work()
            src.call("migration.finish", uuid=MOVED)
            assert daemon.call("device.show", name=NAME)["sessions"] == 2
            daemon.call("domain.destroy", uuid=MOVED)
        finally:
            src.stop()
