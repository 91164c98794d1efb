# SPDX-License-Identifier: Apache-2.0
"""``virt-synth place``: rank the hosts that meet every mandatory requirement of a VNFD's VDUs, and
say why each other host was rejected (``host7: aes-256-gcm 8.1 Gb/s free < 12 Gb/s asked``).

Hosts are inventory documents (``virt-synth inventory --json``), one per host, in a directory.
Capacity already committed by defined VMs is subtracted. Among the hosts that fit, those meeting
more preferred requirements come first, then those left with the most headroom. Exit status: 0
when every VDU placed has a host, 3 when one has none."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from libvirt_synth import errors
from libvirt_synth.cli.output import emit_json
from libvirt_synth.cmdline import Formatter

NO_HOST = 3

EPILOG = """examples:
  virt-synth place examples/vnfd/ipsec-gateway.yaml --inventory /srv/fleet
  virt-synth place examples/vnfd/packet-core.yaml --inventory /srv/fleet --vdu upf --top 3 --json
  virt-synth place gw.yaml --inventory host7.json --inventory host8.json
  virt-synth place gw.yaml --openstack      # flavor extra specs for Nova (no inventory needed)

then define the VDU on the chosen host:
  virt-synth define --vnfd examples/vnfd/ipsec-gateway.yaml --template vnf-kernel ... -c qemu+ssh://HOST/system
"""


def register(sub: Any) -> None:
    p = sub.add_parser("place", help="rank the hosts that can take a VNFD's VDUs, and say why others cannot",
                       description=__doc__, epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("vnfd", metavar="VNFD", help="VNFD file (YAML or JSON; '-': standard input)")
    p.add_argument("--inventory", "-I", action="append", default=[], metavar="DIR",
                   help="directory of host inventories (*.json), or one inventory file (repeatable)")
    p.add_argument("--vdu", action="append", default=[], metavar="NAME", help="place only this VDU (repeatable; "
                   "default: every VDU, each on its own)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="hosts listed per VDU, ranked and rejected "
                   "(0: all)")
    p.add_argument("--json", action="store_true", help="print the decisions as JSON")
    p.add_argument("--no-index", action="store_true", help="parse every inventory, ignoring the index of "
                   "unchanged ones kept in the cache directory")
    p.add_argument("--openstack", action="store_true",
                   help="print the OpenStack flavor extra specs that ask for each VDU's mandatory requirements")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from libvirt_synth import vnfd
    from libvirt_synth.placement import rank as placement

    doc = vnfd.load(args.vnfd)
    vdus = [doc.vdu(n) for n in args.vdu] if args.vdu else list(doc.vdus.values())
    if args.top < 0:
        raise errors.ValueError(f"--top must be 0 (all) or more, got {args.top}")
    top = args.top or None
    if args.openstack:
        from libvirt_synth.placement import openstack

        specs = [openstack.flavor_extra_specs(v) for v in vdus]
        if args.json:
            emit_json({"vnfd": doc.descriptor_id, "flavors": specs})
        else:
            for s in specs:
                print(f"VDU {s['vdu']}:")
                print("  openstack flavor set FLAVOR " + " ".join(f"--property {k}={v}"
                                                                for k, v in s["extra_specs"].items()))
                for n in s["not_expressed"]:
                    print(f"  not expressed: {n}")
        return 0
    if not args.inventory:
        raise errors.ValueError("give --inventory DIR (a directory of host inventories from "
                                "`virt-synth inventory --json`)")
    fleet = placement.load(args.inventory, index=None if args.no_index else placement.default_index(args.inventory))
    if not fleet.hosts:
        raise errors.NotFoundError(f"no readable host inventory in {', '.join(args.inventory)}"
                                   + (f" ({len(fleet.unreadable)} unreadable: {fleet.problems()[0]})"
                                      if fleet.unreadable else ""))
    results = [placement.rank(fleet.hosts, v) for v in vdus]
    if args.json:
        emit_json({"vnfd": doc.descriptor_id, "source": doc.source, "hosts": len(fleet.hosts),
                   "unreadable": [{"path": p, "error": e} for p, e in fleet.unreadable],
                   "vdus": [r.as_dict(top) for r in results]})
    else:
        print(f"VNFD {doc.descriptor_id} ({doc.source}): {len(fleet.hosts)} hosts"
              + (f", {len(fleet.unreadable)} inventory file(s) unreadable" if fleet.unreadable else ""))
        for p in fleet.problems()[:5]:
            print(f"  unreadable: {p}")
        for r in results:
            print("\n".join(text(r, top)))
    return 0 if all(r.ranked for r in results) else NO_HOST


def text(r: Any, top: int | None) -> list[str]:
    from libvirt_synth.placement.rank import ask_text

    lines = [f"\nVDU {r.vdu} asks: " + "; ".join(ask_text(a) for a in r.asks)]
    if r.ranked:
        lines.append(f"  {len(r.ranked)} host(s) fit" + (f", best {min(top, len(r.ranked))}:" if top else ":"))
        for i, v in enumerate(r.ranked[:top], 1):
            head = f"headroom {v.headroom:.0%}" if v.headroom is not None else "headroom not measured"
            pref = f", preferred met: {', '.join(v.preferred_met)}" if v.preferred_met else ""
            miss = f", preferred missed: {'; '.join(v.preferred_missed)}" if v.preferred_missed else ""
            lines.append(f"  {i:3}. {v.host}  {head}{pref}{miss}")
        notes = r.notes()
        lines += [f"  note: {n}" for n in notes]
    else:
        lines.append("  no host meets every mandatory requirement")
    if r.rejected:
        shown = r.rejected[:top]
        lines.append(f"  {len(r.rejected)} host(s) rejected" + (f" (first {len(shown)}):" if len(shown) <
                                                                   len(r.rejected) else ":"))
        lines += [f"    {v.explain()}" for v in shown]
    if not r.ranked:
        print(f"virt-synth place: VDU {r.vdu}: no host meets every mandatory requirement", file=sys.stderr)
    return lines
