# SPDX-License-Identifier: Apache-2.0
"""``virt-synth guest-image``: build the guest image, a kernel and an initramfs that boot a VM
into ``synth-guest`` (Debian's kernel and busybox-static, fetched with apt-get download, plus this
tree's static guest programs). Cached by content: a second run with the same inputs prints the
same paths and builds nothing."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from libvirt_synth.cli.output import emit_json
from libvirt_synth.cmdline import Formatter
from libvirt_synth.testbed import image as guestimage

EPILOG = "inputs (build the programs first: make guest-inputs, or make guest-image):\n" + "".join(
    f"  {name}: {path}\n" for name, path in guestimage.default_inputs().items()) + """
examples:
  virt-synth guest-image                          # kernel + initramfs paths
  virt-synth guest-image --publish /var/lib/libvirt/images/libvirt-synth-guest --json
  virt-synth xml --template vnf-kernel --kernel K --initrd I --cmdline 'console=ttyS0 synth.cmd=probe' ...
"""


def register(sub: Any) -> None:
    p = sub.add_parser("guest-image", help="build the guest image (kernel + initramfs running synth-guest)",
                       description=__doc__, epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("--cache", type=pathlib.Path, default=None,
                   help=f"cache directory (default: ${guestimage.CACHE_ENV} or ~/.cache/libvirt-synth)")
    p.add_argument("--kernel-package", default=guestimage.KERNEL_META,
                   help="the metapackage whose kernel to use")
    p.add_argument("--synth-guest", type=pathlib.Path, default=guestimage.default_inputs()["synth-guest"],
                   help="the static synth-guest program")
    p.add_argument("--afalg-kat", type=pathlib.Path, default=guestimage.default_inputs()["afalg-kat"],
                   help="the static AF_ALG known-answer test program")
    p.add_argument("--init", type=pathlib.Path, default=guestimage.default_inputs()["init"], help="the /init script")
    p.add_argument("--publish", type=pathlib.Path, default=None, metavar="DIR",
                   help="also copy the image to DIR/<key>/ (a place QEMU can read, unlike a home directory)")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache has the image")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def say(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr)

    inputs = {"synth-guest": args.synth_guest, "afalg-kat": args.afalg_kat, "init": args.init}
    image = guestimage.build(inputs, cache=args.cache, kernel_meta=args.kernel_package, say=say, force=args.force)
    if args.publish:
        image = guestimage.publish(image, args.publish)
    if args.json:
        emit_json(image.as_dict())
    else:
        print(f"kernel  {image.kernel}")
        print(f"initrd  {image.initrd}")
        print(f"version {image.kernel_version}  key {image.key}  modules {', '.join(image.manifest['modules'])}")
    return 0
