# SPDX-License-Identifier: Apache-2.0
"""The two-host test bed the migration tests share: the guest image, published where QEMU can
read it, and two libvirtd "hosts" (libvirt_synth/testbed/hosts.py) with the daemon configuration
each test gives."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from libvirt_synth.testbed import hosts as testhosts
from libvirt_synth.testbed import image as guestimage
from libvirt_synth.testbed.hosts import Host, two_hosts

import libvirtctl

ROOT = pathlib.Path(__file__).resolve().parent.parent


def why_not() -> str | None:
    """Why the two-host tests cannot run here, or None."""
    try:
        testhosts.check_requirements()
    except OSError as e:
        return str(e)
    return libvirtctl.available()


@dataclass
class Bed:
    a: Host
    b: Host
    base: pathlib.Path
    image: guestimage.GuestImage


@contextlib.contextmanager
def bed(prefix: str, extra_a: str, extra_b: str) -> Iterator[Bed]:
    subprocess.run(["make", "-s", "-C", str(ROOT), "guest-inputs"], check=True)
    built = guestimage.build()
    base = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    base.chmod(0o755)  # QEMU (libvirt-qemu) reads the kernel and initrd and writes the consoles here
    try:
        image = guestimage.publish(built, base / "image")
        with two_hosts(base / "hosts", extra_a, extra_b) as (a, b):
            yield Bed(a, b, base, image)
    finally:
        shutil.rmtree(base, ignore_errors=True)
