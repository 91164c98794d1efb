# SPDX-License-Identifier: Apache-2.0
"""Who may change virt-synthd's state (SO_PEERCRED): root, the daemon's own user and the members
of the configured group; anyone else may only read. Each caller is a real process of a real user,
made for the test (useradd/groupadd) and removed afterwards. Root only."""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from test_daemon import untraversable_by

import libvirt_synth
from libvirt_synth.daemon import client, protocol

from daemonctl import DAEMON, Daemon, scratch

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to make users and run callers as them")

UUID = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"
TAG = f"st{os.getpid() % 100000}"
GROUP = f"{TAG}-ops"

# One caller: prints "ok" if it may create a domain, else the error's code and message.
CALLER = f"""
import sys
from libvirt_synth.daemon import client
s = sys.argv[1]
assert client.call("health", s)["status"] == "ok"  # anyone may read
try:
    client.call("domain.create", s, uuid="{UUID}", name="auth", devices=[{{"name": "auth0", "class": "crypto"}}])
    client.call("domain.destroy", s, uuid="{UUID}")
    print("ok")
except client.RpcError as e:
    print(e.code, e)
"""


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, pwd.struct_passwd]]:
    """daemon: a user to run virt-synthd as; member: listed in GROUP; primary: GROUP is its own
    group; outsider: neither."""
    closed = untraversable_by(pwd.getpwnam("nobody"), sys.prefix, os.path.dirname(libvirt_synth.__file__))
    if closed:
        pytest.skip(f"other users cannot enter {closed}, on the way to the venv or the checkout")
    made: list[str] = []
    try:
        run("groupadd", "--system", GROUP)
        for role in ("daemon", "member", "primary", "outsider"):
            name = f"{TAG}-{role}"
            extra = ["--gid", GROUP] if role == "primary" else ["--user-group"]
            if role == "member":
                extra += ["--groups", GROUP]
            run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", *extra, name)
            made.append(name)
        yield {n.split("-", 1)[1]: pwd.getpwnam(n) for n in made}
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", GROUP], capture_output=True)


def as_user(user: pwd.struct_passwd) -> Callable[[], None]:
    def drop() -> None:
        os.setgid(user.pw_gid)
        os.initgroups(user.pw_name, user.pw_gid)
        os.setuid(user.pw_uid)
    return drop


def attempt(user: pwd.struct_passwd | None, sock: str) -> str:
    r = subprocess.run([sys.executable, "-c", CALLER, sock], capture_output=True, text=True, timeout=30,
                       preexec_fn=as_user(user) if user else None, env={**os.environ, "HOME": "/"})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def denied(out: str) -> bool:
    return out.startswith(str(protocol.PERMISSION_DENIED)) and "permission denied" in out


def test_members_of_the_group_may_change_state(users: dict[str, pwd.struct_passwd]) -> None:
    with scratch("synth-auth-") as base:
        d = Daemon(base, "--group", GROUP).start()
        try:
            assert attempt(users["member"], d.socket) == "ok"  # named in the group's member list
            assert attempt(users["primary"], d.socket) == "ok"  # the group is its own
            assert attempt(None, d.socket) == "ok"  # root
            refused = attempt(users["outsider"], d.socket)
            assert denied(refused) and f"only root or members of group {GROUP} may call it" in refused
            assert denied(attempt(users["daemon"], d.socket)), "not the daemon's user here: root runs it"
            assert d.call("devices.list") == []
        finally:
            d.stop()


@contextlib.contextmanager
def daemon_as(user: pwd.struct_passwd, base: pathlib.Path) -> Iterator[str]:
    """virt-synthd run by user (no group configured), in a directory of that user's."""
    home = base / "d"
    home.mkdir()
    (home / "regions").mkdir()
    config = home / "virt-synthd.toml"
    config.write_text("")
    for p in (home, home / "regions", config):
        os.chown(p, user.pw_uid, user.pw_gid)
    sock = str(home / "synthd.sock")
    with open(base / "virt-synthd.log", "ab") as log:
        proc = subprocess.Popen([*DAEMON, "--config", str(config), "--socket", sock, "--state-dir",
                                 str(home / "state"), "--region-dir", str(home / "regions")],
                                stdout=log, stderr=log, preexec_fn=as_user(user), env={**os.environ, "HOME": "/"})
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, (base / "virt-synthd.log").read_text()
            try:
                assert client.call("health", sock, timeout=2)["pid"] == proc.pid
                break
            except client.RpcError:
                assert time.monotonic() < deadline, (base / "virt-synthd.log").read_text()
                time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_daemons_own_user_may_change_state(users: dict[str, pwd.struct_passwd]) -> None:
    with scratch("synth-auth-") as base, daemon_as(users["daemon"], base) as sock:
        assert attempt(users["daemon"], sock) == "ok"
        refused = attempt(users["outsider"], sock)
        assert denied(refused) and f"only root, {users['daemon'].pw_name} may call it" in refused, refused
        assert denied(attempt(users["member"], sock)), "no group configured: membership gives nothing"
        assert attempt(None, sock) == "ok"  # root
        assert client.call("devices.list", sock) == []
