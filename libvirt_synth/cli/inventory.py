# SPDX-License-Identifier: Apache-2.0
"""``virt-synth inventory``: what this host offers synthetic devices: CPU and flags, NUMA nodes, PCI
accelerators and SR-IOV NICs (pyudev), the plugins with their measured capacity (a short
calibration per plugin and algorithm, cached), the worker cores, and the capacity that defined VMs
already committed. ``--json`` prints the inventory document ``virt-synth place`` reads;
``--openstack`` prints the same as OpenStack Placement traits and resource classes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from libvirt_synth import defaults, errors
from libvirt_synth.cli.output import emit_json, table
from libvirt_synth.cmdline import Formatter

EPILOG = """examples:
  virt-synth inventory                                   # a summary for people
  virt-synth inventory --json -o /srv/fleet/$(hostname).json   # the document virt-synth place reads
  virt-synth inventory --calibrate                       # measure every plugin again (cache refreshed)
  virt-synth inventory --connect qemu:///system --json   # committed capacity from libvirt's domains too
  virt-synth inventory --root tests/data/sysfs/qat-host  # CPU, NUMA and PCI of a fake sysfs tree
  virt-synth inventory --format provider-yaml > /etc/nova/provider_config/synth.yaml
  virt-synth inventory --from /srv/fleet/host7.json --openstack placement

calibration: each available plugin x algorithm runs for --calibration-ms on one core, on 1500-byte
operations (crypto: encrypt with 16 bytes of AAD; compression: compress text at the default level);
capacity = Gb/s per core x worker cores. Results are cached (--cache-dir) per CPU model and plugin
version; --calibrate measures again. Packet I/O (the pseudo-plugin packet-io): frames of the same size
sent between two packet devices over a virtual wire, the host's poll passes timed; capacity in
packets/s = frames delivered per second per core x worker cores.
"""


def register(sub: Any) -> None:
    from libvirt_synth.inventory.plugins import DEFAULT_MILLIS

    p = sub.add_parser("inventory", help="this host's CPU, accelerators, plugins and capacity (for placement)",
                       description=__doc__, epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("--json", action="store_true", help="print the inventory document (JSON)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the output to FILE instead of standard output")
    p.add_argument("--calibrate", action="store_true", help="measure every plugin again, ignoring the cache")
    p.add_argument("--calibration-ms", type=int, default=DEFAULT_MILLIS, metavar="MS",
                   help="time per plugin and algorithm")
    p.add_argument("--cache-dir", metavar="DIR", help="calibration cache (default: $LIBVIRT_SYNTH_CACHE_DIR, "
                   "/var/cache/libvirt-synth as root, else ~/.cache/libvirt-synth)")
    p.add_argument("--root", metavar="DIR", help="read CPU, NUMA and PCI from DIR/proc and DIR/sys (a fake tree) "
                   "instead of this host")
    p.add_argument("--host", metavar="NAME", help="host name in the document (default: this host's)")
    p.add_argument("--workers", type=int, metavar="N", help="worker cores serving devices (default: what "
                   "virt-synthd runs, else its configuration, else 1)")
    p.add_argument("--config", metavar="FILE", help="virt-synthd configuration to read workers from "
                   "(default: /etc/libvirt-synth/virt-synthd.toml if it exists)")
    p.add_argument("--connect", "-c", metavar="URI", help="also count the devices of the domains defined on "
                   "this libvirt URI as committed (e.g. qemu:///system)")
    p.add_argument("--socket", default=None, help=f"virt-synthd socket (default: ${defaults.SOCKET_ENV} or "
                   f"{defaults.SOCKET})")
    p.add_argument("--no-daemon", action="store_true", help="do not ask virt-synthd (workers, committed devices)")
    p.add_argument("--openstack", choices=("placement", "provider-config"),
                   help="print OpenStack Placement data: API request bodies (JSON) or a Nova provider "
                   "configuration file (YAML)")
    p.add_argument("--format", choices=("text", "json", "placement", "provider-yaml"), default=None,
                   help="what to print: text (the default), json (--json), placement or provider-yaml "
                   "(--openstack placement / provider-config: nova's provider.yaml, schema 1.0)")
    p.add_argument("--reserve-committed", action="store_true",
                   help="--openstack: reserve the capacity committed by VMs defined outside Nova")
    p.add_argument("--from", dest="from_file", metavar="FILE", help="use this inventory document instead of "
                   "collecting one (with --openstack or --json)")
    p.set_defaults(func=run)


def _write(args: argparse.Namespace, text: str) -> None:
    if args.output:
        from libvirt_synth.cli.xml import write_atomic

        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)


def run(args: argparse.Namespace) -> int:
    from libvirt_synth.inventory import collect, model

    if args.workers is not None and args.workers < 1:
        raise errors.ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.from_file:
        doc = model.read(args.from_file)
    else:
        doc = collect(args.root, host=args.host, calibrate=args.calibrate, cache_dir=args.cache_dir,
                      millis=args.calibration_ms, worker_count=args.workers, socket=args.socket, uri=args.connect,
                      use_daemon=not args.no_daemon, config=args.config)
    fmt = {"json": ("json", None), "placement": (None, "placement"), "provider-yaml": (None, "provider-config")}
    if args.format in fmt:
        as_json, what = fmt[args.format]
        args.json = args.json or as_json == "json"
        args.openstack = args.openstack or what
    if args.openstack:
        from libvirt_synth.placement import openstack

        if args.openstack == "placement":
            _write(args, json.dumps(openstack.placement_requests(doc, args.reserve_committed), indent=2) + "\n")
        else:
            import yaml

            text = yaml.safe_dump(openstack.provider_config(doc, args.reserve_committed), sort_keys=False)
            _write(args, f"# Nova provider configuration for {doc['host']}, from virt-synth inventory\n{text}")
        return 0
    if args.json:
        if args.output:
            _write(args, json.dumps(doc, indent=2) + "\n")
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            emit_json(doc)
        return 0
    _write(args, "\n".join(summary(doc)) + "\n")
    return 0


def _cpus(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    out, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out) or "-"


def _num(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    from libvirt_synth.placement.rank import fmt

    return fmt(float(v)) + unit


def summary(doc: dict[str, Any]) -> list[str]:
    from libvirt_synth.inventory import model

    c, w = doc["cpu"], doc["workers"]
    lines = [f"host {doc['host']}: {c['model']} ({c['vendor']}), {c['logical_cpus']} CPUs, {c['sockets']} socket(s)",
             f"  acceleration flags: {' '.join(c['accel_flags']) or 'none'}"]
    for n in doc["numa"]:
        mem = f", {n['memory_mib'] / 1024:.1f} GiB" if n.get("memory_mib") else ""
        lines.append(f"  NUMA node {n['node']}: CPUs {_cpus(n['cpus'])}{mem}")
    pci = doc["pci"]
    lines.append(f"accelerators ({'pyudev' if pci['source'] == 'udev' else pci['source']}): "
                 + ("none found" if not pci["accelerators"] else ""))
    for a in pci["accelerators"]:
        sr = a.get("sriov")
        vfs = f", SR-IOV {sr['num_vfs']}/{sr['total_vfs']} VFs" if sr else ""
        gen = f" ({a['generation']})" if a.get("generation") else ""
        lines.append(f"  {a['address']}  {a['vendor']} {a['name']}{gen}  [{a['vendor_id'][2:]}:{a['device_id'][2:]}] "
                     f"{a['class_name']}, driver {a['driver'] or 'none'}, NUMA {a['numa_node']}{vfs}")
    lines.append("NICs:" + (" none" if not pci["nics"] else ""))
    for n in pci["nics"]:
        sr = n.get("sriov")
        vfs = f"SR-IOV {sr['num_vfs']}/{sr['total_vfs']} VFs" if sr else "no SR-IOV"
        lines.append(f"  {n['address']}  [{n['vendor_id'][2:]}:{n['device_id'][2:]}] {','.join(n['interfaces']) or '-'}"
                     f"  driver {n['driver'] or 'none'}, {vfs}")
    cal = doc.get("calibration", {})
    lines.append(f"workers: {w['count']} core(s){' (CPUs ' + _cpus(w['cpus']) + ')' if w['cpus'] else ''}, "
                 f"from {w['source']}")
    lines.append(f"capacity ({cal.get('size', '?')}-byte ops, {w['count']} worker core(s); free = capacity - "
                 "committed):")
    used, free = model.committed(doc), model.free(doc)
    rows = []
    for cap, e in doc["capacity"].items():
        rows.append([cap, e.get("plugin") or "-", _num(e.get("gbps_per_core")), _num(e.get("throughput_gbps")),
                     _num(used.get(cap, {}).get("throughput_gbps", 0 if e.get("throughput_gbps") is not None
                                                else None)),
                     _num(free[cap]["throughput_gbps"]), _num(e.get("latency_us"), " us"), e.get("source", "")])
    lines += ["  " + line for line in table(rows, ["capability", "plugin", "Gb/s/core", "Gb/s", "committed",
                                                   "free", "latency", "source"]).splitlines()]
    for cap, e in doc["capacity"].items():
        if e.get("packets_per_s") is not None:
            lines.append(f"  {cap}: {_num(e['packets_per_s'])} packets/s ({_num(e.get('packets_per_s_per_core'))} "
                         f"per core), committed {_num(used.get(cap, {}).get('packets_per_s', 0))}, free "
                         f"{_num(free[cap]['packets_per_s'])}")
    com = doc["committed"]
    lines.append(f"committed: {len(com['devices'])} device(s) of {com['domains']} domain(s)"
                 f" (from {', '.join(com['sources']) or 'nowhere'})")
    lines += [f"  note: {p}" for p in com["problems"]]
    return lines
