# SPDX-License-Identifier: Apache-2.0
"""``virt-synth attach`` and ``virt-synth detach``: add a synthetic device to a domain, or take one
away, while it runs (``--live``, the default for a running domain) and/or in its definition
(``--config``), as ``virt-xml --add-device --update`` does for libvirt's own devices. Plain
``virsh attach-device`` of a ``<shmem>`` would give the guest a region nobody serves: no hook runs
for it, so these commands ask virt-synthd first."""

from __future__ import annotations

import argparse
from typing import Any

from libvirt_synth.cli.output import add_socket_arg, emit_json
from libvirt_synth.cmdline import Formatter

EPILOG = """examples:
  virt-synth attach gw1 --device crypto:caps=aes-256-gcm --connect qemu:///system
  virt-synth attach gw1 --device compress:caps=zstd --live --config
  virt-synth detach gw1 synth-5a1b6c3e0d2f-1 --connect qemu:///system

The device syntax is virt-synth xml's --device (docs/libvirt.md); the new device's name is printed
(and in --json). The guest sees the device appear on its PCI bus (ACPI hot-plug) and must close it
before a detach completes; detach waits for that (--timeout).
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("domain", metavar="DOMAIN", help="domain name or uuid")
    p.add_argument("--connect", "-c", default="qemu:///system", metavar="URI", help="libvirt URI")
    p.add_argument("--live", action="store_true", help="the running domain (the default when it runs)")
    p.add_argument("--config", action="store_true", help="the domain's definition too")
    add_socket_arg(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def register(sub: Any) -> None:
    p = sub.add_parser("attach", help="add a synthetic device to a domain (hot-plug)", description=__doc__,
                       epilog=EPILOG, formatter_class=Formatter)
    _common(p)
    p.add_argument("--device", required=True, metavar="SPEC", help="the device, e.g. crypto:caps=aes-256-gcm")
    p.set_defaults(func=run_attach)
    p = sub.add_parser("detach", help="take a synthetic device from a domain (hot-unplug)", description=__doc__,
                       epilog=EPILOG, formatter_class=Formatter)
    _common(p)
    p.add_argument("device", metavar="DEVICE", help="the device's name (virt-synth devices, virsh dumpxml)")
    p.set_defaults(func=run_detach)


def _where(args: argparse.Namespace) -> tuple[Any, Any, bool]:
    from libvirt_synth.move import orchestrate
    from libvirt_synth.xml import connect

    dom = connect.lookup(connect.open_connection(args.connect), args.domain)
    live = args.live or not args.config
    return dom, orchestrate.Endpoint(args.socket, args.timeout), live


def run_attach(args: argparse.Namespace) -> int:
    from libvirt_synth.move import hotplug

    dom, daemon, live = _where(args)
    doc = hotplug.attach(dom, args.device, daemon, live=live, config=args.config)
    if args.json:
        emit_json(doc)
    else:
        d = doc["attached"]
        print(f"{doc['domain']}: attached {d['name']} ({d['class']}, {d['size'] >> 20} MiB)"
              f"{' live' if doc['live'] else ''}{' and in its definition' if doc['config'] else ''}")
    return 0


def run_detach(args: argparse.Namespace) -> int:
    from libvirt_synth.move import hotplug

    dom, daemon, live = _where(args)
    doc = hotplug.detach(dom, args.device, daemon, live=live, config=args.config, timeout=args.timeout)
    if args.json:
        emit_json(doc)
    else:
        print(f"{doc['domain']}: detached {doc['detached']}")
    return 0
