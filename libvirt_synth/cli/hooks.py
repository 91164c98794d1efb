# SPDX-License-Identifier: Apache-2.0
"""``virt-synth hooks``: install, remove or show the libvirt qemu hook."""

from __future__ import annotations

import argparse
from typing import Any

from libvirt_synth import hookinstall
from libvirt_synth.cli.output import Formatter, emit_json

EPILOG = """examples:
  virt-synth hooks install                  # /etc/libvirt/hooks/qemu.d/libvirt-synth
  virt-synth hooks install --root /tmp/img  # into an image or a test root
  virt-synth hooks remove
libvirt reads hooks when libvirtd starts: restart libvirtd after installing or removing.
"""


def register(sub: Any) -> None:
    p = sub.add_parser("hooks", help="install or remove the libvirt qemu hook", description=__doc__,
                       epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("action", choices=["install", "remove", "show"])
    p.add_argument("--root", default="/", help="install under this root directory")
    p.add_argument("--socket", default="/run/libvirt-synth/synthd.sock", help="the virt-synthd socket the hook calls")
    p.add_argument("--python", default=hookinstall.PYTHON, help="interpreter the hook runs with (fastest: Debian's)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "install":
        path, changed = hookinstall.install(args.root, args.socket, args.python)
        verb = "installed" if changed else "already up to date"
    elif args.action == "remove":
        path, changed = hookinstall.remove(args.root)
        verb = "removed" if changed else "not installed"
    else:
        print(hookinstall.render(args.socket, args.python), end="")
        return 0
    if args.json:
        emit_json({"path": path, "changed": changed})
    else:
        print(f"{path}: {verb}" + ("; restart libvirtd for libvirt to use it" if changed else ""))
    return 0
