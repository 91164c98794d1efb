# SPDX-License-Identifier: Apache-2.0
"""``virt-synth define``: generate a domain with its synthetic devices (as ``virt-synth xml``
does) and define it through libvirt; ``virt-synth undefine`` removes a definition.

The default URI, ``test:///default``, is libvirt's embedded test driver: it checks the domain with
libvirt's own parser and needs no daemon, but forgets the domain when the command exits. Use
``--connect qemu:///system`` to define it for real."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from libvirt_synth import errors
from libvirt_synth.cli import xml as xmlcmd
from libvirt_synth.cli.output import emit_json

DEFAULT_URI = "test:///default"  # libvirt_synth.xml.connect.DEFAULT_URI, without importing lxml for --help

EPILOG = """examples:
  virt-synth define --template vnf-kernel --kernel /boot/vmlinuz --initrd /boot/initrd.img \\
      --device crypto:caps=aes-256-gcm --dry-run                  # print the XML
  virt-synth define vnf.xml                                       # check it with libvirt's test driver
  virt-synth define --vnfd examples/vnfd/ipsec-gateway.yaml --template vnf-kernel --kernel /boot/vmlinuz \
      --initrd /boot/initrd.img --name gw1                        # the devices a VNFD's VDU needs
  virt-synth define vnf.xml --connect qemu:///system --start      # define and start it for real
  virt-synth define --domain gw1 --device crypto --device compress --connect qemu:///system
                                                                  # change a defined domain's devices
  virt-synth undefine gw1 --connect qemu:///system
"""

UNDEFINE_EPILOG = """examples:
  virt-synth undefine gw1 --connect qemu:///system
  virt-synth undefine 5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20 --connect qemu:///system --force
"""


def add_connect_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connect", "-c", default=DEFAULT_URI, metavar="URI",
                   help="libvirt URI (qemu:///system for the real hypervisor)")


def register(sub: Any) -> None:
    p = sub.add_parser("define", help="generate a domain with synthetic devices and define it in libvirt",
                       description=__doc__, epilog=xmlcmd.EPILOG.split("examples:")[0] + EPILOG,
                       formatter_class=xmlcmd.HelpFormatter)
    xmlcmd.add_source_args(p)
    p.add_argument("--domain", metavar="NAME", help="start from this defined domain's definition (by name or "
                   "uuid) and redefine it with the devices given")
    add_connect_arg(p)
    p.add_argument("--dry-run", "-n", action="store_true", help="print the XML instead of defining it")
    p.add_argument("--start", action="store_true", help="start the domain once defined")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)

    u = sub.add_parser("undefine", help="remove a domain's definition from libvirt",
                       description="Remove a domain's definition (by name or uuid).", epilog=UNDEFINE_EPILOG,
                       formatter_class=xmlcmd.HelpFormatter)
    u.add_argument("domain", metavar="NAME", help="domain name or uuid")
    add_connect_arg(u)
    u.add_argument("--force", action="store_true", help="stop the domain first if it is running")
    u.add_argument("--json", action="store_true", help="print the result as JSON")
    u.set_defaults(func=run_undefine)


def run(args: argparse.Namespace) -> int:
    from libvirt_synth.xml import connect

    conn = None
    running = False
    if args.domain:
        if args.domain_xml or args.template:
            raise errors.ValueError("give --domain, a DOMAIN_XML file or --template: only one")
        conn = connect.open_connection(args.connect)
        dom = connect.lookup(conn, args.domain)
        running = bool(dom.isActive())
        data, source = connect.inactive_xml(dom).encode(), f"domain {dom.name()} on {args.connect}"
    else:
        data, source = xmlcmd.load_source(args)
        if not args.dry_run:
            conn = connect.open_connection(args.connect)
    # With the connection: the host's secmodels, and the QEMU uids its other domains have.
    from libvirt_synth.hook import metadata

    try:
        uuid = metadata.parse_domain(data.decode(errors="replace"), check=False)["uuid"]
    except errors.ValueError:
        uuid = None  # the designer reports what is wrong with it
    result = xmlcmd.generate(args, data, source, conn, uuid)
    if args.dry_run:
        if args.json:
            emit_json(result.as_dict() | {"xml": result.xml})
        else:
            sys.stdout.write(result.xml)
        return 0
    conn = conn or connect.open_connection(args.connect)
    defined = connect.define(conn, result.xml, start=args.start)
    notes = xmlcmd.device_notes(result)
    if running:
        notes.append("the domain is running: the new devices apply from its next start")
    if args.connect.startswith("test:"):
        notes.append(f"{args.connect} is libvirt's test driver: the definition ends with this command")
    if args.json:
        emit_json({"defined": defined.as_dict(), "notes": notes} | result.as_dict())
        return 0
    print(f"defined domain {defined.name} ({defined.uuid}) on {defined.uri}" + (", started" if defined.active
                                                                                else ""))
    for line in xmlcmd.summary(result)[1:]:
        print(line)
    for note in notes:
        print(f"note: {note}")
    return 0


def run_undefine(args: argparse.Namespace) -> int:
    from libvirt_synth.xml import connect

    conn = connect.open_connection(args.connect)
    info = connect.undefine(conn, args.domain, force=args.force)
    if args.json:
        emit_json(info)
    else:
        print(f"undefined domain {info['name']} ({info['uuid']}) on {info['uri']}"
              + (" (stopped it first)" if info["destroyed"] else ""))
    return 0
