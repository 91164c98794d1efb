# SPDX-License-Identifier: Apache-2.0
"""``virt-synth hooks``: install, remove or show the libvirt qemu hook.

show prints the hook installed under --root, or, if none is installed there, says so (on stderr),
prints what install would write, and exits 1."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from libvirt_synth import defaults, errors
from libvirt_synth.cli.output import emit_json
from libvirt_synth.cmdline import Formatter
from libvirt_synth.hook import install as hookinstall

EPILOG = """examples:
  virt-synth hooks install                  # /etc/libvirt/hooks/qemu.d/libvirt-synth
  virt-synth hooks install --root /tmp/img  # into an image or a test root
  virt-synth hooks remove
  virt-synth hooks show                     # the installed hook (its path on stderr)
  virt-synth hooks show --root /tmp/img --json
libvirt reads hooks when libvirtd starts: restart libvirtd after installing or removing.
"""


def register(sub: Any) -> None:
    p = sub.add_parser("hooks", help="install or remove the libvirt qemu hook", description=__doc__,
                       epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("action", choices=["install", "remove", "show"])
    p.add_argument("--root", default="/", help="install, remove or show under this root directory")
    p.add_argument("--socket", default=defaults.SOCKET, help="the virt-synthd socket the hook calls")
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
        return show(args)
    if args.json:
        emit_json({"path": path, "changed": changed})
    else:
        print(f"{path}: {verb}" + ("; restart libvirtd for libvirt to use it" if changed else ""))
    return 0


def show(args: argparse.Namespace) -> int:
    """The hook installed under --root; else, labelled as such, what install would write there."""
    path = hookinstall.hook_path(args.root)
    text = hookinstall.installed(args.root)
    if text is None:
        would = hookinstall.render(args.socket, args.python)
        if args.json:
            emit_json({"path": str(path), "installed": False, "text": None, "would_install": would})
        else:
            print(f"virt-synth hooks show: no hook is installed at {path}; what `virt-synth hooks install` "
                  "would write there:", file=sys.stderr)
            print(would, end="")
        return 1
    try:
        current: bool | None = text == hookinstall.render(args.socket, args.python)
    except errors.SynthError:  # no template to compare with: show the installed hook all the same
        current = None
    if args.json:
        emit_json({"path": str(path), "installed": True, "text": text, "current": current})
        return 0
    print(f"virt-synth hooks show: {path} (installed)" + (
        "; it differs from what `virt-synth hooks install` would write with these options (another "
        "--socket or --python, or another libvirt-synth version)" if current is False else ""), file=sys.stderr)
    print(text, end="")
    return 0
