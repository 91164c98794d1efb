# SPDX-License-Identifier: Apache-2.0
"""Host options of crypto devices: which plugin serves which algorithm.

    HostDeviceSpec(..., options=(("pins", {"aes-256-gcm": "openssl"}),))

Unpinned algorithms go to the available plugin of highest priority that serves them."""

from __future__ import annotations

from typing import Any

from libvirt_synth import errors
from libvirt_synth._native import ffi
from libvirt_synth.abi import Alg, DevClass


def class_params(options: dict[str, Any], keep: list[Any]) -> Any:
    from libvirt_synth.host.plugins import find_plugin

    unknown = set(options) - {"pins"}
    if unknown:
        raise errors.ValueError(f"crypto devices take the option 'pins', not {', '.join(sorted(unknown))}")
    hp = ffi.new("struct synth_crypto_host_params *")
    for alg_name, plugin in dict(options.get("pins", {})).items():
        alg = Alg.parse(alg_name)
        p = find_plugin(plugin, DevClass.CRYPTO)
        if not p.alg_mask() & (1 << alg):
            raise errors.NotSupportedError(f"plugin {plugin} does not serve {alg.label}")
        hp.pins[alg] = p
    return hp
