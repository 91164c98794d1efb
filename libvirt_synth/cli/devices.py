# SPDX-License-Identifier: Apache-2.0
"""``virt-synth devices``: the synthetic devices on this host, as virt-synthd serves them; with
--regions (or when no daemon runs), as the region files' header pages describe them (read-only:
neither the driver nor the backend notices)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from libvirt_synth import errors
from libvirt_synth.cli.output import add_socket_arg, daemon_call, emit_json, human_size, table
from libvirt_synth.cmdline import Formatter
from libvirt_synth.daemon import config
from libvirt_synth.host import region

EPILOG = """region directory (--regions, or when virt-synthd is not running), the first that is set:
  --dir DIR; region_dir in --config FILE; $LIBVIRT_SYNTH_REGION_DIR; region_dir in the default
  configuration file; /dev/shm

examples:
  virt-synth devices                      # what virt-synthd serves
  virt-synth devices --domain vnf1        # one domain's devices (its name or its uuid)
  virt-synth devices --regions            # every region file in the daemon's region directory
  virt-synth devices --regions --dir /tmp/regions --json
  virt-synth devices /dev/shm/vnf0-crypto --json
"""


def register(sub: Any) -> None:
    p = sub.add_parser("devices", help="list the synthetic devices on this host", description=__doc__,
                       epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("paths", nargs="*", help="region files to read (implies --regions)")
    p.add_argument("--regions", action="store_true", help="read region files instead of asking the daemon")
    p.add_argument("--dir", default=None, help="directory of region files to read (default: see below)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help=f"virt-synthd's configuration, for its region_dir (default: {config.DEFAULT_CONFIG} "
                        "if it exists)")
    p.add_argument("--domain", default=None, help="only this domain's devices: its name or uuid (daemon)")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.paths or args.regions:
        if args.domain:
            raise errors.ValueError("--domain asks virt-synthd: region files do not say which domain they "
                                    "belong to; drop --regions and the paths")
        return show_regions(args)
    try:
        domain = resolve_domain(args, args.domain) if args.domain else None
        devs = daemon_call(args, "devices.list", domain=domain)
    except errors.DeviceError as e:
        if "not running" not in str(e):
            raise
        if args.domain:
            raise errors.DeviceError(f"{e}; --domain needs it (region files do not say which domain they "
                                        "belong to)") from None
        directory, source = region_dir(args)
        print(f"virt-synth devices: {e}; reading the region files in {directory} ({source}) instead",
              file=sys.stderr)
        return show_regions(args, (directory, source))
    if args.json:
        emit_json(devs)
        return 0
    if not devs:
        print(f"domain {args.domain} has no devices" if args.domain else "virt-synthd serves no devices")
        return 0
    rows = [[d["name"], d.get("class", "-"), human_size(d.get("size", 0)), d.get("plugin", "-"),
             ",".join(d.get("status", ["not served"])), d.get("generation", "-"), d.get("sessions", "-"),
             d.get("ops", "-"), "yes" if d.get("driver_attached") else "no", d.get("domain", "-")] for d in devs]
    print(table(rows, ["NAME", "CLASS", "SIZE", "PLUGIN", "STATUS", "GEN", "SESSIONS", "OPS", "DRIVER", "DOMAIN"]))
    return 0


def resolve_domain(args: argparse.Namespace, key: str) -> str:
    """A domain's uuid from its uuid or its name, as virt-synthd knows it."""
    domains = daemon_call(args, "domains.list")
    for d in domains:
        if d["uuid"].lower() == key.lower():
            return str(d["uuid"])
    named = [d for d in domains if d["name"] == key]
    if len(named) > 1:
        raise errors.ValueError(f"{len(named)} domains are named {key!r}: give the uuid of one of them: "
                                f"{', '.join(d['uuid'] for d in named)}")
    if named:
        return str(named[0]["uuid"])
    known = sorted({str(d["name"]) for d in domains})
    raise errors.NotFoundError(f"virt-synthd knows no domain {key!r}; "
                                  + (f"known domains: {', '.join(known)}" if known else "it serves no domain"))


def region_dir(args: argparse.Namespace) -> tuple[str, str]:
    """The directory of region files to read, and where that choice comes from: --dir, else the
    region_dir of the configuration given with --config, else $LIBVIRT_SYNTH_REGION_DIR (where
    ``virt-synth serve`` puts them), else the region_dir of virt-synthd's configuration (its
    default: /dev/shm). Explicit options beat the environment, which beats files found by default."""
    if args.dir:
        return args.dir, "--dir"
    env = os.environ.get("LIBVIRT_SYNTH_REGION_DIR")
    if env and not args.config:
        return env, "$LIBVIRT_SYNTH_REGION_DIR"
    file = args.config or config.DEFAULT_CONFIG
    try:
        cfg = config.load(args.config, {})
    except errors.SynthError:
        raise
    except OSError as e:
        raise errors.DeviceError(e.errno or 0, f"cannot read virt-synthd's configuration {file}: {e.strerror}; "
                                               "give --dir DIR (or --config FILE)") from None
    except (ValueError, TypeError, AttributeError) as e:  # a value of the wrong type in the file
        raise errors.ValueError(f"{file}: {e}") from None
    if cfg.region_dir != config.Config.region_dir:
        return cfg.region_dir, f"region_dir in {file}"
    return cfg.region_dir, "virt-synthd's default"


def show_regions(args: argparse.Namespace, where: tuple[str, str] | None = None) -> int:
    paths = args.paths
    if paths:
        infos = [region.read_header(p) for p in paths]
    else:
        directory, source = where or region_dir(args)
        if not os.path.isdir(directory):
            raise errors.NotFoundError(f"region directory {directory} ({source}) does not exist")
        infos = region.scan(directory)
    if args.json:
        emit_json([i.as_dict() for i in infos])
        return 0
    if not infos:
        print(f"no synthetic device regions in {directory}")
        return 0
    rows = []
    for i in infos:
        beat = "-" if i.heartbeat_age_s is None else f"{i.heartbeat_age_s:.1f}s ago"
        rows.append([i.name, i.dev_class, human_size(i.size), i.queues, i.backend or "-", ",".join(i.status),
                     i.generation, "yes" if i.driver_attached else "no", beat, i.path])
    print(table(rows, ["NAME", "CLASS", "SIZE", "QUEUES", "BACKEND", "STATUS", "GEN", "DRIVER", "HEARTBEAT",
                       "PATH"]))
    return 0
