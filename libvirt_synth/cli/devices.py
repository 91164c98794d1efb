# SPDX-License-Identifier: Apache-2.0
"""``virt-synth devices``: list device regions from their header pages (read-only: neither the
driver nor the backend notices)."""

from __future__ import annotations

import argparse
from typing import Any

from libvirt_synth import region
from libvirt_synth.cli.output import Formatter, emit_json, human_size, table
from libvirt_synth.standalone import default_region_dir

EPILOG = """examples:
  virt-synth devices                      # every region in /dev/shm
  virt-synth devices /dev/shm/vnf0-crypto --json
"""


def register(sub: Any) -> None:
    p = sub.add_parser("devices", help="list synthetic device regions on this host", description=__doc__,
                       epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("paths", nargs="*", help="region files (default: every region in --dir)")
    p.add_argument("--dir", default=None, help=f"directory to scan (default: {default_region_dir()})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = args.paths
    infos = [region.read_header(p) for p in paths] if paths else region.scan(args.dir or default_region_dir())
    if args.json:
        emit_json([i.as_dict() for i in infos])
        return 0
    if not infos:
        print("no synthetic device regions found")
        return 0
    rows = []
    for i in infos:
        beat = "-" if i.heartbeat_age_s is None else f"{i.heartbeat_age_s:.1f}s ago"
        rows.append([i.name, i.dev_class, human_size(i.size), i.queues, i.backend or "-", ",".join(i.status),
                     i.generation, "yes" if i.driver_attached else "no", beat, i.path])
    print(table(rows, ["NAME", "CLASS", "SIZE", "QUEUES", "BACKEND", "STATUS", "GEN", "DRIVER", "HEARTBEAT",
                       "PATH"]))
    return 0
