# SPDX-License-Identifier: Apache-2.0
"""The daemon configuration file: the documented example and every configuration the Ansible role
writes load; every unknown section or key and every bad value (in the file or on the command line)
is refused with one line naming the file (or option), the key and what is expected."""

from __future__ import annotations

import grp
import json
import os
import pathlib
import pwd
import subprocess
from typing import Any

import jinja2
import pytest
import yaml

from libvirt_synth import errors
from libvirt_synth.daemon import config

from daemonctl import DAEMON

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "virt-synthd.example.toml"
ROLE = ROOT / "ansible" / "roles" / "libvirt_synth_host"
NO_USER = "synth-no-such-user"
NO_GROUP = "synth-no-such-group"
MISSING_CPU = max(os.sched_getaffinity(0)) + 1  # one past the last CPU this process may use


def exists(lookup: Any, name: str) -> bool:
    try:
        lookup(name)
        return True
    except KeyError:
        return False


assert not exists(pwd.getpwnam, NO_USER) and not exists(grp.getgrnam, NO_GROUP)


def problems(f: pathlib.Path, overrides: dict[str, Any] | None = None, check_host: bool = True) -> list[str]:
    """The lines of the error that loading f reports (none if it loads)."""
    try:
        config.load(str(f), overrides or {}, check_host=check_host)
    except errors.ValueError as e:
        return str(e).splitlines()
    return []


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    f = tmp_path / "virt-synthd.toml"
    f.write_text(text)
    return f


# ---- what must load ----

def test_documented_example_loads() -> None:
    cfg = config.load(str(EXAMPLE), {})
    assert cfg.group == "libvirt" and cfg.qemu_user == "libvirt-qemu"
    assert cfg.cpus == [2, 3] and cfg.workers == 1
    assert cfg.plugin_pins == {"crypto": "ipsec-mb"}
    assert cfg.quotas == {"ops_per_s": 0, "bytes_per_s": 0, "inflight": 0}
    assert (cfg.spin_us, cfg.max_sleep_us, cfg.deep_sleep_us, cfg.prometheus_port) == (50, 1000, 10000, 0)
    assert cfg.registry_path == "/var/lib/libvirt-synth/registry.sqlite"


def test_documented_example_on_this_host() -> None:
    """Checked against this host, the example is refused only for what this host lacks of its
    "example" values: the group, the QEMU user, CPUs 2-3."""
    lacking = {f"[daemon] group = {json.dumps('libvirt')}"} if not exists(grp.getgrnam, "libvirt") else set()
    if not exists(pwd.getpwnam, "libvirt-qemu"):
        lacking.add('[daemon] qemu_user = "libvirt-qemu"')
    if not {2, 3} <= os.sched_getaffinity(0):
        lacking.add('[workers] cpus = "2-3"')
    got = problems(EXAMPLE)
    assert {line.split(": ")[1] for line in got} == lacking, got
    assert all(line.startswith(f"{EXAMPLE}: ") and "this host" in line for line in got)


def render_role_config(**variables: Any) -> str:
    """The role's templates/virt-synthd.toml.j2 with its defaults/main.yml (and these variables)."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_json"] = json.dumps
    env.filters["comment"] = lambda s: f"#\n# {s}\n#"
    template = env.from_string((ROLE / "templates" / "virt-synthd.toml.j2").read_text())
    return template.render({**defaults, **{f"libvirt_synth_host_{k}": v for k, v in variables.items()},
                            "ansible_managed": "Ansible managed"})


@pytest.mark.parametrize("variables", [
    {},
    {"group": "", "qemu_user": "", "cpus": "0", "workers": 4, "prometheus_port": 9464,
     "plugin_pins": {"crypto": "ipsec-mb", "compress": "zlib", "aes-256-gcm": "openssl",
                     "chacha20-poly1305": "openssl"},
     "quotas": {"ops_per_s": 100000, "bytes_per_s": 10**9, "inflight": 8}},
    {"cpus": 0, "quotas": {}},  # YAML numbers, as an inventory may well give them
], ids=["defaults", "everything-set", "numbers"])
def test_every_configuration_the_role_writes_loads(tmp_path: pathlib.Path, variables: dict[str, Any]) -> None:
    f = write(tmp_path, render_role_config(**variables))
    cfg = config.load(str(f), {})  # the group and user need not exist on the test machine
    assert cfg.workers == variables.get("workers", 1) and cfg.socket == config.DEFAULT_SOCKET
    assert cfg.plugin_pins == variables.get("plugin_pins", {})
    if variables.get("group") == "":
        assert cfg.group is None and cfg.qemu_user is None
        assert problems(f) == []  # everything else the role writes holds on any host


def test_overrides_win(tmp_path: pathlib.Path) -> None:
    cfg = config.load(str(EXAMPLE), {"socket": str(tmp_path / "s"), "workers": 3, "group": None, "cpus": "0"})
    assert cfg.socket == str(tmp_path / "s") and cfg.workers == 3 and cfg.group == "libvirt" and cfg.cpus == [0]


def test_an_unknown_plugin_name_may_be_an_external_plugin(tmp_path: pathlib.Path) -> None:
    f = write(tmp_path, f'[daemon]\nplugin_dir = "{tmp_path}"\n[plugins.pin]\ncrypto = "ext-gcm"\n')
    got = problems(f)
    assert len(got) == 1 and got[0].startswith(f'{f}: [plugins.pin] crypto = "ext-gcm": no plugin ext-gcm in '
                                               f"this build, and no external plugins in {tmp_path}; crypto "
                                               "plugins: openssl, "), got
    (tmp_path / "ext-gcm.so").write_bytes(b"")  # loaded (or refused) later, by the service
    assert problems(f) == []


# ---- what must be refused: one line each, naming the file, the key and what is expected ----

TYPOS = [  # (file text, the line's "[section] key = value", what the line goes on to say)
    ('[daemon]\nsokcet = "/tmp/s"\n', '[daemon] sokcet = "/tmp/s"', "unknown key; did you mean socket?"),
    ("[workers]\ncoutn = 2\n", "[workers] coutn = 2", "unknown key; did you mean count?"),
    ('[plugins.pin]\ncrypt = "openssl"\n', '[plugins.pin] crypt = "openssl"', "unknown key; did you mean crypto?"),
    ('[plugins.pin]\ndeflate = "zlib"\n', '[plugins.pin] deflate = "zlib"', "takes crypto, compress, packet, aes-128"),
    ("[daemon]\ncount = 2\n", "[daemon] count = 2", "unknown key; count belongs in [workers]"),
    ("[quotas]\nops = 5\n", "[quotas] ops = 5", "takes ops_per_s, bytes_per_s, inflight"),
    ('[workers]\ncount = "two"\n', '[workers] count = "two"', "expected a whole number of worker threads, 1-1024"),
    ("[workers]\ncount = 0\n", "[workers] count = 0", "expected a whole number of worker threads, 1-1024"),
    ("[workers]\ncount = true\n", "[workers] count = true", "expected a whole number"),
    ("[workers]\ncount = 1.5\n", "[workers] count = 1.5", "expected a whole number"),
    ("[workers]\nspin_us = -5\n", "[workers] spin_us = -5", "expected microseconds to keep polling"),
    ("[workers]\ndeep_sleep_us = 5000000000\n", "[workers] deep_sleep_us = 5000000000", "1-1000000"),
    ('[workers]\ncpus = "two"\n', '[workers] cpus = "two"', 'expected CPUs of this host for the workers, e.g. "0,2-3"'),
    ('[workers]\ncpus = "3-1"\n', '[workers] cpus = "3-1"', "expected CPUs of this host"),
    ('[workers]\ncpus = "0-99999999"\n', '[workers] cpus = "0-99999999"', "expected CPUs of this host"),
    ("[workers]\ncpus = 2\n", "[workers] cpus = 2", "expected CPUs of this host"),
    ("[quotas]\ninflight = -1\n", "[quotas] inflight = -1", "expected descriptors per queue per poll pass"),
    ("[quotas]\ninflight = 4294967296\n", "[quotas] inflight = 4294967296", "0-4294967295"),
    ("[prometheus]\nport = 70000\n", "[prometheus] port = 70000", "expected a TCP port"),
    ('[prometheus]\nport = "9464"\n', '[prometheus] port = "9464"', "expected a TCP port"),
    ('[daemon]\nsocket = ""\n', '[daemon] socket = ""', "expected a Unix socket path"),
    (f'[daemon]\nsocket = "/{"s" * 120}"\n', "[daemon] socket = ", "at most 107 bytes"),
    ("[daemon]\nstate_dir = 5\n", "[daemon] state_dir = 5", "expected a directory path"),
    ('[plugins.pin]\ncrypto = ""\n', '[plugins.pin] crypto = ""', "expected the name of a plugin"),
    ("[plugins.pin]\ncrypto = 1\n", "[plugins.pin] crypto = 1", "expected the name of a plugin"),
    ('[daemon]\nqemu_user = "synth-no-such-user"\n', '[daemon] qemu_user = "synth-no-such-user"',
     "no such user on this host; expected the name of the user QEMU runs as, e.g. libvirt-qemu"),
    ('[daemon]\ngroup = "synth-no-such-group"\n', '[daemon] group = "synth-no-such-group"',
     "no such group on this host; expected the name of a group"),
    (f'[workers]\ncpus = "0,{MISSING_CPU}"\n', f'[workers] cpus = "0,{MISSING_CPU}"',
     f"this host has no CPU {MISSING_CPU}"),
    ('[plugins.pin]\ncrypto = "zlib"\n', '[plugins.pin] crypto = "zlib"', "zlib is a compress plugin; crypto plugins:"),
    ('[plugins.pin]\ncompress = "nosuch"\n', '[plugins.pin] compress = "nosuch"', "no plugin nosuch in this build"),
    ('[plugins.pin]\naes-256-gcm = "zstd"\n', '[plugins.pin] aes-256-gcm = "zstd"', "zstd is a compress plugin"),
    ("[deamon]\nsocket = 1\n", "[deamon]", "unknown section; did you mean [daemon]?"),
    ("[plugins.pins]\ncrypto = 1\n", "[plugins.pins]", "unknown section; did you mean [plugins.pin]?"),
    ("[plugins]\ncrypto = 1\n", "[plugins] crypto = 1", "not a key of any section; crypto belongs in [plugins.pin]"),
    ("count = 2\n", "count = 2", "not a key of any section; count belongs in [workers]"),
    ("daemon = 1\n", "daemon = 1", "expected a [daemon] section"),
]


@pytest.mark.parametrize("text,setting,expected", TYPOS, ids=[t[1] for t in TYPOS])
def test_each_mistake_is_one_line(tmp_path: pathlib.Path, text: str, setting: str, expected: str) -> None:
    f = write(tmp_path, text)
    got = problems(f)
    assert len(got) == 1, got
    assert got[0].startswith(f"{f}: {setting}") and expected in got[0], got[0]


def test_every_mistake_is_reported_at_once(tmp_path: pathlib.Path) -> None:
    f = write(tmp_path, '[daemon]\nsokcet = "/s"\n[workers]\ncount = "two"\nspin_us = -5\n[prometheus]\nport = 1\n')
    got = problems(f)
    assert [line.split(": ")[1] for line in got] == ['[daemon] sokcet = "/s"', '[workers] count = "two"',
                                                     "[workers] spin_us = -5"]


def test_host_checks_are_for_the_daemon_only(tmp_path: pathlib.Path) -> None:
    """Other readers (the inventory) take the file as written; the daemon checks it against the host."""
    f = write(tmp_path, f'[daemon]\nqemu_user = "{NO_USER}"\n[workers]\ncpus = "{MISSING_CPU}"\n')
    assert config.load(str(f), {}).cpus == [MISSING_CPU]
    assert len(problems(f)) == 2


OPTIONS = [  # (override, the line)
    ({"workers": 0}, "--workers 0: expected a whole number of worker threads, 1-1024"),
    ({"qemu_user": NO_USER}, f"--qemu-user {NO_USER}: no such user on this host; expected the name of the user"),
    ({"group": NO_GROUP}, f"--group {NO_GROUP}: no such group on this host; expected the name of a group"),
    ({"cpus": "2-x"}, '--cpus 2-x: expected CPUs of this host for the workers, e.g. "0,2-3"'),
    ({"cpus": str(MISSING_CPU)}, f"--cpus {MISSING_CPU}: this host has no CPU {MISSING_CPU}"),
    ({"prometheus_port": 65536}, "--prometheus-port 65536: expected a TCP port"),
    ({"socket": ""}, "--socket '': expected a Unix socket path"),
]


@pytest.mark.parametrize("override,line", OPTIONS, ids=[o[1].split(":")[0] for o in OPTIONS])
def test_each_bad_option_is_one_line(tmp_path: pathlib.Path, override: dict[str, Any], line: str) -> None:
    got = problems(write(tmp_path, ""), override)
    assert len(got) == 1 and got[0].startswith(line), got


def test_the_host_is_checked_for_what_the_options_leave(tmp_path: pathlib.Path) -> None:
    f = write(tmp_path, f'[daemon]\nqemu_user = "{NO_USER}"\n')
    assert problems(f, {"qemu_user": "root"}) == []  # the file's user is not the one the daemon uses


@pytest.mark.parametrize("text,match", [
    ("[daemon\n", "line 1"),
    ("[daemon]\nsocket = 1\nsocket = 2\n", "line 3"),
])
def test_bad_toml_names_file_and_line(tmp_path: pathlib.Path, text: str, match: str) -> None:
    f = write(tmp_path, text)
    with pytest.raises(errors.SynthError, match=match) as e:
        config.load(str(f), {})
    assert str(e.value).startswith(f"{f}: ")


def test_missing_explicit_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.NotFoundError):
        config.load(str(tmp_path / "nope.toml"), {})


# ---- through the real virt-synthd: exit 1, one line, no traceback ----

def run_daemon(tmp_path: pathlib.Path, config_file: pathlib.Path, *options: str) -> subprocess.CompletedProcess[str]:
    regions = tmp_path / "regions"
    regions.mkdir(exist_ok=True)
    return subprocess.run([*DAEMON, "--config", str(config_file), "--socket", str(tmp_path / "synthd.sock"),
                           "--state-dir", str(tmp_path / "state"), "--region-dir", str(regions), *options],
                          capture_output=True, text=True, timeout=60)


DAEMON_CASES = [  # (file text, options, what the one line names besides "virt-synthd: error: ")
    ('[daemon]\nsokcet = "/tmp/s"\n', (), ["{file}: [daemon] sokcet", "did you mean socket?"]),
    ("[workers]\ncoutn = 2\n", (), ["{file}: [workers] coutn", "did you mean count?"]),
    ('[plugins.pin]\ncrypt = "openssl"\n', (), ["{file}: [plugins.pin] crypt", "did you mean crypto?"]),
    (f'[daemon]\nqemu_user = "{NO_USER}"\n', (), ["{file}: [daemon] qemu_user", "no such user"]),
    (f'[daemon]\ngroup = "{NO_GROUP}"\n', (), ["{file}: [daemon] group", "no such group"]),
    ('[workers]\ncount = "two"\n', (), ["{file}: [workers] count", "expected a whole number"]),
    ("[workers]\nspin_us = -5\n", (), ["{file}: [workers] spin_us", "expected microseconds"]),
    ("[workers]\ncount = 0\n", (), ["{file}: [workers] count", "1-1024"]),
    ("[prometheus]\nport = 70000\n", (), ["{file}: [prometheus] port", "expected a TCP port"]),
    (f'[workers]\ncpus = "{MISSING_CPU}"\n', (), ["{file}: [workers] cpus", "this host has no CPU"]),
    ("[daemon\n", (), ["{file}: ", "line 1"]),
    ("\xff\n", (), ["{file}: ", "not UTF-8"]),
    ("", ("--workers", "0"), ["--workers 0: ", "1-1024"]),
    ("", ("--qemu-user", NO_USER), [f"--qemu-user {NO_USER}: ", "no such user"]),
    ("", ("--group", NO_GROUP), [f"--group {NO_GROUP}: ", "no such group"]),
    ("", ("--cpus", "two"), ["--cpus two: ", "expected CPUs"]),
]


@pytest.mark.parametrize("text,options,names", DAEMON_CASES,
                         ids=[c[0].strip().replace("\n", " ") or " ".join(c[1]) for c in DAEMON_CASES])
def test_virt_synthd_refuses_with_one_line(tmp_path: pathlib.Path, text: str, options: tuple[str, ...],
                                           names: list[str]) -> None:
    f = tmp_path / "virt-synthd.toml"
    f.write_bytes(text.encode("latin-1"))
    r = run_daemon(tmp_path, f, *options)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("virt-synthd: error: ")
    for name in names:
        assert name.format(file=f) in r.stderr, r.stderr


def test_virt_synthd_refuses_an_unreadable_configuration(tmp_path: pathlib.Path) -> None:
    r = run_daemon(tmp_path, tmp_path)  # a directory
    assert r.returncode == 1 and r.stderr == f"virt-synthd: error: {tmp_path}: cannot read it: Is a directory\n"
