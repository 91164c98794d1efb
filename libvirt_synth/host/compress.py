# SPDX-License-Identifier: Apache-2.0
"""Host options of compression devices: limits and which plugin serves which algorithm.

    HostDeviceSpec(path, DevClass.COMPRESS, options=(("max_streams", 16), ("zstd_window_log", 22),
                                                  ("pins", {"deflate": "zlib"})))

Every option may be left out (the C core's default applies). ``pins`` maps an algorithm (deflate,
zlib, gzip, zstd, lz4) to a plugin name (zlib, isal, zstd, lz4); unpinned algorithms go to the
usable plugins serving them, best first (ISA-L for the deflate family at its levels, zlib at the
others). ``HostDeviceSpec.plugin`` pins the whole device to one plugin instead."""

from __future__ import annotations

from typing import Any

from libvirt_synth import errors
from libvirt_synth._native import ffi
from libvirt_synth.abi import CAlg, DevClass
from libvirt_synth.capabilities import COMPRESS, RANGES

# name -> (minimum, maximum, meaning); 0 always means "the default". The numbers are the C core's
# (synth/compress_host.h), as tests/test_defaults.py checks.
LIMITS: dict[str, tuple[int, int, str]] = RANGES[COMPRESS]
OPTIONS = {**{k: v[2] for k, v in LIMITS.items()}, "pins": "algorithm -> plugin name"}


def parse_pins(value: Any) -> dict[CAlg, str]:
    """``{"deflate": "zlib"}`` or ``"deflate=zlib,zstd=zstd"`` -> {CAlg.DEFLATE: "zlib", ...}."""
    if isinstance(value, str):
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise errors.ValueError(f"bad pins {value!r}: expected alg=plugin[,alg=plugin...]")
        value = {a.strip(): b.strip() for a, _, b in pairs}
    if not isinstance(value, dict):
        raise errors.ValueError(f"pins must map algorithms to plugin names, got {value!r}")
    try:
        return {CAlg.parse(str(a)): str(p) for a, p in value.items()}
    except ValueError as e:
        raise errors.ValueError(str(e)) from None


def class_params(options: dict[str, Any], keep: list[Any]) -> Any:
    """The C parameter block (struct synth_comp_host_params) of a compression device's options."""
    from libvirt_synth.host.plugins import find_plugin

    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise errors.ValueError(f"unknown compression device option(s) {sorted(unknown)}; known: {sorted(OPTIONS)}")
    hp = ffi.new("struct synth_comp_host_params *")
    for name, (lo, hi, what) in LIMITS.items():
        raw = options.get(name, 0)
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise errors.ValueError(f"{name} ({what}) must be a number, got {raw!r}") from None
        if value and not lo <= value <= hi:
            raise errors.ValueError(f"{name} ({what}) must be {lo}..{hi}, got {value}")
        setattr(hp, name, value)
    for alg, plugin in parse_pins(options.get("pins", {})).items():
        p = find_plugin(plugin, DevClass.COMPRESS)
        if not p.alg_mask() & (1 << alg):
            raise errors.NotSupportedError(f"plugin {plugin} does not serve {alg.label}")
        hp.plugin[alg] = p
    keep.append(hp)
    return hp
