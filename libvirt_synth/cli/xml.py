# SPDX-License-Identifier: Apache-2.0
"""``virt-synth xml``: a domain XML (a file or a template) with synthetic devices injected: one
``<shmem role='master'>`` per device and the project's ``<metadata>`` element. Injecting again
gives the same XML; a changed device list updates it. The result is checked against libvirt's
schema before it is written."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from libvirt_synth import errors
from libvirt_synth.cli.output import emit_json, human_size, parse_size
from libvirt_synth.cmdline import Formatter

EPILOG = """devices (repeat --device, or give a YAML --spec; see docs/libvirt.md):
  CLASS[:key=value,...]   CLASS is crypto, compress or packet; keys: caps=A+B, kpi.NAME=NUMBER,
                          opt.NAME=VALUE, size=4M, queues=N, channels=N (packet), ring-entries=N,
                          plugin=NAME, name=REGION

examples:
  virt-synth xml --template vnf-kernel --kernel /boot/vmlinuz --initrd /boot/initrd.img \\
      --device crypto:caps=aes-256-gcm,kpi.throughput_gbps=12 -o vnf.xml
  virt-synth xml vnf.xml --device crypto:caps=aes-256-gcm --device packet:channels=2 --in-place
  virsh dumpxml --inactive gw1 | virt-synth xml - --spec devices.yaml > gw1.xml
  virt-synth xml gw1.xml --vnfd examples/vnfd/packet-core.yaml --vdu upf --in-place
  virt-synth xml --template vnf-disk --disk /var/lib/libvirt/images/vnf.qcow2 --domain-type kvm --json
"""

class HelpFormatter(Formatter):
    """Formatter, without "(default: None)" on options whose absence means "not given"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, [], False):
            return action.help
        return super()._get_help_string(action)


TEMPLATE_OPTIONS = ("name", "uuid", "memory", "vcpus", "domain_type", "kernel", "initrd", "cmdline", "disk",
                    "disk_format", "console_log")


def memory_mib(text: str) -> str:
    """'512' (MiB), '512M', '1G' -> MiB as text."""
    if text.strip().isdigit():
        return text.strip()
    n = parse_size(text)
    if n % (1 << 20) or n <= 0:
        raise argparse.ArgumentTypeError(f"memory {text!r} is not a whole number of MiB")
    return str(n >> 20)


def add_source_args(p: argparse.ArgumentParser) -> None:
    """Where the domain comes from and which devices it gets (shared with `virt-synth define`)."""
    p.add_argument("domain_xml", nargs="?", metavar="DOMAIN_XML", help="domain XML file ('-': standard input)")
    p.add_argument("--template", "-t", metavar="NAME", help="start from a template in xml-templates/ "
                   "(vnf-kernel, vnf-disk) or a template file")
    p.add_argument("--device", "-d", action="append", default=[], metavar="CLASS[:k=v,...]",
                   help="a synthetic device (repeatable; see below)")
    p.add_argument("--spec", "-s", action="append", default=[], metavar="FILE",
                   help="a YAML file listing devices (repeatable; before the --device ones)")
    p.add_argument("--vnfd", metavar="FILE", help="a VNFD (docs/vnfd.md): the devices of one of its VDUs "
                   "(before the --spec and --device ones); with --template also its vcpus and memory")
    p.add_argument("--vdu", metavar="NAME", help="with --vnfd: the VDU (default: the VNFD's only one)")
    p.add_argument("--no-devices", action="store_true",
                   help="remove the synthetic devices the domain has (without --device or --spec, the "
                   "devices it has are kept)")
    p.add_argument("--isolation", choices=("auto", "dac", "none"), default=None,
                   help="the domain's QEMU runs as a uid of its own, and its regions belong to it (dac); "
                   "auto: dac unless SELinux or AppArmor confines QEMU (default: [isolation] mode of the "
                   "daemon's configuration, else auto)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="virt-synthd's configuration, for its [isolation] uids and group (default: "
                   "/etc/libvirt-synth/virt-synthd.toml if it exists)")
    g = p.add_argument_group("template values (with --template)")
    g.add_argument("--name", help="domain name (default: vnf)")
    g.add_argument("--uuid", help="domain uuid (default: a new one)")
    g.add_argument("--memory", type=memory_mib, help="memory: MiB, or e.g. 512M, 2G (default: the VDU's, else 512)")
    g.add_argument("--vcpus", help="virtual CPUs (default: the VDU's, else 1)")
    g.add_argument("--domain-type", choices=("qemu", "kvm"), help="qemu (TCG) or kvm (default: qemu)")
    g.add_argument("--kernel", metavar="PATH", help="vnf-kernel: the kernel to boot")
    g.add_argument("--initrd", metavar="PATH", help="vnf-kernel: its initramfs")
    g.add_argument("--cmdline", help="vnf-kernel: kernel command line (default: console=ttyS0)")
    g.add_argument("--disk", metavar="PATH", help="vnf-disk: the disk image to boot")
    g.add_argument("--disk-format", help="vnf-disk: raw or qcow2 (default: read from the image)")
    g.add_argument("--console-log", metavar="PATH",
                   help="file the serial console is logged to (default: /var/log/libvirt/qemu/NAME-console.log)")


def load_vdu(args: argparse.Namespace) -> Any:
    """The VDU named by --vnfd/--vdu (read once per command)."""
    if getattr(args, "_vdu", None) is None:
        from libvirt_synth import vnfd

        args._vdu = vnfd.load(args.vnfd).vdu(args.vdu)
    return args._vdu


def load_source(args: argparse.Namespace) -> tuple[bytes, str]:
    """The input domain XML and a label for error messages."""
    from libvirt_synth.xml import template

    given = {k.upper(): getattr(args, k) for k in TEMPLATE_OPTIONS}
    if args.template and args.vnfd:
        # The VDU sizes the VM it describes, unless --vcpus/--memory say otherwise.
        vdu = load_vdu(args)
        if given["VCPUS"] is None and vdu.vcpus:
            given["VCPUS"] = str(vdu.vcpus)
        if given["MEMORY"] is None and vdu.memory_mib:
            given["MEMORY"] = str(vdu.memory_mib)
    if args.template:
        if args.domain_xml:
            raise errors.ValueError("give a DOMAIN_XML file or --template, not both")
        text, source = template.fill(args.template, given)
        return text.encode(), source
    used = [template.option(k) for k, v in given.items() if v is not None]
    if used:
        raise errors.ValueError(f"{used[0]} is a template value: use it with --template")
    if not args.domain_xml:
        raise errors.ValueError("give a domain XML file ('-' for standard input) or --template NAME "
                                f"(templates: {', '.join(template.available()) or 'none'})")
    if args.domain_xml == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        with open(args.domain_xml, "rb") as f:
            return f.read(), args.domain_xml
    except FileNotFoundError:
        raise errors.NotFoundError(f"{args.domain_xml} does not exist") from None
    except OSError as e:
        raise errors.ValueError(f"cannot read {args.domain_xml}: {e.strerror}") from None


def isolation(args: argparse.Namespace, conn: Any = None, domain_uuid: str | None = None) -> Any:
    """The designer's Isolation for --isolation, the daemon's configuration and the host: with a
    libvirt connection, its secmodels and the uids its other domains have; without, this host's."""
    from libvirt_synth.daemon import config
    from libvirt_synth.xml import connect, designer

    cfg = config.load(args.config, {})
    taken = connect.taken_uids(conn, domain_uuid) if conn is not None else set()
    return designer.isolation_for(args.isolation or cfg.isolation, connect.mac_models(conn), cfg.isolation_uids,
                                  cfg.isolation_group, taken)


def generate(args: argparse.Namespace, data: bytes, source: str, conn: Any = None,
             domain_uuid: str | None = None) -> Any:
    """Inject the devices the arguments ask for; returns the designer's Result."""
    from libvirt_synth.xml import designer, spec

    specs = spec.load(args.spec, args.device)
    if args.vdu and not args.vnfd:
        raise errors.ValueError("--vdu names a VDU of the VNFD given with --vnfd FILE")
    if args.vnfd:
        specs = spec.from_vdu(load_vdu(args)) + specs
    if specs and args.no_devices:
        raise errors.ValueError("--no-devices removes every synthetic device: give it without "
                                "--device/--spec/--vnfd")
    # No device options: keep the devices the domain has (their metadata and shmem, normalised).
    return designer.inject(data, specs if specs or args.no_devices else None, source,
                           isolation=isolation(args, conn, domain_uuid))


def summary(result: Any) -> list[str]:
    lines = [f"domain {result.name} ({result.uuid})" + (" [uuid generated]" if result.uuid_generated else "")
             + (f", QEMU as uid {result.uid}" if result.uid is not None else "")]
    for d in result.devices:
        caps = ", ".join(d.capabilities)
        lines.append(f"  {result.status[d.name]:8} {d.name}  {d.dev_class}  {human_size(d.size)}"
                     + (f"  {caps}" if caps else ""))
    lines += [f"  removed  {n}" for n in result.removed]
    return lines


def write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".virt-synth-", suffix=".xml", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def register(sub: Any) -> None:
    p = sub.add_parser("xml", help="inject synthetic devices into a domain XML (file or template)",
                       description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter)
    add_source_args(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output", "-o", metavar="FILE", help="write the XML here (default: standard output)")
    out.add_argument("--in-place", "-i", action="store_true", help="rewrite DOMAIN_XML")
    p.add_argument("--json", action="store_true",
                   help="print the devices (and the XML, unless written to a file) as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data, source = load_source(args)
    result = generate(args, data, source)
    output = args.output
    if args.in_place:
        if not args.domain_xml or args.domain_xml == "-":
            raise errors.ValueError("--in-place needs a DOMAIN_XML file")
        output = args.domain_xml
    if output:
        write_atomic(output, result.xml)
    if args.json:
        doc = result.as_dict() | {"output": output, "notes": result.notes}
        if not output:
            doc["xml"] = result.xml
        emit_json(doc)
        return 0
    if output:
        print(f"wrote {output}")
        print("\n".join(summary(result)))
    else:
        sys.stdout.write(result.xml)
        if result.uuid_generated:
            print(f"virt-synth xml: note: {result.name} had no uuid; generated {result.uuid}", file=sys.stderr)
    for note in device_notes(result):
        print(f"virt-synth xml: note: {note}", file=sys.stderr)
    return 0


def device_notes(result: Any) -> list[str]:
    """The notes about devices (the generated uuid has its own line)."""
    return result.notes[1:] if result.uuid_generated else list(result.notes)
