# SPDX-License-Identifier: Apache-2.0
"""The command line's rough edges: a reader that stops early, domains by name, the
region directory of the daemon's configuration, health's exit status, the installed hook."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from libvirt_synth.abi import DevClass
from libvirt_synth.hook import install as hookinstall
from libvirt_synth.host.device import HostDevice

from daemonctl import CLI, DAEMON, Daemon, scratch

UUID1 = "7c0d2e4f-1a3b-4c5d-8e9f-0a1b2c3d4e5f"
UUID2 = "8d1e3f50-2b4c-4d6e-9fa0-1b2c3d4e5f60"
BROKEN_PIPE = 141  # 128 + SIGPIPE, as git and a shell report it


def env() -> dict[str, str]:
    """No region directory, socket or daemon configuration of the caller's may leak in."""
    return {k: v for k, v in os.environ.items() if k not in ("LIBVIRT_SYNTH_REGION_DIR", "LIBVIRT_SYNTH_SOCKET")}


def run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env(), check=check)


def assert_quiet(stderr: str) -> None:
    for word in ("Traceback", "BrokenPipeError", "Exception ignored"):
        assert word not in stderr, stderr


@pytest.fixture
def base() -> Iterator[pathlib.Path]:
    with scratch("synth-papercuts-") as d:  # others may enter it: an unprivileged client reaches the socket
        yield d


def regions(directory: pathlib.Path, n: int) -> pathlib.Path:
    """n region files in directory: one laid out for real, the others hard links to it (no room taken)."""
    directory.mkdir(exist_ok=True)
    HostDevice.create(str(directory / "r000"), DevClass.CRYPTO, size=1 << 20, queues=1).destroy(unlink=False)
    for i in range(1, n):
        os.link(directory / "r000", directory / f"r{i:03}")
    return directory


# ---- a reader that stops early: `virt-synth ... | head -1` ----

def test_a_reader_that_stops_after_one_line_ends_a_long_listing_quietly(base: pathlib.Path) -> None:
    d = regions(base / "many", 150)
    proc = subprocess.Popen([*CLI, "devices", "--regions", "--json", "--dir", str(d)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == "[\n"
    proc.stdout.close()  # what is left (~100 KiB) cannot fit in the pipe: the writer must meet EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == BROKEN_PIPE, err
    assert_quiet(err)


@pytest.mark.parametrize("cmd", [[*CLI, "--help"], [*CLI, "--version"], [*CLI, "plugins", "--local", "--json"],
                                 [*CLI, "devices", "--regions", "--dir", "@DIR@"], [*DAEMON, "--help"],
                                 [*DAEMON, "--version"]],
                         ids=["help", "version", "plugins-json", "devices-table", "synthd-help", "synthd-version"])
def test_a_reader_gone_before_any_output_is_no_error(cmd: list[str], base: pathlib.Path) -> None:
    """Short outputs are written at exit, by the interpreter's last flush: that one must not fail either."""
    d = regions(base / "few", 3)
    proc = subprocess.Popen([str(d) if a == "@DIR@" else a for a in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the interpreter has started: every write meets EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == BROKEN_PIPE, err
    assert_quiet(err)


# ---- devices --domain NAME ----

def crypto(name: str) -> dict[str, object]:
    return {"name": name, "class": "crypto", "size": 1 << 20}


def test_devices_of_a_domain_by_name_or_uuid_and_an_unknown_one_is_an_error(base: pathlib.Path) -> None:
    d = Daemon(base).start()
    try:
        d.call("domain.create", uuid=UUID1, name="vnf1", devices=[crypto("vnf1-c0"), crypto("vnf1-c1")])
        d.call("domain.create", uuid=UUID2, name="vnf2", devices=[crypto("vnf2-c0")])
        for key in ("vnf1", UUID1, UUID1.upper()):
            listing = json.loads(d.cli("devices", "--domain", key, "--json", env=env()).stdout)
            assert sorted(x["name"] for x in listing) == ["vnf1-c0", "vnf1-c1"], key
            assert {x["domain"] for x in listing} == {UUID1}
        text = d.cli("devices", "--domain", "vnf2", env=env()).stdout
        assert "vnf2-c0" in text and "vnf1-c0" not in text
        r = d.cli("devices", "--domain", "vnf3", check=False, env=env())
        assert r.returncode == 1 and r.stdout == "", r.stdout
        assert "no domain 'vnf3'" in r.stderr and "vnf1, vnf2" in r.stderr and "Traceback" not in r.stderr
    finally:
        for uuid in (UUID1, UUID2):
            d.call("domain.destroy", uuid=uuid)
        d.stop()


def test_devices_domain_without_the_daemon_is_an_error_not_every_region(base: pathlib.Path) -> None:
    regions(base / "regions", 1)
    r = run("devices", "--domain", "vnf1", "--dir", str(base / "regions"), "--socket", str(base / "none.sock"))
    assert r.returncode == 1 and r.stdout == "" and "--domain needs it" in r.stderr


# ---- the region directory: --dir, else the daemon's configuration ----

def test_devices_fallback_and_regions_read_the_configured_region_dir(base: pathlib.Path) -> None:
    configured = regions(base / "configured", 2)
    other = regions(base / "other", 1)
    cfg = base / "virt-synthd.toml"
    cfg.write_text(f'[daemon]\nregion_dir = "{configured}"\n')
    down = ["--socket", str(base / "none.sock")]
    r = run("devices", "--config", str(cfg), "--json", *down)
    assert r.returncode == 0, r.stderr
    assert sorted(x["path"] for x in json.loads(r.stdout)) == [str(configured / "r000"), str(configured / "r001")]
    assert "virt-synthd is not running" in r.stderr and f"region files in {configured}" in r.stderr
    assert str(cfg) in r.stderr, "the message says where the directory comes from"
    r = run("devices", "--regions", "--config", str(cfg), "--json")
    assert sorted(x["name"] for x in json.loads(r.stdout)) == ["r000", "r000"] and r.stderr == ""
    assert {x["path"] for x in json.loads(r.stdout)} == {str(configured / "r000"), str(configured / "r001")}
    r = run("devices", "--regions", "--config", str(cfg), "--dir", str(other), "--json")
    assert [x["path"] for x in json.loads(r.stdout)] == [str(other / "r000")], "--dir beats the configuration"
    r = run("devices", "--config", str(cfg), *down)
    assert r.returncode == 0 and "PATH" in r.stdout and str(configured / "r001") in r.stdout


def test_devices_with_a_broken_or_missing_configuration_says_so(base: pathlib.Path) -> None:
    cfg = base / "broken.toml"
    cfg.write_text("[daemon\nregion_dir = 3\n")
    r = run("devices", "--regions", "--config", str(cfg))
    assert r.returncode == 1 and r.stderr.startswith(f"virt-synth devices: error: {cfg}: ") and r.stdout == ""
    assert r.stderr.count("\n") == 1, r.stderr
    cfg.write_text('[workers]\ncount = "many"\nspin_us = -1\n')  # values of the wrong type, out of range
    r = run("devices", "--regions", "--config", str(cfg))
    assert r.returncode == 1 and r.stderr.startswith(f"virt-synth devices: error: {cfg}: ")
    assert all(line.startswith("virt-synth devices: error: ") for line in r.stderr.splitlines()), r.stderr
    r = run("devices", "--regions", "--config", str(base / "none.toml"))
    assert r.returncode == 1 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    cfg.write_text(f'[daemon]\nregion_dir = "{base / "gone"}"\n')
    r = run("devices", "--regions", "--config", str(cfg))
    assert r.returncode == 1 and f"region directory {base / 'gone'}" in r.stderr


# ---- health: degraded is not healthy ----

def test_health_exits_2_when_devices_were_lost(base: pathlib.Path) -> None:
    d = Daemon(base).start()
    try:
        d.call("domain.create", uuid=UUID1, name="vnf1", devices=[crypto("vnf1-c0"), crypto("vnf1-c1")])
        assert d.cli("health", env=env()).returncode == 0
    finally:
        d.stop()
    (d.regions / "vnf1-c1").unlink()  # its VM went away while the daemon was down
    d = Daemon(base).start()
    try:
        r = d.cli("health", check=False, env=env())
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "lost at restart (region gone): vnf1-c1" in r.stdout and "degraded" in r.stdout
        r = d.cli("health", "--json", check=False, env=env())
        assert r.returncode == 2 and json.loads(r.stdout)["lost_devices"] == ["vnf1-c1"]
        assert "exit status" in d.cli("health", "--help", env=env()).stdout
    finally:
        d.call("domain.destroy", uuid=UUID1)
        d.stop()


# ---- hooks show --root: the installed hook ----

def test_hooks_show_shows_the_installed_hook_and_says_when_there_is_none(tmp_path: pathlib.Path) -> None:
    path = hookinstall.hook_path(str(tmp_path))
    r = run("hooks", "show", "--root", str(tmp_path))
    assert r.returncode == 1 and f"no hook is installed at {path}" in r.stderr
    assert r.stdout == hookinstall.render("/run/libvirt-synth/synthd.sock"), "labelled: what install would write"
    assert json.loads(run("hooks", "show", "--root", str(tmp_path), "--json").stdout)["installed"] is False
    run("hooks", "install", "--root", str(tmp_path), "--socket", "/run/other.sock", "--python", sys.executable,
        check=True)
    r = run("hooks", "show", "--root", str(tmp_path))
    assert r.returncode == 0 and r.stdout == path.read_text() and '"/run/other.sock"' in r.stdout
    assert f"{path} (installed)" in r.stderr and "differs" in r.stderr
    r = run("hooks", "show", "--root", str(tmp_path), "--socket", "/run/other.sock", "--python", sys.executable)
    assert r.returncode == 0 and "differs" not in r.stderr
    doc = json.loads(run("hooks", "show", "--root", str(tmp_path), "--json").stdout)
    assert doc == {"path": str(path), "installed": True, "text": path.read_text(), "current": False}
