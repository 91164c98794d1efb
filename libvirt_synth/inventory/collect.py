# SPDX-License-Identifier: Apache-2.0
"""Put a host's inventory together: CPU, NUMA, PCI, plugins and their capacity, workers, and what
defined VMs committed."""

from __future__ import annotations

import datetime
import os
import socket as socketlib
from typing import Any

from libvirt_synth import __version__, errors, log
from libvirt_synth.inventory import committed as committedmod
from libvirt_synth.inventory import cpu, model, numa, pci, plugins


def workers(count: int | None = None, socket: str | None = None, config: str | None = None,
            ask_daemon: bool = True) -> dict[str, Any]:
    """The worker cores that serve devices: ``count`` if given, else what virt-synthd runs, else
    its configuration file, else 1. CPUs come from the configuration (``workers.cpus``)."""
    from libvirt_synth.daemon import config as cfgmod

    cpus: list[int] = []
    cfg_count, cfg_source = None, None
    try:
        cfg = cfgmod.load(config, {})
        cpus = list(cfg.cpus)
        if config or os.path.exists(cfgmod.DEFAULT_CONFIG):
            cfg_count, cfg_source = cfg.workers, f"configuration ({config or cfgmod.DEFAULT_CONFIG})"
    except (errors.SynthError, OSError, ValueError) as e:  # a broken daemon config must not stop the inventory
        log.warning("virt-synthd configuration not read: %s", e)
    if count is not None:
        return {"count": count, "cpus": cpus[:count], "source": "--workers"}
    if ask_daemon:
        from libvirt_synth.daemon import client

        try:
            health = client.call("health", socket, timeout=5.0)
            return {"count": len(health.get("workers") or []) or 1, "cpus": cpus, "source": "virt-synthd"}
        except client.RpcError:
            pass
    if cfg_count is not None:
        return {"count": cfg_count, "cpus": cpus, "source": cfg_source}
    return {"count": 1, "cpus": cpus, "source": "default"}


def collect(root: str | None = None, *, host: str | None = None, calibrate: bool = False,
            cache_dir: str | None = None, size: int = plugins.DEFAULT_SIZE, millis: int = plugins.DEFAULT_MILLIS,
            worker_count: int | None = None, socket: str | None = None, uri: str | None = None,
            use_daemon: bool = True, config: str | None = None) -> dict[str, Any]:
    """The inventory document of this host. ``root`` reads CPU, NUMA and PCI from a fake tree
    (ROOT/proc/cpuinfo, ROOT/sys/...) instead of the real host; plugins are always this build's."""
    c = cpu.read(root or "/")
    w = workers(worker_count, socket, config, ask_daemon=use_daemon)
    plugin_list = plugins.inventory(c.model, calibrate=calibrate, cache_dir=cache_dir, size=size, millis=millis)
    committed = committedmod.collect(socket=socket, uri=uri, use_daemon=use_daemon)
    return model.ordered({
        "format": model.FORMAT,
        "version": model.VERSION,
        "host": host or socketlib.gethostname(),
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "generator": f"libvirt-synth {__version__}",
        "root": root or "/",
        "cpu": c.as_dict(),
        "numa": [n.as_dict() for n in numa.read(root or "/", c.logical_cpus)],
        "pci": pci.discover(root).as_dict(),
        "plugins": plugin_list,
        "calibration": {"size": size, "millis": millis},
        "workers": w,
        "capacity": plugins.capacity(plugin_list, w["count"]),
        "committed": committed.as_dict(),
    })
