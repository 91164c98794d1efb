# SPDX-License-Identifier: Apache-2.0
"""An idle worker costs a wake-up per sleep and one pass over its devices per wake-up, however many
devices it serves: bench/scale found each wake-up polling every device 64 times (the spin phase's
clock-reading stride carried on after the first sleep), so the idle cost grew with devices x 64."""

from __future__ import annotations

import pathlib
import time

from libvirt_synth.abi import DevClass
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, Worker


def test_an_idle_worker_does_one_pass_per_wake_up(region_dir: pathlib.Path) -> None:
    w = Worker(spin_us=50, max_sleep_us=1000, deep_sleep_us=2000)
    devs = [HostDevice.create(str(region_dir / f"c{i}"), DevClass.CRYPTO, size=1 << 20) for i in range(16)]
    guests: list[Device] = []
    try:
        for d in devs:
            w.add(d)
        guests = [Device.open(d.path) for d in devs]  # attached, as a VNF's would be, then idle
        time.sleep(0.3)  # past the spin window and into the back-off
        a = w.stats()
        time.sleep(1.0)
        b = w.stats()
        sleeps, passes = b["sleeps"] - a["sleeps"], b["passes"] - a["passes"]
        assert b["busy_passes"] == a["busy_passes"], "nothing to do: no pass found work"
        assert sleeps >= 100, (sleeps, passes)  # 1-2 ms naps over a second
        # One pass per wake-up (the pass before each sleep), not 64.
        assert passes <= sleeps + 2, (sleeps, passes)
    finally:
        for g in guests:
            g.close()
        for d in devs:
            w.remove(d)
            d.destroy()
        w.stop()
