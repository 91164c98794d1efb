# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: regions live in a per-test directory under /dev/shm (tmpfs, like production),
served by real C worker threads."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import settings

from libvirt_synth.abi import DevClass
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, Worker

# A run must not depend on luck: every Hypothesis test draws the same examples each time (a seed
# of its own, derived from its name), and nothing is replayed from a machine's example database.
settings.register_profile("libvirt-synth", derandomize=True, database=None)
settings.load_profile("libvirt-synth")

SHM = pathlib.Path("/dev/shm")
DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture
def region_dir() -> Iterator[pathlib.Path]:
    base = SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else None
    d = pathlib.Path(tempfile.mkdtemp(prefix="synth-test-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def worker() -> Iterator[Worker]:
    w = Worker(spin_us=200, max_sleep_us=200)
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def served(region_dir: pathlib.Path, worker: Worker) -> Iterator[HostDevice]:
    """A crypto device served by a worker thread."""
    dev = HostDevice.create(str(region_dir / "crypto0"), DevClass.CRYPTO, size=4 << 20, queues=2)
    worker.add(dev)
    try:
        yield dev
    finally:
        dev.destroy()


@pytest.fixture
def guest(served: HostDevice) -> Iterator[Device]:
    """The guest side of `served`, opened and negotiated."""
    with Device.open(served.path) as dev:
        yield dev
