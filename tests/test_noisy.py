# SPDX-License-Identifier: Apache-2.0
"""Noisy neighbour, loosely: a device that floods the worker it shares with another device, held by
a quota, must not push the other device's p99 round trip far past what it is alone. Runs a short
bench/noisy (a real virt-synthd, one worker, the victim probing while the neighbour floods) and
checks the one ratio the issue asks for, with 4x instead of the benchmark's 2x target so that a
noisy CI machine does not fail it; the real figures are the benchmark's."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "noisy"
QUOTA = "inflight=2,ops_per_s=200000"
LOOSE_P99_RATIO = 4.0


def run_bench(*args: str) -> dict[str, Any]:
    r = subprocess.run([sys.executable, str(BENCH), "--json", *args], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"bench/noisy failed (status {r.returncode}):\n{r.stderr}"
    return dict(json.loads(r.stdout))


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs: one for the worker, one for the guests")
def test_a_quota_keeps_a_flooding_neighbour_off_the_victims_tail() -> None:
    doc = run_bench("--rounds", "3", "--seconds", "0.5", "--sizes", "64", "--quota", QUOTA)
    rows = {row["key"]: row for row in doc["scenarios"]}
    alone, flood, held = rows["alone"], rows["flood-64"], rows[f"flood-64-{QUOTA}"]

    assert alone["samples"] >= 1000 and held["samples"] >= 1000, "the probe ran"
    assert flood["noisy_ops"] > 100_000, "without a quota the neighbour really flooded"
    assert flood["throttled"] == 0, "no quota, no throttling"
    assert held["noisy_ops"] > 10_000, "with the quota the neighbour still got work done"
    assert held["throttled"] > 0, "the ops_per_s quota held the neighbour back"
    assert held["p99_ratio"] <= LOOSE_P99_RATIO, (
        f"with {QUOTA} on the neighbour, the victim's p99 is {held['p99_ratio']:.1f}x its p99 alone "
        f"({held['p99_ns']} ns vs {alone['p99_ns']} ns; warnings: {doc['warnings']})")
