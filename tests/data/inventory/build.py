#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the host inventories of the placement tests (committed; run this only after changing it):

    .venv/bin/python tests/data/inventory/build.py

Each is a complete inventory document. CPU, NUMA and PCI come from the fake sysfs trees of
tests/data/sysfs (discovered for real by libvirt_synth.inventory); capacities are fixed numbers
(what a calibration could have measured) so that the placement tests know every answer:

host1  qat-host, 4 worker cores, every plugin: fits everything, preferred included
host2  ccp-host, 2 cores, no ChaCha20 (openssl without it): fits, the preferred ask missed
host3  ccp-host, 1 slow core: AES-256-GCM 6 Gb/s only, and latency 60 us > 50 asked
host4  qat-host, 2 cores, no compression plugin at all: zstd and lz4 not offered
host5  qat-host, 8 cores, lots committed but AES-256-GCM 40 Gb/s free
host7  qat-host, 1 core: AES-256-GCM 20 Gb/s, 11.9 committed: 8.1 Gb/s free < 12 asked
broken.json  not an inventory: listed as unreadable
"""

from __future__ import annotations

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
sys.path.insert(0, str(ROOT))

from libvirt_synth.capabilities import CAPABILITIES  # noqa: E402
from libvirt_synth.inventory import cpu, model, numa, pci  # noqa: E402

SYSFS = ROOT / "tests/data/sysfs"
# Gb/s per core and mean latency (us) at 1500 B, by capability, of a typical host.
BASE = {"aes-128-gcm": ("ipsec-mb", 30.0), "aes-256-gcm": ("ipsec-mb", 24.0),
        "chacha20-poly1305": ("openssl", 4.5), "aes-256-cbc-hmac-sha256": ("openssl", 1.7),
        "hmac-sha256": ("openssl", 4.6), "deflate": ("isal", 1.0), "zlib": ("isal", 1.0), "gzip": ("isal", 0.9),
        "zstd": ("zstd", 0.7), "lz4": ("lz4", 2.3)}


def doc(host: str, tree: str, workers: int, speed: float = 1.0, without: tuple[str, ...] = (),
        committed: dict[str, dict[str, float]] | None = None, latency: dict[str, float] | None = None) -> dict:
    root = str(SYSFS / tree)
    c = cpu.read(root)
    capacity: dict[str, dict] = {}
    for cap, info in CAPABILITIES.items():
        if info.dev_class == "packet":
            capacity[cap] = {"class": "packet", "kind": "io", "plugin": None, "source": "unmeasured",
                             "throughput_gbps": None, "ops_per_s": None, "latency_us": None}
            continue
        if cap in without:
            continue
        plugin, per_core = BASE[cap]
        g = per_core * speed
        capacity[cap] = {"class": info.dev_class, "kind": info.kind, "plugin": plugin, "source": "calibrated",
                         "gbps_per_core": round(g, 3), "throughput_gbps": round(g * workers, 3),
                         "ops_per_s": round(g * workers * 1e9 / 12000, 1),
                         "latency_us": (latency or {}).get(cap, round(12 / g, 3)), "size": 1500,
                         "sessions_per_device": 1024 if info.dev_class == "crypto" else 64}
    used = committed or {}
    return {
        "format": model.FORMAT, "version": model.VERSION, "host": host,
        "generated": "2025-01-01T00:00:00+00:00", "generator": "tests/data/inventory/build.py",
        "root": f"tests/data/sysfs/{tree}", "cpu": c.as_dict(),
        "numa": [n.as_dict() for n in numa.read(root, c.logical_cpus)],
        "pci": pci.discover(root).as_dict() | {"source": f"tests/data/sysfs/{tree}"},
        "plugins": [], "calibration": {"size": 1500, "millis": 150},
        "workers": {"count": workers, "cpus": list(range(workers)), "source": "--workers"},
        "capacity": capacity,
        "committed": {"sources": ["test data"], "problems": [], "domains": len(used), "devices": [],
                      "by_capability": used},
    }


HOSTS = [
    doc("host1", "qat-host", 4),
    doc("host2", "ccp-host", 2, without=("chacha20-poly1305",)),
    doc("host3", "ccp-host", 1, speed=0.25, latency={"aes-256-gcm": 60.0}),
    doc("host4", "qat-host", 2, without=("deflate", "zlib", "gzip", "zstd", "lz4")),
    doc("host5", "qat-host", 8, committed={"aes-256-gcm": {"throughput_gbps": 152.0, "sessions": 30000},
                                           "lz4": {"throughput_gbps": 10.0}}),
    doc("host7", "qat-host", 1, speed=20 / 24, committed={"aes-256-gcm": {"throughput_gbps": 11.9}}),
]

if __name__ == "__main__":
    for d in HOSTS:
        (HERE / f"{d['host']}.json").write_text(json.dumps(model.ordered(d), indent=2) + "\n")
    (HERE / "broken.json").write_text(json.dumps({"format": "something-else", "version": 1}) + "\n")
    print(f"wrote {len(HOSTS) + 1} files to {HERE}")
