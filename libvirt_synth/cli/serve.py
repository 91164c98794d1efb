# SPDX-License-Identifier: Apache-2.0
"""``virt-synth serve``: lay out device regions and serve them until SIGTERM or SIGINT, without the daemon."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from typing import Any

from libvirt_synth import defaults, errors
from libvirt_synth.abi import PKT_MAX_FRAME, DevClass
from libvirt_synth.cli.output import parse_size
from libvirt_synth.cmdline import Formatter
from libvirt_synth.host.backend import Backend, default_region_dir, parse_cpus
from libvirt_synth.host.device import (
    DEFAULT_QUEUES,
    DEFAULT_REGION_SIZE,
    DEFAULT_RING_ENTRIES,
    HostDevice,
    HostDeviceSpec,
)

EPILOG = """examples:
  virt-synth serve --device demo-crypto          # /dev/shm/demo-crypto, until Ctrl-C
  virt-synth serve --dir /tmp/x --device a --device b --workers 2 --cpus 1
  virt-synth serve --device vnf0 --owner libvirt-qemu --json
  virt-synth serve --class packet --device a --device b --wire a:b     # a virtual wire between two VMs
  virt-synth serve --class packet --device vnf0 --tap vnf0=tap-vnf0    # frames to and from a TAP
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
    p.add_argument("--max-sessions", type=int, default=defaults.CRYPTO_SESSIONS, help="crypto sessions per device")
    p.add_argument("--channels", type=int, default=None,
                   help="packet devices: channels per device, each a TX and an RX queue pair "
                   "(default: --queues / 2, at least 1)")
    p.add_argument("--max-frame", type=int, default=None,
                   help=f"packet devices: longest frame (default {PKT_MAX_FRAME})")
    p.add_argument("--wire", action="append", default=[], metavar="A[.CH]:B[.CH]",
                   help="packet devices: a virtual wire between channel CH (default 0) of devices A and B "
                   "(repeatable; wired devices share a worker)")
    p.add_argument("--tap", action="append", default=[], metavar="DEV[.CH][=IFNAME]",
                   help="packet devices: attach a channel to the TAP interface IFNAME (default: the device "
                   "name), created in this process's network namespace (repeatable)")
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
            for c, ln in enumerate(d.get("links", [])):
                where = {"wire": f"wire to {ln.get('peer')} channel {ln.get('peer_channel')}",
                         "tap": f"TAP {ln.get('ifname')}"}.get(ln["link"], "no link")
                print(f"  channel {c}: {where}")
        print(f"pid {os.getpid()}; stop with SIGTERM or Ctrl-C", flush=True)
    elif kind == "stopped":
        for path, st in data["stats"]["devices"].items():
            print(f"{path}: {st['ops']} ops, {st['ring_errors']} ring errors, {st['resets']} resets")


def queue_pairs(args: argparse.Namespace, dev_class: DevClass) -> int:
    if dev_class != DevClass.PACKET:
        if args.channels is not None or args.max_frame is not None or args.wire or args.tap:
            raise errors.ValueError("--channels, --max-frame, --wire and --tap are for --class packet")
        return int(args.queues)
    if args.channels is None:
        if args.queues > 1 and args.queues % 2:
            raise errors.ValueError(f"a packet channel takes 2 queue pairs: --queues {args.queues} is odd "
                                    "(or give --channels)")
        return max(2, int(args.queues) - int(args.queues) % 2)
    if not 1 <= args.channels <= 32:
        raise errors.ValueError(f"--channels must be 1..32, got {args.channels}")
    return 2 * int(args.channels)


def class_options(args: argparse.Namespace, dev_class: DevClass) -> tuple[tuple[str, Any], ...]:
    if dev_class == DevClass.PACKET and args.max_frame is not None:
        return (("max_frame", args.max_frame),)
    return ()


def describe(path: str, d: HostDevice) -> dict[str, Any]:
    out = {"name": d.spec.name, "path": path, "class": d.spec.dev_class.name.lower(), "size": d.spec.size,
           "plugin": d.plugin}
    if d.spec.dev_class == DevClass.PACKET:
        from libvirt_synth.host import packet as host_packet

        out["links"] = [host_packet.link(d, c) for c in range(d.spec.queues // 2)]
    return out


def serve_until_signal(args: argparse.Namespace) -> int:
    if not args.device:
        raise errors.ValueError("nothing to serve: give at least one --device NAME")
    directory = args.dir or str(default_region_dir())
    if not os.path.isdir(directory):
        raise errors.NotFoundError(f"region directory {directory} does not exist")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    backend = Backend(workers=args.workers, cpus=parse_cpus(args.cpus), burst=args.burst,
                      spin_us=args.spin_us, max_sleep_us=args.max_sleep_us,
                      deep_sleep_us=args.deep_sleep_us)
    try:
        dev_class = DevClass.parse(args.dev_class)
        specs = {}
        for name in args.device:
            if "/" in name or not name:
                raise errors.ValueError(f"bad device name {name!r}: a file name, no slashes")
            if name in specs:
                raise errors.ValueError(f"device {name!r} given twice")
            specs[name] = HostDeviceSpec(path=os.path.join(directory, name), dev_class=dev_class, name=name,
                                     size=args.size, queues=queue_pairs(args, dev_class), ring_entries=args.ring,
                                     max_sessions=args.max_sessions, owner=args.owner, plugin=args.plugin,
                                     options=class_options(args, dev_class))
        if dev_class == DevClass.PACKET:
            from libvirt_synth.host import packet as host_packet

            plan = host_packet.parse_links(list(specs), args.wire, args.tap)
            for group in plan.groups(list(specs)):
                backend.add_group([specs[n] for n in group], plan.connect)
        else:
            for spec in specs.values():
                backend.add(spec)
        event(args, "ready", pid=os.getpid(), devices=[describe(p, d) for p, d in backend.devices.items()])
        while not stop.wait(0.5):
            pass
        event(args, "stopped", stats=backend.stats())
    finally:
        backend.close(unlink=not args.keep)
    return 0


def run(args: argparse.Namespace) -> int:
    return serve_until_signal(args)

