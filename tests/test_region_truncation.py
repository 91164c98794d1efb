# SPDX-License-Identifier: Apache-2.0
"""No thread touches a region without the fault guard: each control-plane step (destroy, wire,
unlink, poll, attach, reading the header) with its region truncated to 0 under it, or toggled
between 0 and its size by a hostile process, costs that device and never the process. Each step
runs in a process of its own (tests/region_steps.py), so that a SIGBUS shows as its exit status."""

from __future__ import annotations

import contextlib
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from libvirt_synth.daemon import client

from daemonctl import Daemon, scratch

STEPS = pathlib.Path(__file__).with_name("region_steps.py")


@pytest.mark.parametrize("step", ["destroy-abandoned", "destroy-unnoticed", "destroy-crypto-unnoticed",
                                  "wire-to-truncated-peer", "unlink-truncated", "teardown-wire-truncated-peer",
                                  "poll-truncated", "attach-while-toggled", "read-header-while-toggled"])
def test_a_truncated_region_costs_its_device_not_the_process(step: str, region_dir: pathlib.Path) -> None:
    r = subprocess.run([sys.executable, str(STEPS), str(region_dir), step], capture_output=True, text=True,
                       timeout=60)
    died = f" (killed by {signal.Signals(-r.returncode).name})" if r.returncode < 0 else ""
    assert r.returncode == 0 and r.stdout.rstrip().endswith("survived"), \
        f"{step}: exit {r.returncode}{died}\n{r.stdout}{r.stderr}"


def test_a_daemon_restarting_next_to_a_toggling_qemu_stays_up() -> None:
    """The daemon re-attaches every region at start: a region whose size a hostile QEMU keeps
    flipping must cost that device, not crash-loop the daemon."""
    with scratch("synthd-toggle-") as base:
        d = Daemon(base).start()
        uuid = "7f6e5d4c-3b2a-4190-8e7d-6c5b4a392817"
        d.call("domain.create", uuid=uuid, name="victim", devices=[{"name": "v", "class": "packet",
                                                                   "size": 1 << 20}])
        d.call("domain.create", uuid="0f6e5d4c-3b2a-4190-8e7d-6c5b4a392817", name="other",
               devices=[{"name": "o", "class": "crypto", "size": 1 << 20}])
        victim = d.regions / "v"
        for _ in range(5):
            d.stop()
            hostile = subprocess.Popen([sys.executable, "-c", (
                "import os, sys, time\nend = time.monotonic() + 1.5\n"
                "while time.monotonic() < end:\n    os.truncate(sys.argv[1], 0)\n"
                "    os.truncate(sys.argv[1], 1 << 20)\n"), str(victim)])
            try:
                d.start()
                time.sleep(0.3)
                assert d.proc is not None and d.proc.poll() is None, d.log.read_text()[-2000:]
                assert [x["name"] for x in d.call("devices.list") if x["served"]][-1] == "o"
            finally:
                hostile.wait(10)
        with contextlib.suppress(client.RpcError):
            d.call("domain.destroy", uuid=uuid)
        d.stop()
