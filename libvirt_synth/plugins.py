# SPDX-License-Identifier: Apache-2.0
"""The plugins this build carries and whether each can run on this host."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from libvirt_synth import errors
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import ALG_INFO, Alg, DevClass


@dataclass(frozen=True)
class PluginInfo:
    name: str
    dev_class: str
    description: str
    priority: int
    available: bool
    detail: str  # version and code path, or why it cannot run here
    algorithms: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _info(p: Any) -> PluginInfo:
    why = ffi.new("char[160]")
    rc = lib.synth_plugin_probe(p, why, 160)
    mask = p.alg_mask() if rc == 0 else 0
    cls = DevClass(p.dev_class).name.lower() if p.dev_class in DevClass._value2member_map_ else str(p.dev_class)
    return PluginInfo(
        name=ffi.string(p.name).decode(),
        dev_class=cls,
        description=ffi.string(p.description).decode(),
        priority=p.priority,
        available=rc == 0,
        detail=ffi.string(why).decode(errors="replace"),
        algorithms=[ALG_INFO[a].label for a in Alg if mask & (1 << a)],
    )


def builtin_plugins() -> list[PluginInfo]:
    out = []
    i = 0
    while (p := lib.synth_plugin_builtin(i)) != ffi.NULL:
        out.append(_info(p))
        i += 1
    return out


def find_plugin(name: str, dev_class: DevClass) -> Any:
    """The C plugin table for a name, checked to serve the class and to run here."""
    p = lib.synth_plugin_find(name.encode())
    names = [pi.name for pi in builtin_plugins() if pi.dev_class == dev_class.name.lower()]
    if p == ffi.NULL or p.dev_class != dev_class:
        raise errors.NotFoundError(2, f"no {dev_class.name.lower()} plugin {name!r}; available: {', '.join(names)}")
    info = _info(p)
    if not info.available:
        raise errors.NotSupportedError(95, f"plugin {name} cannot run on this host: {info.detail}")
    return p
