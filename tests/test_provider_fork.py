# SPDX-License-Identifier: Apache-2.0
"""A process that forks with the provider in use: the child never drives its parent's device (both
would produce into the same rings), nor takes it over; it works in software, and the parent goes on
on the device."""

from __future__ import annotations

import json
import pathlib
import subprocess

from libvirt_synth.host.device import HostDevice

from tlsbed import ROOT, env_for, make, openssl_conf


def test_a_forked_child_leaves_its_parents_device_alone(served: HostDevice, tmp_path: pathlib.Path) -> None:
    make("provider")
    r = subprocess.run(["/usr/bin/python3", str(ROOT / "tests/evp_fork.py")],
                       env=env_for(openssl_conf(tmp_path), served.path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in r.stdout.splitlines()}
    assert seen["parent-before"] == {"synth-ops": 10, "synth-fallback-no-device": 0}
    assert seen["parent-after"] == {"synth-ops": 20, "synth-fallback-no-device": 0}
    assert seen["child"] == {"synth-ops": 10, "synth-fallback-no-device": 10}  # 10 inherited, then software
    assert "held by another process" in r.stderr
    assert served.stats().bytes_in == 20 * 64  # the parent's 20 operations, none of the child's
    # Each operation had a context of its own, with the same key: one session, from the provider's
    # session cache, not one created and destroyed per context.
    assert served.stats().ops == 1 + 20
