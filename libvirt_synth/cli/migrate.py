# SPDX-License-Identifier: Apache-2.0
"""``virt-synth migrate``, ``save``, ``restore``, ``migrations`` and ``daemon-key``: move a running
VNF with its synthetic devices and their state (sessions, keys, IV counters) to another host, or
through a save file (docs/migration.md). ``virsh migrate`` / ``save`` / ``restore`` of such a domain
are refused by the hook: the devices' state must be handed over by the daemons."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from libvirt_synth import errors
from libvirt_synth.cli.output import add_socket_arg, daemon_call, emit_json, table
from libvirt_synth.cmdline import Formatter

MIGRATE_EPILOG = """DEST_URI is the destination libvirt's URI, as for virsh migrate. The destination's
virt-synthd is named by --dest-daemon: a socket path, or ssh://[user@]host[:port][/socket] to reach
it over SSH as libvirt's qemu+ssh:// does.

examples:
  virt-synth migrate gw1 qemu+ssh://host-b/system --dest-daemon ssh://root@host-b --live --persistent \\
      --undefinesource
  virt-synth migrate gw1 qemu+unix:///system?socket=/srv/b/run/libvirt-sock --dest-daemon /srv/b/synthd.sock \\
      --migrateuri tcp://127.0.0.1:49152 --listen-address 127.0.0.1 --json
  virt-synth migrate --resume 5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20 qemu+ssh://host-b/system \\
      --dest-daemon ssh://root@host-b            # finish a hand-over that failed part-way

exit status: 0 moved; 1 not moved (the VM runs on at the source) or, when the message says so,
moved but paused at the destination until --resume completes the hand-over.
"""

SAVE_EPILOG = """The devices' state is sealed to the daemon that will restore the domain (this host's by
default) and written next to the image, in FILE.synth.

examples:
  virt-synth save gw1 /var/lib/libvirt/qemu/save/gw1.save --connect qemu:///system
  virt-synth save gw1 /srv/gw1.save --for-daemon ssh://root@host-b     # to restore on host-b
  virt-synth restore /srv/gw1.save --connect qemu:///system
"""

MIGRATIONS_EPILOG = """examples:
  virt-synth migrations                        # hand-overs this daemon has not finished
  virt-synth migrations cancel 5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20
  virt-synth migrations finish 5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20   # the destination serves it
"""


def _progress(args: argparse.Namespace) -> Any:
    t0 = time.monotonic()

    def say(msg: str) -> None:
        if not getattr(args, "quiet", False):
            print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)
    return say


def _connect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connect", "-c", default="qemu:///system", metavar="URI", help="this host's libvirt URI")
    p.add_argument("--daemon", default=None, metavar="DAEMON",
                   help="this host's virt-synthd: a socket or ssh://... (default: the local socket)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")


def register(sub: Any) -> None:
    p = sub.add_parser("migrate", help="live-migrate a domain with its synthetic devices to another host",
                       description=__doc__, epilog=MIGRATE_EPILOG, formatter_class=Formatter)
    p.add_argument("domain", metavar="DOMAIN", help="domain name or uuid (with --resume: its uuid)")
    p.add_argument("dest_uri", metavar="DEST_URI", help="the destination libvirt URI")
    _connect_args(p)
    p.add_argument("--dest-daemon", required=True, metavar="DAEMON",
                   help="the destination's virt-synthd: a socket path or ssh://[user@]host[:port][/socket]")
    p.add_argument("--dest-key", metavar="HEX", help="refuse unless the destination daemon has this public key "
                   "(virt-synth daemon-key there)")
    p.add_argument("--live", action="store_true", default=True, help="live migration (the default)")
    p.add_argument("--offline-copy", dest="live", action="store_false",
                   help="pause the guest for the whole copy instead of copying while it runs")
    p.add_argument("--persistent", action="store_true", help="define the domain at the destination")
    p.add_argument("--undefinesource", action="store_true", help="undefine the domain at the source")
    p.add_argument("--migrateuri", metavar="URI", help="where the migration stream goes, e.g. tcp://host-b:49152")
    p.add_argument("--listen-address", metavar="ADDR", help="address the destination QEMU listens on")
    p.add_argument("--handover-timeout", type=float, default=60.0, metavar="S",
                   help="how long to keep trying the devices' hand-over while a daemon is unreachable")
    p.add_argument("--resume", action="store_true",
                   help="finish the hand-over of a move whose libvirt part completed (the VM is paused at "
                   "the destination)")
    p.set_defaults(func=run_migrate)

    p = sub.add_parser("save", help="save a domain and its devices' state to a file", description=__doc__,
                       epilog=SAVE_EPILOG, formatter_class=Formatter)
    p.add_argument("domain", metavar="DOMAIN", help="domain name or uuid")
    p.add_argument("file", metavar="FILE", help="libvirt's save image; the devices' state goes to FILE.synth")
    _connect_args(p)
    p.add_argument("--for-daemon", metavar="DAEMON", help="the virt-synthd that will restore it (default: this one)")
    p.add_argument("--for-key", metavar="HEX", help="that daemon's public key (pins it, or names it offline)")
    p.set_defaults(func=run_save)

    p = sub.add_parser("restore", help="restore a domain saved by virt-synth save (here or on another host)",
                       description=__doc__, epilog=SAVE_EPILOG, formatter_class=Formatter)
    p.add_argument("file", metavar="FILE", help="the save image (FILE.synth beside it)")
    _connect_args(p)
    p.set_defaults(func=run_restore)

    p = sub.add_parser("migrations", help="hand-overs a virt-synthd has not finished; cancel or finish one",
                       description=__doc__, epilog=MIGRATIONS_EPILOG, formatter_class=Formatter)
    p.add_argument("action", nargs="?", choices=["list", "cancel", "finish"], default="list")
    p.add_argument("uuid", nargs="?", help="the domain's uuid (cancel, finish)")
    p.add_argument("--force", action="store_true", help="cancel even a hand-over whose state exists only here "
                   "(its devices' sessions are lost)")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_migrations)

    p = sub.add_parser("daemon-key", help="this virt-synthd's public key (what peers pin for hand-overs)",
                       description=__doc__, formatter_class=Formatter,
                       epilog="examples:\n  virt-synth daemon-key\n  virt-synth daemon-key --json\n")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_key)


def _report(args: argparse.Namespace, report: Any) -> int:
    doc = report.as_dict()
    if args.json:
        emit_json(doc)
        return 0
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in doc["steps_s"].items())
    print(f"{doc['domain']} ({doc['uuid']}): {steps}; {doc['blob_bytes']} bytes of sealed device state")
    for d in doc["devices"]:
        print(f"  {d['name']}: {d['class']} served by {d['plugin']}, generation {d['generation']}, "
              f"{d['sessions']} sessions")
    return 0


def _orchestrate() -> Any:
    from libvirt_synth.move import orchestrate
    return orchestrate


def run_migrate(args: argparse.Namespace) -> int:
    from libvirt_synth.xml import connect
    o = _orchestrate()
    src = o.Endpoint(args.daemon, args.timeout)
    dst = o.Endpoint(args.dest_daemon, args.timeout)
    sconn = connect.open_connection(args.connect)
    dconn = connect.open_connection(args.dest_uri)
    say = _progress(args)
    if args.resume:
        ddom = connect.lookup(dconn, args.domain)
        report = o.Report(ddom.name(), ddom.UUIDString())
        o.finish(ddom, src, dst, report.uuid, report, say, args.handover_timeout)
        return _report(args, report)
    dom = connect.lookup(sconn, args.domain)
    report = o.migrate(dom, dconn, src, dst, live=args.live, persistent=args.persistent,
                       undefine_source=args.undefinesource, migrate_uri=args.migrateuri,
                       listen_address=args.listen_address, dest_key=args.dest_key,
                       handover_timeout=args.handover_timeout, progress=say)
    return _report(args, report)


def run_save(args: argparse.Namespace) -> int:
    from libvirt_synth.xml import connect
    o = _orchestrate()
    dom = connect.lookup(connect.open_connection(args.connect), args.domain)
    report = o.save(dom, args.file, o.Endpoint(args.daemon, args.timeout),
                    for_daemon=o.Endpoint(args.for_daemon, args.timeout) if args.for_daemon else None,
                    for_key=args.for_key,
                    progress=_progress(args))
    return _report(args, report)


def run_restore(args: argparse.Namespace) -> int:
    from libvirt_synth.xml import connect
    o = _orchestrate()
    report = o.restore(connect.open_connection(args.connect), args.file, o.Endpoint(args.daemon, args.timeout),
                       _progress(args))
    return _report(args, report)


def run_migrations(args: argparse.Namespace) -> int:
    if args.action == "list":
        doc = daemon_call(args, "migrations.list")
        if args.json:
            emit_json(doc)
        elif not doc:
            print("no hand-over pending")
        else:
            print(table([[m["uuid"], m["name"], m["role"], m["phase"], ", ".join(m["devices"]),
                          time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["started"]))] for m in doc],
                        ["UUID", "DOMAIN", "ROLE", "PHASE", "DEVICES", "STARTED"]))
        return 0
    if not args.uuid:
        raise errors.ValueError(f"migrations {args.action}: which domain? give its uuid (virt-synth migrations)")
    if args.action == "cancel":
        doc = daemon_call(args, "migration.cancel", uuid=args.uuid, force=args.force)
    else:
        doc = daemon_call(args, "migration.finish", uuid=args.uuid)
    if args.json:
        emit_json(doc)
    else:
        done = doc.get("cancelled", doc.get("finished"))
        word = {"cancel": "cancelled", "finish": "finished"}[args.action]
        print(f"{args.uuid}: {word if done else 'nothing pending'}")
    return 0


def run_key(args: argparse.Namespace) -> int:
    doc = daemon_call(args, "daemon.key")
    if args.json:
        emit_json(doc)
    else:
        print(doc["public_key"])
    return 0
