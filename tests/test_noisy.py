# SPDX-License-Identifier: Apache-2.0
"""Noisy neighbour, functionally: a short bench/noisy run (a real virt-synthd, one worker, the
victim probing while the neighbour floods the same worker) completes with every result checked,
the neighbour floods, and a quota on it applies: it is throttled, and it never gets more done than
its ops_per_s lets it (a bound the quota guarantees). How far the flood pushes the victim's p99,
and how well a quota keeps it off, are the benchmark's figures (bench/noisy, target p99 <= 2x)."""

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
OPS_PER_S = 20_000  # well below what a flooder gets without a quota, so that the quota bites
QUOTA = f"inflight=2,ops_per_s={OPS_PER_S}"
# Ops the quota may let through beyond its rate over a run: one bucket of credit (1 ms of the rate,
# at least a burst of 32), the flooder's 64 descriptors in flight when its clock starts, and
# a burst's overdraft.
QUOTA_SLACK = max(OPS_PER_S // 1000, 32) + 64 + 32


def run_bench(*args: str) -> dict[str, Any]:
    r = subprocess.run([sys.executable, str(BENCH), "--json", *args], capture_output=True, text=True, timeout=240)
    # Exit 0: every probe and flooder result matched OpenSSL and no device counted a failed op.
    assert r.returncode == 0, f"bench/noisy failed (status {r.returncode}):\n{r.stderr}"
    return dict(json.loads(r.stdout))


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs: one for the worker, one for the guests")
def test_a_quota_holds_a_flooding_neighbour_to_its_rate() -> None:
    # The hostile loads are the benchmark's figures; test_availability holds them functionally.
    doc = run_bench("--rounds", "3", "--seconds", "0.5", "--sizes", "64", "--quota", QUOTA, "--hostile", "none")
    rows = {row["key"]: row for row in doc["scenarios"]}
    alone, flood, held = rows["alone"], rows["flood-64"], rows[f"flood-64-{QUOTA}"]

    for row in (alone, flood, held):
        assert row["samples"] > 0, f"the probe ran in {row['key']}"
        assert all(r["probe"]["checked"] and r["victim_ops"] > 0 for r in row["rounds"]), row["key"]
    assert flood["noisy_ops"] > 0 and flood["throttled"] == 0, "no quota: the neighbour flooded, never held back"
    assert held["noisy_ops"] > 0, "with the quota the neighbour still got work done"
    assert held["throttled"] > 0, "the ops_per_s quota held the neighbour back"
    for r in held["rounds"]:
        fl = r["flood"]
        allowed = OPS_PER_S * fl["seconds"] * 1.01 + QUOTA_SLACK
        assert fl["ops"] <= allowed, (
            f"the neighbour completed {fl['ops']} ops in {fl['seconds']:.3f} s under {QUOTA}: more than the "
            f"{allowed:.0f} its quota allows")
