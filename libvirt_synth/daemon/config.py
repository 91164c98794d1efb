# SPDX-License-Identifier: Apache-2.0
"""virt-synthd configuration: defaults, then /etc/libvirt-synth/virt-synthd.toml (or --config),
then command-line options. Every path is overridable so that the whole stack runs unprivileged
in a temporary directory (tests, the demo).

What the file may say is one table, ``SECTIONS``: section -> key -> ``Key`` (the Config field it
fills, how its value is checked, what is expected in words, the command-line option that overrides
it). Anything else is refused: each unknown section or key, and each bad value, is one line
``FILE: [section] key = value: what is expected`` (or ``--option value: ...``), all of them at once.
To add a key, add a line to the table (and the Config field it fills)."""

from __future__ import annotations

import difflib
import grp
import ipaddress
import json
import os
import pathlib
import pwd
import re
import shlex
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import defaults, errors
from libvirt_synth.abi import ALG_INFO, DevClass

DEFAULT_SOCKET = defaults.SOCKET
DEFAULT_STATE_DIR = "/var/lib/libvirt-synth"
DEFAULT_CONFIG = "/etc/libvirt-synth/virt-synthd.toml"
DEFAULT_PLUGIN_DIR = "/usr/lib/libvirt-synth/plugins"
QUOTA_KEYS = ("ops_per_s", "bytes_per_s", "inflight")
PIN_CLASSES = tuple(c.name.lower() for c in DevClass)
PIN_ALGORITHMS = tuple(info.label for info in ALG_INFO.values())  # what the daemon hands crypto devices
MAX_CPU = 8191  # Linux's largest CONFIG_NR_CPUS, minus one; bounds "0-99999999"
SUN_PATH_MAX = 107  # AF_UNIX sun_path, less its terminating NUL


@dataclass
class Config:
    socket: str = DEFAULT_SOCKET
    state_dir: str = DEFAULT_STATE_DIR
    region_dir: str = "/dev/shm"
    plugin_dir: str = DEFAULT_PLUGIN_DIR
    group: str | None = None          # members may change state (root always may)
    qemu_user: str | None = None      # owner of the region files (libvirt-qemu on Debian); None: ours
    workers: int = 1
    cpus: list[int] = field(default_factory=list)
    plugin_pins: dict[str, str] = field(default_factory=dict)  # algorithm or class -> plugin
    quotas: dict[str, int] = field(default_factory=dict)      # default per-device quotas (0: none)
    prometheus_port: int = 0          # 0: off
    prometheus_address: str = "127.0.0.1"
    spin_us: int = 50
    max_sleep_us: int = 1000
    deep_sleep_us: int = 10000
    dedicated: list[str] = field(default_factory=lambda: ["compress"])  # classes with a worker per device
    # Each domain's QEMU as a uid of its own (virt-synth xml/define write it; the daemon checks it).
    isolation: str = "auto"           # auto: dac unless libvirt confines QEMU with SELinux or AppArmor
    isolation_uids: tuple[int, int] = defaults.ISOLATION_UIDS
    isolation_group: str = defaults.ISOLATION_GROUP
    # Daemons whose hand-overs (migrations, saves) this one accepts, by public key; empty: any.
    migration_peers: list[str] = field(default_factory=list)
    sla_window_s: int = 60            # SLA telemetry: the sliding window achieved KPIs are measured over

    @property
    def registry_path(self) -> str:
        return str(pathlib.Path(self.state_dir) / "registry.sqlite")

    @property
    def vault_dir(self) -> str:
        return str(pathlib.Path(self.state_dir) / "vault")

    def vault_file(self, device: str, kind: str = "vault") -> str:
        """A device's host-only file in the vault directory: its ``vault`` (sessions, keys, taken
        descriptors) or the ``streams`` it hands over."""
        return str(pathlib.Path(self.vault_dir) / f"{device}.{kind}")


class Invalid(Exception):
    """Raised by a Key's parse: the value is not what is expected (the Key's ``want`` says what is)."""


@dataclass(frozen=True)
class Key:
    field: str                   # the Config attribute; "quotas.inflight" is an entry of a dict field
    parse: Callable[[Any], Any]  # the file's (or the option's) value -> what is stored; raises Invalid
    want: str                    # what is expected, in words: the error message ends with it
    option: str | None = None    # the command-line option that overrides it
    host: Callable[[Any, Config], str | None] | None = None  # against this host: the problem, or None


# ---- value checks (parse) ----

def integer(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if type(v) is not int or not lo <= v <= hi:  # not bool: true is no count
            raise Invalid
        return v
    return parse


def text(v: Any) -> str:
    if not isinstance(v, str) or not v or "\0" in v:
        raise Invalid
    return v


def name_or_none(v: Any) -> str | None:
    """A user or group name; "" (what the Ansible role's variables use for none) is none."""
    if v == "":
        return None
    return text(v)


def one_of(*values: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if v not in values:
            raise Invalid
        return str(v)
    return parse


def socket_path(v: Any) -> str:
    if len(os.fsencode(text(v))) > SUN_PATH_MAX:
        raise Invalid
    return str(v)


CPU_PART = re.compile(r"\s*(\d+)(?:-(\d+))?\s*")


def cpu_list(v: Any) -> list[int]:
    """'0,2-3' -> [0, 2, 3]; '' -> [] (any CPU)."""
    if not isinstance(v, str):
        raise Invalid
    cpus: list[int] = []
    for part in v.split(",") if v.strip() else []:
        m = CPU_PART.fullmatch(part)
        if not m:
            raise Invalid
        lo, hi = int(m[1]), int(m[2] or m[1])
        if not lo <= hi <= MAX_CPU:
            raise Invalid
        cpus.extend(range(lo, hi + 1))
    return cpus


def uid_range(v: Any) -> tuple[int, int]:
    """'900000000-900065535' -> (900000000, 900065535): uids no user of this host has."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", v) if isinstance(v, str) else None
    if not m or not 1000 <= int(m[1]) <= int(m[2]) < 2**32 - 1:
        raise Invalid
    return int(m[1]), int(m[2])


def no_users_in(v: tuple[int, int], cfg: Config) -> str | None:
    users = [p.pw_name for p in pwd.getpwall() if v[0] <= p.pw_uid <= v[1]]
    return f"user {users[0]} of this host has a uid in it" if users else None


def class_list(v: Any) -> list[str]:
    if not isinstance(v, list) or any(c not in PIN_CLASSES for c in v) or len(set(v)) != len(v):
        raise Invalid
    return [str(c) for c in v]


def key_list(v: Any) -> list[str]:
    """Public keys as `virt-synth daemon key` prints them: 64 hex digits each."""
    if not isinstance(v, list) or any(not isinstance(k, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", k) for k in v):
        raise Invalid
    return [k.lower() for k in v]


def ip_address(v: Any) -> str:
    """An IPv4 or IPv6 address, as given (no host names: nothing is looked up at start)."""
    if not isinstance(v, str):
        raise Invalid
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise Invalid from None
    return v


PLUGIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def plugin_name(v: Any) -> str:
    if not isinstance(v, str) or not PLUGIN_NAME.fullmatch(v):
        raise Invalid
    return v


# ---- checks against this host (only with load(check_host=True): the daemon starting here) ----

def user_exists(v: str | None, cfg: Config) -> str | None:
    try:
        if v is not None:
            pwd.getpwnam(v)
    except KeyError:
        return "no such user on this host"
    return None


def group_exists(v: str | None, cfg: Config) -> str | None:
    try:
        if v is not None:
            grp.getgrnam(v)
    except KeyError:
        return "no such group on this host"
    return None


def address_here(v: str, cfg: Config) -> str | None:
    """The address is one of this host's (or a wildcard): a socket can be bound to it."""
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(v, 0, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_NUMERICHOST)[0]
        with socket.socket(family, kind, proto) as s:
            s.bind(sockaddr)
    except OSError as e:
        return f"this host has no such address to listen on ({e.strerror or e})"
    return None


def ranges(cpus: set[int] | list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    out: list[str] = []
    for c in sorted(set(cpus)):
        if out and int(out[-1].rpartition("-")[2]) == c - 1:
            out[-1] = f"{out[-1].partition('-')[0]}-{c}"
        else:
            out.append(str(c))
    return ",".join(out)


def cpus_exist(v: list[int], cfg: Config) -> str | None:
    usable = os.sched_getaffinity(0)
    lacking = sorted(set(v) - usable)
    if lacking:
        return f"this host has no CPU {ranges(lacking)} that the daemon may use (it may use {ranges(usable)})"
    return None


def pin_serves(what: str) -> Callable[[str, Config], str | None]:
    """The pinned plugin, if this build carries it, must serve the class or algorithm. Another name
    can only be an external plugin, loaded later by the Service from plugin_dir (loading it here too
    would load it twice): accepted when plugin_dir holds plugins, else refused."""
    def check(name: str, cfg: Config) -> str | None:
        from libvirt_synth.host.plugins import catalog

        plugins = catalog()
        cls = what if what in PIN_CLASSES else "crypto"
        fit = [p.name for p in plugins if p.dev_class == cls]
        p = next((p for p in plugins if p.name == name), None)
        if p is None:
            d = pathlib.Path(cfg.plugin_dir)
            if d.is_dir() and any(d.glob("*.so")):
                return None
            return (f"no plugin {name} in this build, and no external plugins in {cfg.plugin_dir}; "
                    f"{cls} plugins: {', '.join(fit) or 'none'}")
        if p.dev_class != cls:
            return f"{name} is a {p.dev_class} plugin; {cls} plugins: {', '.join(fit) or 'none'}"
        if what not in PIN_CLASSES and p.available and what not in p.algorithms:
            return f"{name} does not serve {what} (it serves {', '.join(p.algorithms) or 'nothing'} here)"
        return None
    return check


# ---- the table ----

SECTIONS: dict[str, dict[str, Key]] = {
    "daemon": {
        "socket": Key("socket", socket_path, f"a Unix socket path of at most {SUN_PATH_MAX} bytes", "--socket"),
        "state_dir": Key("state_dir", text, "a directory path (registry and key vault)", "--state-dir"),
        "region_dir": Key("region_dir", text, "a directory path (where region files go)", "--region-dir"),
        "plugin_dir": Key("plugin_dir", text, "a directory path (external plugins, *.so)", "--plugin-dir"),
        "group": Key("group", name_or_none, "the name of a group whose members may change state, e.g. libvirt",
                     "--group", group_exists),
        "qemu_user": Key("qemu_user", name_or_none, "the name of the user QEMU runs as, e.g. libvirt-qemu",
                         "--qemu-user", user_exists),
    },
    "workers": {
        "count": Key("workers", integer(1, 1024), "a whole number of worker threads, 1-1024", "--workers"),
        "cpus": Key("cpus", cpu_list, 'CPUs of this host for the workers, e.g. "0,2-3" ("" for any)', "--cpus",
                    cpus_exist),
        "spin_us": Key("spin_us", integer(1, 1_000_000),
                       "microseconds to keep polling after the last work, 1-1000000"),
        "max_sleep_us": Key("max_sleep_us", integer(1, 1_000_000), "the longest idle sleep in microseconds, 1-1000000"),
        "deep_sleep_us": Key("deep_sleep_us", integer(1, 1_000_000),
                             "the longest sleep after a second without work in microseconds, 1-1000000"),
        "dedicated": Key("dedicated", class_list, 'a list of device classes whose devices each get a worker '
                         'thread of their own, e.g. ["compress"] (the default; [] for none)'),
    },
    "plugins.pin": {
        **{c: Key(f"plugin_pins.{c}", plugin_name, f"the name of a plugin to serve every {c} device, "
                  f"e.g. {'zlib' if c == 'compress' else 'ipsec-mb'}", host=pin_serves(c))
           for c in PIN_CLASSES},
        **{a: Key(f"plugin_pins.{a}", plugin_name, f"the name of a crypto plugin to serve {a}, e.g. openssl",
                  host=pin_serves(a))
           for a in PIN_ALGORITHMS},
    },
    "quotas": {
        "ops_per_s": Key("quotas.ops_per_s", integer(0, 2**63 - 1), "operations per second per device, >= 0 (0: none)"),
        "bytes_per_s": Key("quotas.bytes_per_s", integer(0, 2**63 - 1), "bytes per second per device, >= 0 (0: none)"),
        "inflight": Key("quotas.inflight", integer(0, 2**32 - 1),
                        "descriptors per queue per poll pass, 0-4294967295 (0: none)"),
    },
    "isolation": {
        "mode": Key("isolation", one_of(*defaults.ISOLATION_MODES), "auto (dac unless QEMU is confined by SELinux or "
                    "AppArmor), dac or none"),
        "uids": Key("isolation_uids", uid_range, 'a range of uids no user has, "FIRST-LAST", e.g. '
                    '"900000000-900065535"', host=no_users_in),
        "group": Key("isolation_group", text, "the group libvirt runs QEMU in (qemu.conf group), e.g. libvirt-qemu",
                     host=group_exists),
    },
    "sla": {
        "window_s": Key("sla_window_s", integer(1, 3600), "seconds of the sliding window a device's achieved KPIs are "
                        "measured over, 1-3600"),
    },
    "migration": {
        "peers": Key("migration_peers", key_list, "a list of the public keys (64 hex digits each, from `virt-synth "
                     "daemon key` on each peer) of the daemons this one takes hand-overs from; [] for any"),
    },
    "prometheus": {
        "port": Key("prometheus_port", integer(0, 65535), "a TCP port for /metrics (on [prometheus] address), "
                    "1-65535, or 0 for off", "--prometheus-port"),
        "address": Key("prometheus_address", ip_address, 'an IP address of this host to serve /metrics on, e.g. '
                       '"127.0.0.1" (the default), "::1", or "0.0.0.0" / "::" for every address',
                       "--prometheus-address", address_here),
    },
}
BY_FIELD = {k.field: k for keys in SECTIONS.values() for k in keys.values()}


# ---- loading ----

def show(v: Any) -> str:
    """A value as TOML would spell it, shortened."""
    if isinstance(v, dict):
        s = "{" + ", ".join(f"{k} = {show(x)}" for k, x in v.items()) + "}"
    elif isinstance(v, bool):
        s = "true" if v else "false"
    else:
        s = json.dumps(v, default=str, ensure_ascii=False)
    return s if len(s) <= 60 else s[:57] + "..."


def _store(cfg: Config, name: str, value: Any) -> None:
    attr, _, entry = name.partition(".")
    if entry:
        getattr(cfg, attr)[entry] = value
    else:
        setattr(cfg, attr, value)


def load(path: str | None, overrides: dict[str, Any], *, check_host: bool = False) -> Config:
    """Defaults < config file (if it exists, or if given explicitly) < overrides (non-None; keyed by
    Config field, checked as the file's values are, reported by their ``Key.option``). With
    check_host (the daemon, starting here), also that users, groups, CPUs and pinned plugins exist
    on this host. Raises errors.ValueError whose message is one line per mistake."""
    cfg = Config()
    file = path or DEFAULT_CONFIG
    settings: list[tuple[Key, Any, str]] = []  # (key, parsed value, how to name it in a message)
    problems: list[str] = []
    if path or os.path.exists(file):
        try:
            with open(file, "rb") as f:
                doc = tomllib.load(f)
        except FileNotFoundError:
            raise errors.NotFoundError(f"configuration file {file} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise errors.ValueError(f"{file}: {e}") from None
        except UnicodeDecodeError as e:
            raise errors.ValueError(f"{file}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except OSError as e:
            raise errors.ValueError(f"{file}: cannot read it: {e.strerror or e}") from None
        _walk(doc, "", file, settings, problems)
    for name, value in overrides.items():
        if value is None:
            continue
        key = BY_FIELD[name]  # a KeyError here is a caller's bug, not the operator's
        where = f"{key.option or name} {shlex.quote(str(value))}"
        try:
            settings.append((key, key.parse(value), where))
        except Invalid:
            problems.append(f"{where}: expected {key.want}")
    for key, value, _ in settings:
        _store(cfg, key.field, value)
    if check_host:
        final = {key.field: (key, value, where) for key, value, where in settings}  # the last one wins
        for key, value, where in final.values():
            why = key.host(value, cfg) if key.host else None
            if why:
                problems.append(f"{where}: {why}; expected {key.want}")
    if problems:
        raise errors.ValueError("\n".join(problems))
    return cfg


def _walk(table: dict[str, Any], prefix: str, file: str, settings: list[tuple[Key, Any, str]],
          problems: list[str]) -> None:
    """Check one TOML table: its sections, their keys (through SECTIONS), or what is unknown."""
    for name, value in table.items():
        path = f"{prefix}.{name}" if prefix else name
        is_table = isinstance(value, dict)
        if path in SECTIONS and is_table:
            for key, v in value.items():
                _setting(path, key, v, file, settings, problems)
        elif path in SECTIONS:
            problems.append(f"{file}: {path} = {show(value)}: expected a [{path}] section")
        elif is_table and any(s.startswith(path + ".") for s in SECTIONS):
            _walk(value, path, file, settings, problems)  # [plugins] holds [plugins.pin]
        elif is_table:
            close = difflib.get_close_matches(path, SECTIONS, n=1)
            hint = f"did you mean [{close[0]}]? " if close else ""
            problems.append(f"{file}: [{path}]: unknown section; {hint}known sections: "
                            f"{', '.join(f'[{s}]' for s in SECTIONS)}")
        else:
            homes = [s for s, keys in SECTIONS.items() if name in keys]
            where = f"[{prefix}] " if prefix else ""
            hint = f"{name} belongs in [{homes[0]}]" if homes else \
                f"known sections: {', '.join(f'[{s}]' for s in SECTIONS)}"
            problems.append(f"{file}: {where}{name} = {show(value)}: not a key of any section; {hint}")


def _setting(section: str, name: str, value: Any, file: str, settings: list[tuple[Key, Any, str]],
             problems: list[str]) -> None:
    keys = SECTIONS[section]
    where = f"{file}: [{section}] {name} = {show(value)}"
    key = keys.get(name)
    if key is None:
        homes = [s for s, ks in SECTIONS.items() if name in ks]
        close = difflib.get_close_matches(name, keys, n=1)
        if homes:
            hint = f"{name} belongs in [{homes[0]}]"
        elif close:
            hint = f"did you mean {close[0]}? [{section}] takes {', '.join(keys)}"
        else:
            hint = f"[{section}] takes {', '.join(keys)}"
        problems.append(f"{where}: unknown key; {hint}")
        return
    try:
        settings.append((key, key.parse(value), where))
    except Invalid:
        problems.append(f"{where}: expected {key.want}")
