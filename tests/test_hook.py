# SPDX-License-Identifier: Apache-2.0
"""The libvirt qemu hook, run as libvirt runs it (a process, XML on stdin, argv from libvirt),
against a real virt-synthd; and its hand-written JSON against the json module."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libvirt_synth.hook import install as hookinstall
from libvirt_synth.hook import run as hook

from daemonctl import Daemon, hooked, running

UUID = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
NS = hook.NS


def domain_xml(devices: str = "", name: str = "vnf-hook") -> str:
    meta = f'<metadata><synth:devices xmlns:synth="{NS}">{devices}</synth:devices></metadata>' if devices else ""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <uuid>{UUID}</uuid>
  <!-- a comment -->
  {meta}
  <memory unit='MiB'>64</memory>
</domain>"""


TWO = ('<synth:device name="synth-3f2a1b4c5d6e-0" class="crypto" size="1048576" queues="2" ring-entries="128">'
       "<synth:capability>aes-256-gcm</synth:capability><synth:kpi name=\"throughput_gbps\" value=\"12\"/>"
       "</synth:device>"
       '<synth:device name="synth-3f2a1b4c5d6e-1" class="crypto" size="4194304" queues="1" ring-entries="256"/>')


def test_parse_domain() -> None:
    uuid, name, devs = hook.parse_domain(domain_xml(TWO).encode())
    assert (uuid, name) == (UUID, "vnf-hook")
    assert devs[0] == {"name": "synth-3f2a1b4c5d6e-0", "class": "crypto", "size": 1 << 20, "queues": 2,
                       "ring_entries": 128, "capabilities": ["aes-256-gcm"], "kpis": {"throughput_gbps": 12},
                       "options": {}}
    assert devs[1]["name"] == "synth-3f2a1b4c5d6e-1" and devs[1]["size"] == 4 << 20
    assert hook.parse_domain(domain_xml().encode())[2] == []
    with pytest.raises(hook.HookError, match="not well-formed"):
        hook.parse_domain(b"<domain><name>x</domain>")
    with pytest.raises(hook.HookError, match="not an integer"):
        hook.parse_domain(domain_xml('<synth:device name="a" class="crypto" size="big"/>').encode())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_json_subset_round_trips_with_the_json_module(v: object) -> None:
    assert json.loads(hook.dumps(v)) == v
    assert hook.loads(json.dumps(v)) == v
    assert hook.loads(json.dumps(v, ensure_ascii=False, indent=1)) == v


@pytest.fixture
def env() -> Iterator[tuple[Daemon, pathlib.Path]]:
    with running("synth-hook-") as d, hooked(d) as hook:
        yield d, hook


def run_hook(path: pathlib.Path, op: str, sub: str, xml: str,
             sock: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if sock:
        env["LIBVIRT_SYNTH_SOCKET"] = sock
    return subprocess.run([str(path), "vnf-hook", op, sub, "-"], input=xml, capture_output=True, text=True,
                          timeout=30, env=env)


def test_hook_life_cycle_against_the_daemon(env: tuple[Daemon, pathlib.Path]) -> None:
    d, path = env
    xml = domain_xml(TWO)
    r = run_hook(path, "prepare", "begin", xml)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
    names = sorted(x["name"] for x in d.call("devices.list"))
    assert names == ["synth-3f2a1b4c5d6e-0", "synth-3f2a1b4c5d6e-1"]
    assert os.stat(d.regions / names[0]).st_size == 1 << 20
    for op, sub in (("start", "begin"), ("started", "begin")):
        r = run_hook(path, op, sub, xml)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), (op, r.stderr)
    for op in ("migrate", "restore"):  # not arranged by virt-synth migrate / restore: refused
        r = run_hook(path, op, "begin", xml)
        assert (r.returncode, r.stdout) == (1, ""), (op, r.stderr)  # filters: stdout empty
        assert f"virt-synth {op}" in r.stderr
    # reconnect with something to reconcile: the daemon lost its registry (restarted without it)
    # while the VM maps the regions; only the reconnect hook can make it serve them again.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from libvirt_synth.guest import Device

    key, iv = bytes(range(0x21, 0x41)), bytes(range(12))
    inodes = [os.stat(d.regions / n).st_ino for n in names]
    with Device.open(str(d.regions / names[0])) as g:
        s = g.queue(0).session("aes-256-gcm", key)
        d.stop()
        (d.state / "registry.sqlite").unlink()
        d.start()
        assert d.call("devices.list") == [] and d.call("health")["lost_devices"] == []
        r = run_hook(path, "reconnect", "begin", xml)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r.stderr
        listing = {x["name"]: x for x in d.call("devices.list")}
        assert sorted(listing) == names and all(x["served"] and x["generation"] == 2 for x in listing.values())
        assert [os.stat(d.regions / n).st_ino for n in names] == inodes, "taken over, not replaced"
        ct, tag = s.encrypt(b"served again", iv)  # the driver carries on, its session too
        assert ct + tag == AESGCM(key).encrypt(iv, b"served again", b"")
    for op in ("stopped", "release"):  # both run on a stop; the second finds nothing: fine
        r = run_hook(path, op, "end", xml)
        assert (r.returncode, r.stdout) == (0, ""), r.stderr
    assert d.call("devices.list") == [] and list(d.regions.iterdir()) == []


def test_prepare_twice_keeps_what_is_served(env: tuple[Daemon, pathlib.Path]) -> None:
    """A retried start runs prepare again: the devices served since the first one are kept (same
    region file, same generation, a driver's session intact), not replaced."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from libvirt_synth.guest import Device

    d, path = env
    xml = domain_xml(TWO)
    assert run_hook(path, "prepare", "begin", xml).returncode == 0
    names = sorted(x["name"] for x in d.call("devices.list"))
    inodes = [os.stat(d.regions / n).st_ino for n in names]
    key, iv = bytes(range(0x61, 0x81)), bytes(range(3, 15))
    with Device.open(str(d.regions / names[0])) as g:
        s = g.queue(0).session("aes-256-gcm", key)
        r = run_hook(path, "prepare", "begin", xml)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r.stderr
        assert [os.stat(d.regions / n).st_ino for n in names] == inodes
        assert [x["generation"] for x in d.call("devices.list")] == [1, 1]
        ct, tag = s.encrypt(b"retried start", iv)
        assert ct + tag == AESGCM(key).encrypt(iv, b"retried start", b"")
    for op in ("stopped", "release"):
        assert run_hook(path, op, "end", xml).returncode == 0
    assert d.call("devices.list") == [] and list(d.regions.iterdir()) == []


def test_prepare_on_a_migration_target(env: tuple[Daemon, pathlib.Path]) -> None:
    """The destination of a live migration runs migrate begin (the incoming XML on stdin, our
    stdout would replace it), then prepare, start, started; when the incoming side fails, stopped
    and release (docs/migration.md). migrate begin refuses a move virt-synth migrate did not
    arrange, printing nothing and creating nothing; prepare creates the devices as for a start,
    replacing a region of ours that nobody serves; a failed incoming leaves nothing behind."""
    d, path = env
    xml = domain_xml(TWO)
    # A region left by an earlier incoming migration whose daemon state went with a restart.
    assert run_hook(path, "prepare", "begin", xml).returncode == 0
    d.stop()
    stale = d.regions / "synth-3f2a1b4c5d6e-1"
    os.truncate(stale, 2 << 20)  # cannot be re-attached: lost, but recorded as this domain's
    d.start()
    assert d.call("health")["lost_devices"] == ["synth-3f2a1b4c5d6e-1"]
    r = run_hook(path, "migrate", "begin", xml)  # a move virt-synth migrate did not arrange: refused
    assert (r.returncode, r.stdout) == (1, ""), r.stderr  # empty stdout: XML unchanged
    assert "virt-synth migrate" in r.stderr
    assert sorted(x["name"] for x in d.call("devices.list") if x["served"]) == ["synth-3f2a1b4c5d6e-0"]
    for op in ("prepare", "start", "started"):
        r = run_hook(path, op, "begin", xml)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), (op, r.stderr)
    listing = {x["name"]: x for x in d.call("devices.list")}
    assert sorted(listing) == ["synth-3f2a1b4c5d6e-0", "synth-3f2a1b4c5d6e-1"]
    assert all(x["served"] for x in listing.values())
    assert os.stat(stale).st_size == 4 << 20, "the stale region was replaced with the XML's size"
    assert d.call("health")["lost_devices"] == []
    for op in ("stopped", "release"):  # the incoming side failed
        r = run_hook(path, op, "end", xml)
        assert (r.returncode, r.stdout) == (0, ""), r.stderr
    assert d.call("devices.list") == [] and list(d.regions.iterdir()) == []


def test_domains_without_our_metadata_are_left_alone(env: tuple[Daemon, pathlib.Path]) -> None:
    d, path = env
    r = run_hook(path, "prepare", "begin", domain_xml(), sock="/nonexistent/socket")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_prepare_fails_with_one_clear_line(env: tuple[Daemon, pathlib.Path]) -> None:
    d, path = env
    r = run_hook(path, "prepare", "begin", domain_xml(TWO), sock=str(d.base / "down.sock"))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "cannot create the synthetic devices of vnf-hook" in r.stderr
    assert "virt-synthd is not running" in r.stderr
    bad = domain_xml('<synth:device name="x" class="crypto" size="3145728" queues="1" ring-entries="256"/>')
    r = run_hook(path, "prepare", "begin", bad)
    assert r.returncode == 1 and "power of two" in r.stderr and r.stderr.count("\n") == 1
    assert list(d.regions.iterdir()) == [], "a failed prepare leaves nothing behind"


def test_stop_and_reconnect_never_fail(env: tuple[Daemon, pathlib.Path]) -> None:
    d, path = env
    for op in ("stopped", "release", "reconnect"):
        r = run_hook(path, op, "begin" if op == "reconnect" else "end", domain_xml(TWO), sock=str(d.base / "down.sock"))
        assert r.returncode == 0 and r.stdout == "" and "(ignored)" in r.stderr


def test_install_is_idempotent_and_removable(tmp_path: pathlib.Path) -> None:
    p1, changed1 = hookinstall.install(str(tmp_path), "/run/x.sock")
    p2, changed2 = hookinstall.install(str(tmp_path), "/run/x.sock")
    assert p1 == p2 and changed1 and not changed2
    assert os.access(p1, os.X_OK) and pathlib.Path(p1).read_text().startswith("#!/usr/bin/python3 -IS\n")
    assert hookinstall.install(str(tmp_path), "/run/y.sock")[1], "a different socket rewrites it"
    assert hookinstall.remove(str(tmp_path)) == (p1, True)
    assert hookinstall.remove(str(tmp_path)) == (p1, False)
