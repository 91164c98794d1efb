# SPDX-License-Identifier: Apache-2.0
"""One control-plane step with its region truncated to 0 under it, in a process of its own, so
that a SIGBUS kills this process and not the test run: ``python region_steps.py DIR STEP``. Prints
what the step returned and ``survived``; the caller checks both (tests/test_region_truncation.py)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable

from libvirt_synth import errors
from libvirt_synth._native import lib
from libvirt_synth.abi import DevClass
from libvirt_synth.host import packet as host_packet
from libvirt_synth.host import region
from libvirt_synth.host.device import HostDevice, HostDeviceSpec, Worker

SIZE = 1 << 20


def packet(path: str) -> HostDevice:
    return HostDevice.create(path, DevClass.PACKET, size=SIZE, queues=2)


def wait_abandoned(dev: HostDevice) -> None:
    deadline = time.monotonic() + 10
    while dev.stats().dev_error != lib.SYNTH_DEVERR_REGION:
        assert time.monotonic() < deadline, "the worker never noticed the truncation"
        time.sleep(0.01)


def attempt(what: str, fn: Callable[[], object]) -> None:
    try:
        out = fn()
        print(f"{what}: ok {out!r}"[:200])
    except errors.SynthError as e:
        print(f"{what}: refused: {e}"[:200])


def toggle(path: str, seconds: float) -> threading.Thread:
    """A hostile QEMU: the file's size flips between 0 and the region's, as fast as it can."""
    def run() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            os.truncate(path, 0)
            os.truncate(path, SIZE)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def main(d: str, step: str) -> None:
    a, b = os.path.join(d, "a"), os.path.join(d, "b")
    if step == "destroy-abandoned":  # its worker abandoned it; destroy writes nothing to it
        with Worker() as w:
            dev = packet(a)
            w.add(dev)
            os.truncate(a, 0)
            wait_abandoned(dev)
            attempt("destroy", dev.destroy)
    elif step == "destroy-unnoticed":  # truncated after it left its worker, before any fault
        with Worker() as w:
            dev = packet(a)
            w.add(dev)
            w.remove(dev)
            os.truncate(a, 0)
            attempt("destroy", dev.destroy)
    elif step == "destroy-crypto-unnoticed":
        dev = HostDevice.create(a, DevClass.CRYPTO, size=SIZE)
        os.truncate(a, 0)
        attempt("destroy", dev.destroy)
    elif step == "wire-to-truncated-peer":
        x, y = packet(a), packet(b)
        os.truncate(b, 0)
        attempt("wire", lambda: host_packet.wire(x, 0, y, 0))
        attempt("link", lambda: host_packet.link(x, 0))
        attempt("destroy", x.destroy)
        attempt("destroy", y.destroy)
    elif step == "unlink-truncated":
        x, y = packet(a), packet(b)
        host_packet.wire(x, 0, y, 0)
        os.truncate(a, 0)
        attempt("unlink", lambda: host_packet.unlink(x, 0))
        attempt("destroy", y.destroy)
        attempt("destroy", x.destroy)
    elif step == "teardown-wire-truncated-peer":  # the other end is not served and is cut
        x, y = packet(a), packet(b)
        host_packet.wire(x, 0, y, 0)
        os.truncate(b, 0)
        attempt("destroy", x.destroy)
        attempt("destroy", y.destroy)
    elif step == "poll-truncated":
        dev = HostDevice.create(a, DevClass.CRYPTO, size=SIZE)
        os.truncate(a, 0)
        attempt("poll", dev.poll)
        attempt("destroy", dev.destroy)
    elif step == "attach-while-toggled":  # a daemon restart, or the reconnect hook, racing the QEMU
        spec = HostDeviceSpec(path=a, dev_class=DevClass.PACKET, size=SIZE, queues=2)
        HostDevice.from_spec(spec).destroy(unlink=False)
        t = toggle(a, 2.0)
        n = 0
        while t.is_alive():
            with contextlib.suppress(errors.SynthError):
                HostDevice.from_spec(spec, attach=True).destroy(unlink=False)
            n += 1
        print(f"attach: {n} tries")
    elif step == "read-header-while-toggled":
        HostDevice.create(a, DevClass.CRYPTO, size=SIZE).destroy(unlink=False)
        t = toggle(a, 1.0)
        n = 0
        while t.is_alive():
            with contextlib.suppress(errors.SynthError):
                region.read_header(a)
            n += 1
        print(f"read_header: {n} tries")
    else:
        raise SystemExit(f"unknown step {step}")
    print("survived")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
