# SPDX-License-Identifier: Apache-2.0
"""The plugin catalog: the plugins this build carries, the external ones loaded from a plugin
directory, whether each can run on this host, and which one serves each algorithm and why."""

from __future__ import annotations

import os
import pathlib
from dataclasses import asdict, dataclass
from typing import Any

from libvirt_synth import errors, log
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import ALG_INFO, Alg, CAlg, DevClass


@dataclass(frozen=True)
class PluginInfo:
    name: str
    dev_class: str
    description: str
    priority: int
    available: bool
    detail: str  # version and code path, or why it cannot run here
    algorithms: list[str]
    cpu_features: list[str]  # what it needs of the CPU (informational; the probe decides)
    missing_cpu_features: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _info(p: Any) -> PluginInfo:
    why = ffi.new("char[160]")
    rc = lib.synth_plugin_probe(p, why, 160)
    mask = p.alg_mask() if rc == 0 else 0
    needs = ffi.string(p.cpu_features).decode().split() if p.cpu_features != ffi.NULL else []
    cls = DevClass(p.dev_class).name.lower() if p.dev_class in DevClass._value2member_map_ else str(p.dev_class)
    return PluginInfo(
        name=ffi.string(p.name).decode(),
        dev_class=cls,
        description=ffi.string(p.description).decode() if p.description != ffi.NULL else "",
        priority=p.priority,
        available=rc == 0,
        detail=ffi.string(why).decode(errors="replace"),
        algorithms=_alg_labels(p.dev_class, mask),
        cpu_features=needs,
        missing_cpu_features=[f for f in needs if f not in cpu_flags()],
    )


def _alg_labels(dev_class: int, mask: int) -> list[str]:
    """Names of the algorithms in a plugin's alg_mask, whose bits mean different things per class."""
    if dev_class == DevClass.COMPRESS:
        return [a.label for a in CAlg if mask & (1 << a)]
    if dev_class == DevClass.CRYPTO:
        return [ALG_INFO[a].label for a in Alg if mask & (1 << a)]
    return []


def cpu_flags() -> set[str]:
    """This CPU's feature flags, as /proc/cpuinfo lists them."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def catalog() -> list[PluginInfo]:
    """Every plugin of the catalog: built-in ones first, then those loaded with load_plugin()."""
    out = []
    i = 0
    while (p := lib.synth_plugin_builtin(i)) != ffi.NULL:
        out.append(_info(p))
        i += 1
    return out


def find_plugin(name: str, dev_class: DevClass) -> Any:
    """The C plugin table for a name, checked to serve the class and to run here."""
    p = lib.synth_plugin_find(name.encode())
    names = [pi.name for pi in catalog() if pi.dev_class == dev_class.name.lower()]
    if p == ffi.NULL or p.dev_class != dev_class:
        raise errors.NotFoundError(f"no {dev_class.name.lower()} plugin {name!r}; available: {', '.join(names)}")
    info = _info(p)
    if not info.available:
        raise errors.NotSupportedError(f"plugin {name} cannot run on this host: {info.detail}")
    return p


def load_plugin(path: str | os.PathLike[str]) -> str:
    """Load an external plugin into this process's catalog; returns its load message."""
    why = ffi.new("char[200]")
    rc = lib.synth_plugin_load(str(path).encode(), why, 200)
    msg = str(ffi.string(why).decode(errors="replace"))
    if rc < 0:
        raise errors.ValueError(f"plugin {path}: {msg}")
    return msg


def load_plugin_dir(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Load every *.so of a directory (if it exists); one report entry per file, errors included."""
    d = pathlib.Path(directory)
    report = []
    for f in sorted(d.glob("*.so")) if d.is_dir() else []:
        try:
            report.append({"path": str(f), "ok": True, "message": load_plugin(f)})
            log.info("plugin %s: %s", f, report[-1]["message"])
        except errors.SynthError as e:
            report.append({"path": str(f), "ok": False, "message": str(e)})
            log.warning("%s", e)
    return report


def choices(pins: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """For each crypto algorithm: the plugin that serves it on this host and why (the same rule as
    the data path: a pin, else the available plugin of highest priority)."""
    pins = pins or {}
    plugins = [p for p in catalog() if p.dev_class == "crypto"]
    out: dict[str, dict[str, Any]] = {}
    for alg in Alg:
        label = alg.label
        able = [p for p in plugins if label in p.algorithms]
        pin = pins.get(label) or pins.get("crypto")
        if pin:
            why = f"pinned by configuration ({'algorithm' if label in pins else 'class'} pin)"
            chosen: str | None = pin if any(p.name == pin for p in able) else None
            if chosen is None:
                why = f"pinned to {pin}, which cannot serve it here"
        elif able:
            best = max(able, key=lambda p: p.priority)
            chosen = best.name
            others = ", ".join(f"{p.name} ({p.priority})" for p in able if p is not best)
            why = f"highest priority available ({best.priority})" + (f" over {others}" if others else "")
        else:
            chosen, why = None, "no available plugin serves it"
        out[label] = {"plugin": chosen, "why": why, "candidates": [p.name for p in able]}
    return out
