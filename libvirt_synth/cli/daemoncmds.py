# SPDX-License-Identifier: Apache-2.0
"""``virt-synth stats``, ``plugins``, ``health``, ``domains`` and ``destroy``: what virt-synthd knows,
and cleaning up after a VM that vanished."""

from __future__ import annotations

import argparse
from typing import Any

from libvirt_synth import plot
from libvirt_synth.cli.output import add_socket_arg, daemon_call, emit_json, table
from libvirt_synth.cmdline import Formatter

EXIT_DEGRADED = 2  # health: the daemon is up but lost or abandoned devices

HEALTH_EPILOG = f"""exit status (the same with --json):
  0  virt-synthd is up and serves every device it should
  1  virt-synthd cannot be reached, or answered with an error
  {EXIT_DEGRADED}  degraded: virt-synthd is up, but lost devices at its restart (their region was gone),
     abandoned some (their region file was truncated under it), or a worker thread makes no
     progress (a plugin that hangs); 2 is also argparse's status
     for a bad command line

examples:
  virt-synth health
  virt-synth health --json
  virt-synth health || alert "virt-synthd is down or degraded"
"""


DESTROY_EPILOG = """The libvirt hook destroys a domain's devices when its VM stops. A VM that vanished without
its hook running (libvirtd killed, the host's libvirt state lost) leaves them behind: this removes
them, their regions and their vaults (keys). A device whose guest driver is still attached belongs
to a running VM and is refused without --force.

examples:
  virt-synth domains
  virt-synth destroy gw1
  virt-synth destroy 5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20 --force
"""


SLA_EPILOG = f"""A device is in violation of a KPI when it had demand it could not serve (its quota
throttled it, or it kept its worker busy) while what it achieved over the window ([sla] window_s,
60 s by default) stayed short of what its domain's metadata asks. An idle device is never in
violation (docs/daemon.md, "SLA").

exit status: 0 no violation; {EXIT_DEGRADED} a KPI in violation; 1 the daemon cannot be reached.

examples:
  virt-synth sla
  virt-synth sla gw1 --json
  virt-synth sla || alert "a VNF gets less than it asked for"
"""


def register(sub: Any) -> None:
    p = sub.add_parser("stats", help="counters of one device, or of all (virt-synthd)", description=__doc__,
                       formatter_class=Formatter,
                       epilog="examples:\n  virt-synth stats\n  virt-synth stats vnf1-c0 --json\n")
    p.add_argument("device", nargs="?", help="device name (default: all)")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="FILE.svg", help="also write the service-time histogram (of the device, or "
                   "of all together) as an SVG chart")
    p.set_defaults(func=run_stats)

    p = sub.add_parser("plugins", help="the plugin catalog: what can serve which algorithm here",
                       description=__doc__, formatter_class=Formatter,
                       epilog="examples:\n  virt-synth plugins\n  virt-synth plugins --json\n")
    p.add_argument("--local", action="store_true", help="probe this build's plugins here, without the daemon")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_plugins)

    p = sub.add_parser("domains", help="the domains virt-synthd serves devices for", description=__doc__,
                       formatter_class=Formatter,
                       epilog="examples:\n  virt-synth domains\n  virt-synth domains --json\n")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_domains)

    p = sub.add_parser("destroy", help="destroy a domain's devices in virt-synthd (after its VM vanished)",
                       description=__doc__, formatter_class=Formatter, epilog=DESTROY_EPILOG)
    p.add_argument("domain", metavar="DOMAIN", help="the domain's uuid or name, as virt-synth domains lists it")
    p.add_argument("--force", action="store_true", help="even if a guest driver still uses a device (its VM runs)")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_destroy)

    p = sub.add_parser("sla", help="each device's KPIs: asked, achieved, in violation", description=__doc__,
                       formatter_class=Formatter, epilog=SLA_EPILOG)
    p.add_argument("domain", nargs="?", metavar="DOMAIN", help="one domain (uuid or name; default: all)")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_sla)

    p = sub.add_parser("health", help="is virt-synthd up, and what does it serve", description=__doc__,
                       formatter_class=Formatter, epilog=HEALTH_EPILOG)
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_health)


def run_stats(args: argparse.Namespace) -> int:
    if args.plot:
        plot.check_path(args.plot)
    doc = daemon_call(args, "stats", name=args.device)
    if args.plot:
        hist: dict[int, int] = {}
        for st in doc["devices"].values():
            for bound, n in st["latency_ns"].items():
                hist[int(bound)] = hist.get(int(bound), 0) + n
        bounds = sorted(hist)
        what = args.device or f"{len(doc['devices'])} devices"
        plot.write(args.plot, plot.bars(f"Service time per operation: {what}", [f"<{human_ns(b)}" for b in bounds],
                                        [hist[b] for b in bounds], "service time (each op counts its burst)",
                                        "operations"))
    if args.json:
        emit_json(doc)
        return 0
    rows = []
    for name, st in doc["devices"].items():
        errs = sum(v for k, v in st["by_status"].items() if k != "ok")
        rows.append([name, st["ops"], st["by_status"].get("ok", 0), errs, st["bytes_in"], st["bytes_out"],
                     st["sessions"], percentile(st["latency_ns"], 50), percentile(st["latency_ns"], 99),
                     st["throttled"], st["resets"], st["ring_errors"], ",".join(st["status"])])
    print(table(rows, ["DEVICE", "OPS", "OK", "ERRORS", "BYTES_IN", "BYTES_OUT", "SESSIONS", "P50", "P99",
                       "THROTTLED", "RESETS", "RING_ERRORS", "STATUS"]) if rows else "no devices served")
    if args.device and rows:
        print()
        for q in doc["devices"][args.device]["queues"]:
            print(f"queue {q['queue']}: {q['ops']} ops, by status {q['by_status'] or '{}'}")
        print("service time per burst (bucket upper bound: ops):",
              ", ".join(f"<{human_ns(int(k))}: {v}" for k, v in doc["devices"][args.device]["latency_ns"].items()))
    return 0


def percentile(hist: dict[str, int], pct: float) -> str:
    """Service-time percentile from the log2 histogram, as '<bucket bound>'."""
    total = sum(hist.values())
    seen = 0
    for bound, n in sorted(hist.items(), key=lambda kv: int(kv[0])):
        seen += n
        if total and seen >= total * pct / 100:
            return "<" + human_ns(int(bound))
    return "-"


def human_ns(ns: int) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1e6:g}ms"
    if ns >= 1000:
        return f"{ns / 1e3:g}us"
    return f"{ns}ns"


def run_plugins(args: argparse.Namespace) -> int:
    if args.local:
        from libvirt_synth.host.plugins import catalog, choices

        doc: dict[str, Any] = {"plugins": [p.as_dict() for p in catalog()], "pins": {}, "choices": choices()}
    else:
        doc = daemon_call(args, "plugins")
    if args.json:
        emit_json(doc)
        return 0
    rows = [[p["name"], p["dev_class"], p["priority"], "yes" if p["available"] else "no", ", ".join(p["algorithms"]),
             p["detail"]] for p in doc["plugins"]]
    print(table(rows, ["PLUGIN", "CLASS", "PRIORITY", "AVAILABLE", "ALGORITHMS", "DETAIL"]))
    print()
    for alg, choice in doc.get("choices", {}).items():
        print(f"{alg:<24} {choice['plugin'] or '(none)':<10} {choice['why']}")
    for p in doc["plugins"]:
        if not p["available"]:
            print(f"{p['name']} is unavailable here: {p['detail']}")
    for r in doc.get("loaded", []):
        print(f"plugin file {r['path']}: {r['message']}")
    return 0


def run_health(args: argparse.Namespace) -> int:
    doc = daemon_call(args, "health")
    degraded = bool(doc.get("lost_devices") or doc.get("abandoned_devices") or doc.get("stalled_workers"))
    if args.json:
        emit_json(doc)
        return EXIT_DEGRADED if degraded else 0
    print(f"virt-synthd {doc['version']} (pid {doc['pid']}) up {doc['uptime_s']} s on {doc['socket']}")
    print(f"{doc['domains']} domains, {doc['devices']} devices, {len(doc['workers'])} workers")
    if doc.get("lost_devices"):
        print(f"lost at restart (region gone): {', '.join(doc['lost_devices'])}")
    if doc.get("abandoned_devices"):
        print(f"abandoned (region file truncated under the backend): {', '.join(doc['abandoned_devices'])}")
    if doc.get("stalled_workers"):
        print(f"stalled workers (no poll pass for seconds): {', '.join(map(str, doc['stalled_workers']))}")
    print("status: degraded" if degraded else "status: ok")
    return EXIT_DEGRADED if degraded else 0


def run_domains(args: argparse.Namespace) -> int:
    doc = daemon_call(args, "domains.list")
    if args.json:
        emit_json(doc)
        return 0
    print(table([[d["uuid"], d["name"], len(d["devices"]), ", ".join(d["devices"])] for d in doc],
                ["UUID", "NAME", "DEVICES", "NAMES"]) if doc else "no domains")
    return 0


def run_destroy(args: argparse.Namespace) -> int:
    from libvirt_synth import errors

    doms = daemon_call(args, "domains.list")
    match = [d for d in doms if args.domain in (d["uuid"], d["name"])]
    if not match:
        raise errors.NotFoundError(f"virt-synthd serves no domain {args.domain!r} (virt-synth domains lists them)")
    if len(match) > 1:
        raise errors.ValueError(f"{len(match)} domains are named {args.domain!r}: give the uuid")
    dom = match[0]
    attached = [n for n in dom["devices"] if daemon_call(args, "device.show", name=n).get("driver_attached")]
    if attached and not args.force:
        raise errors.BusyError(f"domain {dom['name']}: a guest driver is attached to {', '.join(attached)} (its VM "
                               "seems to run; stop it with virsh, or give --force)")
    doc = daemon_call(args, "domain.destroy", uuid=dom["uuid"])
    if args.json:
        emit_json(doc)
    else:
        print(f"{dom['name']} ({dom['uuid']}): destroyed {', '.join(doc['destroyed']) or 'no devices'}")
    return 0


def run_sla(args: argparse.Namespace) -> int:
    doc = daemon_call(args, "sla", domain=args.domain)
    code = EXIT_DEGRADED if doc["violations"] else 0
    if args.json:
        emit_json(doc)
        return code
    rows = [[r["device"], r["domain_name"] or r["domain"], r["kpi"], f"{r['asked']:g} {r['unit']}",
             f"{r['achieved']:.4g} {r['unit']}", "yes" if r["demand_unmet"] else "no",
             "VIOLATION" if r["violation"] else "ok"] for r in doc["kpis"]]
    print(table(rows, ["DEVICE", "DOMAIN", "KPI", "ASKED", "ACHIEVED", "DEMAND UNMET", "SLA"]) if rows
          else "no device asks for a KPI")
    print(f"window {doc['window_s']} s; {doc['violations']} in violation")
    return code
