# SPDX-License-Identifier: Apache-2.0
"""``virt-synth serve``: lay out device regions and serve them until SIGTERM, without the daemon."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from typing import Any

from libvirt_synth import errors
from libvirt_synth.abi import DevClass
from libvirt_synth.backend import DEFAULT_QUEUES, DEFAULT_REGION_SIZE, DEFAULT_RING_ENTRIES, DeviceSpec
from libvirt_synth.cli.output import Formatter, parse_size
from libvirt_synth.standalone import Backend, default_region_dir, parse_cpus

EPILOG = """examples:
  virt-synth serve --device demo-crypto          # /dev/shm/demo-crypto, until Ctrl-C
  virt-synth serve --dir /tmp/x --device a --device b --workers 2 --cpus 1
  virt-synth serve --device vnf0 --owner libvirt-qemu --json
"""


def add_backend_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `virt-synth serve` and `virt-synthd`."""
    p.add_argument("--device", "-d", action="append", default=[], metavar="NAME",
                   help="serve a device with this region name (repeatable)")
    p.add_argument("--class", dest="dev_class", default="crypto", choices=[c.name.lower() for c in DevClass],
                   help="device class of the devices")
    p.add_argument("--dir", default=None, help=f"directory for region files (default: {default_region_dir()})")
    p.add_argument("--size", type=parse_size, default=DEFAULT_REGION_SIZE, help="region size, a power of two")
    p.add_argument("--queues", type=int, default=DEFAULT_QUEUES, help="queue pairs per device")
    p.add_argument("--ring", type=int, default=DEFAULT_RING_ENTRIES, help="entries per ring")
    p.add_argument("--max-sessions", type=int, default=1024, help="crypto sessions per device")
    p.add_argument("--plugin", default=None, help="serve the devices with this plugin (default: the class default)")
    p.add_argument("--owner", default=None, help="user that owns the regions (the QEMU user, e.g. libvirt-qemu)")
    p.add_argument("--workers", type=int, default=1, help="worker threads")
    p.add_argument("--cpus", default=None, help="CPUs for the workers, e.g. 1 or 2-3 (round-robin)")
    p.add_argument("--burst", type=int, default=32, help="descriptors per dequeue")
    p.add_argument("--spin-us", type=int, default=50, help="keep polling this long after the last work")
    p.add_argument("--max-sleep-us", type=int, default=1000, help="longest idle sleep between polls")
    p.add_argument("--deep-sleep-us", type=int, default=10000,
                   help="longest idle sleep once a worker has been idle for a second")
    p.add_argument("--keep", action="store_true", help="leave the region files in place on exit")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve device regions without the daemon (tests, demo, benchmarks)",
                       description=__doc__, epilog=EPILOG, formatter_class=Formatter)
    add_backend_args(p)
    p.set_defaults(func=run)


def event(args: argparse.Namespace, kind: str, **data: Any) -> None:
    if args.json:
        print(json.dumps({"event": kind, **data}), flush=True)
    elif kind == "ready":
        for d in data["devices"]:
            print(f"serving {d['class']} device {d['path']} ({d['size']} bytes, plugin {d['plugin']})")
        print(f"pid {os.getpid()}; stop with SIGTERM or Ctrl-C", flush=True)
    elif kind == "stopped":
        for path, st in data["stats"]["devices"].items():
            print(f"{path}: {st['ops']} ops, {st['ring_errors']} ring errors, {st['resets']} resets")


def serve_until_signal(args: argparse.Namespace) -> int:
    if not args.device:
        raise errors.ValueError("nothing to serve: give at least one --device NAME")
    directory = args.dir or str(default_region_dir())
    if not os.path.isdir(directory):
        raise errors.NotFoundError(2, f"region directory {directory} does not exist")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    backend = Backend(workers=args.workers, cpus=parse_cpus(args.cpus), burst=args.burst,
                      spin_us=args.spin_us, max_sleep_us=args.max_sleep_us,
                      deep_sleep_us=args.deep_sleep_us)
    try:
        for name in args.device:
            if "/" in name or not name:
                raise errors.ValueError(f"bad device name {name!r}: a file name, no slashes")
            spec = DeviceSpec(path=os.path.join(directory, name), dev_class=DevClass.parse(args.dev_class),
                              name=name, size=args.size, queues=args.queues, ring_entries=args.ring,
                              max_sessions=args.max_sessions, owner=args.owner, plugin=args.plugin)
            backend.add(spec)
        event(args, "ready", pid=os.getpid(), devices=[
            {"name": d.spec.name, "path": p, "class": d.spec.dev_class.name.lower(), "size": d.spec.size,
             "plugin": d.plugin} for p, d in backend.devices.items()])
        while not stop.wait(0.5):
            pass
        event(args, "stopped", stats=backend.stats())
    finally:
        backend.close(unlink=not args.keep)
    return 0


def run(args: argparse.Namespace) -> int:
    return serve_until_signal(args)

