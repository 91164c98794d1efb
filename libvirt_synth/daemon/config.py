# SPDX-License-Identifier: Apache-2.0
"""virt-synthd configuration: defaults, then /etc/libvirt-synth/virt-synthd.toml (or --config),
then command-line options. Every path is overridable so that the whole stack runs unprivileged
in a temporary directory (tests, the demo)."""

from __future__ import annotations

import os
import pathlib
import tomllib
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import errors

DEFAULT_SOCKET = "/run/libvirt-synth/synthd.sock"
DEFAULT_STATE_DIR = "/var/lib/libvirt-synth"
DEFAULT_CONFIG = "/etc/libvirt-synth/virt-synthd.toml"
DEFAULT_PLUGIN_DIR = "/usr/lib/libvirt-synth/plugins"
QUOTA_KEYS = ("ops_per_s", "bytes_per_s", "inflight")


def env_socket() -> str:
    """The socket clients use: $LIBVIRT_SYNTH_SOCKET, else the default."""
    return os.environ.get("LIBVIRT_SYNTH_SOCKET") or DEFAULT_SOCKET


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
    spin_us: int = 50
    max_sleep_us: int = 1000
    deep_sleep_us: int = 10000

    def validate(self) -> None:
        if self.workers < 1:
            raise errors.ValueError(f"workers must be at least 1, got {self.workers}")
        for k, v in self.quotas.items():
            if k not in QUOTA_KEYS or not isinstance(v, int) or v < 0:
                raise errors.ValueError(f"quota {k}={v!r}: expected one of {', '.join(QUOTA_KEYS)} with a count >= 0")
        if not 0 <= self.prometheus_port < 65536:
            raise errors.ValueError(f"prometheus port {self.prometheus_port} out of range")

    @property
    def registry_path(self) -> str:
        return str(pathlib.Path(self.state_dir) / "registry.sqlite")

    @property
    def vault_dir(self) -> str:
        return str(pathlib.Path(self.state_dir) / "vault")


def load(path: str | None, overrides: dict[str, Any]) -> Config:
    """Defaults < config file (if it exists, or if given explicitly) < overrides (non-None)."""
    cfg = Config()
    file = path or DEFAULT_CONFIG
    if path or os.path.exists(file):
        try:
            with open(file, "rb") as f:
                doc = tomllib.load(f)
        except FileNotFoundError:
            raise errors.NotFoundError(2, f"configuration file {file} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise errors.ValueError(f"{file}: {e}") from None
        apply(cfg, doc, file)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    cfg.validate()
    return cfg


def apply(cfg: Config, doc: dict[str, Any], where: str) -> None:
    known = {"daemon", "workers", "plugins", "quotas", "prometheus"}
    unknown = set(doc) - known
    if unknown:
        raise errors.ValueError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}; known: "
                                f"{', '.join(sorted(known))}")
    d = doc.get("daemon", {})
    for key in ("socket", "state_dir", "region_dir", "plugin_dir", "group", "qemu_user"):
        if key in d:
            setattr(cfg, key, str(d[key]))
    w = doc.get("workers", {})
    for key in ("spin_us", "max_sleep_us", "deep_sleep_us"):
        if key in w:
            setattr(cfg, key, int(w[key]))
    if "count" in w:
        cfg.workers = int(w["count"])
    if "cpus" in w:
        from libvirt_synth.standalone import parse_cpus

        cfg.cpus = parse_cpus(str(w["cpus"]))
    cfg.plugin_pins = {str(k): str(v) for k, v in doc.get("plugins", {}).get("pin", {}).items()}
    cfg.quotas = {str(k): int(v) for k, v in doc.get("quotas", {}).items()}
    cfg.prometheus_port = int(doc.get("prometheus", {}).get("port", 0))
