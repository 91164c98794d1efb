# SPDX-License-Identifier: Apache-2.0
"""A byte quota charges the work an operation made, whatever its status: decryptions whose tag
fails and corrupt frames cost the plugin as much as good ones, so they cannot be free. (A lower
bound on time, the rate a quota allows: a faster run means the quota did not charge them.)"""

from __future__ import annotations

import os
import time

import pytest
from compress_ref import served_device

from libvirt_synth import errors
from libvirt_synth.abi import Alg, CAlg, DevClass
from libvirt_synth.guest import Device
from libvirt_synth.guest.compress import Compressor, CorruptDataError
from libvirt_synth.host.device import HostDevice, Worker

RATE = 4 << 20   # bytes per second
OP = 32 << 10    # bytes per op
OPS = 96         # 3 MiB: at least 0.75 s at RATE


def test_decryptions_that_fail_are_charged(region_dir, worker: Worker) -> None:  # type: ignore[no-untyped-def]
    dev = HostDevice.create(str(region_dir / "c"), DevClass.CRYPTO, size=4 << 20, quota=(("bytes_per_s", RATE),))
    worker.add(dev)
    try:
        with Device.open(dev.path) as g, g.queue(0).session(Alg.AES256_GCM, bytes(32)) as s:
            data = os.urandom(OP)
            t0 = time.monotonic()
            for _ in range(OPS):
                with pytest.raises(errors.AuthenticationError):
                    s.decrypt(data, bytes(16), bytes(12))
            elapsed = time.monotonic() - t0
        assert elapsed > 0.6, f"{OPS} failing decryptions of {OP} bytes took {elapsed:.2f} s: not charged"
        assert dev.stats().throttled > 0
    finally:
        dev.destroy()


def test_corrupt_frames_are_charged() -> None:
    with served_device(options=(("max_chunk", 64 << 10),)) as dev:
        dev.set_quota({"bytes_per_s": RATE})
        with Device.open(dev.path) as g:
            comp = Compressor(g.queue(0))
            garbage = b"\x78\x9c" + os.urandom(OP)  # a zlib header, then noise
            t0 = time.monotonic()
            for _ in range(OPS):
                with pytest.raises(CorruptDataError):
                    comp.decompress(garbage, CAlg.ZLIB)
            elapsed = time.monotonic() - t0
        assert elapsed > 0.6, f"{OPS} corrupt frames of {OP} bytes took {elapsed:.2f} s: not charged"
