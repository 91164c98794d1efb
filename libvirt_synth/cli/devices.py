# SPDX-License-Identifier: Apache-2.0
"""``virt-synth devices``: the synthetic devices on this host, as virt-synthd serves them; with
--regions (or when no daemon runs), as the region files' header pages describe them (read-only:
neither the driver nor the backend notices)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from libvirt_synth import errors, region
from libvirt_synth.cli.output import Formatter, add_socket_arg, daemon_call, emit_json, human_size, table
from libvirt_synth.standalone import default_region_dir

EPILOG = """examples:
  virt-synth devices                      # what virt-synthd serves
  virt-synth devices --domain 2f0c...     # one domain's devices
  virt-synth devices --regions            # every region file in /dev/shm, daemon or not
  virt-synth devices /dev/shm/vnf0-crypto --json
"""


def register(sub: Any) -> None:
    p = sub.add_parser("devices", help="list the synthetic devices on this host", description=__doc__,
                       epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("paths", nargs="*", help="region files to read (implies --regions)")
    p.add_argument("--regions", action="store_true", help="read region files instead of asking the daemon")
    p.add_argument("--dir", default=None, help=f"directory to scan with --regions (default: {default_region_dir()})")
    p.add_argument("--domain", default=None, help="only this domain's devices (daemon)")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.paths or args.regions:
        return show_regions(args)
    try:
        devs = daemon_call(args, "devices.list", domain=args.domain)
    except errors.DeviceError as e:
        if "not running" not in str(e):
            raise
        print(f"virt-synth devices: {e}; reading region files instead", file=sys.stderr)
        return show_regions(args)
    if args.json:
        emit_json(devs)
        return 0
    if not devs:
        print("virt-synthd serves no devices")
        return 0
    rows = [[d["name"], d.get("class", "-"), human_size(d.get("size", 0)), d.get("plugin", "-"),
             ",".join(d.get("status", ["not served"])), d.get("generation", "-"), d.get("sessions", "-"),
             d.get("ops", "-"), "yes" if d.get("driver_attached") else "no", d.get("domain", "-")] for d in devs]
    print(table(rows, ["NAME", "CLASS", "SIZE", "PLUGIN", "STATUS", "GEN", "SESSIONS", "OPS", "DRIVER", "DOMAIN"]))
    return 0


def show_regions(args: argparse.Namespace) -> int:
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
