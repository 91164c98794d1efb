# SPDX-License-Identifier: Apache-2.0
"""virt-synthd's Prometheus endpoint: each device metric read after the test caused it (payload
bytes, driver resets, ring errors, a driver attached), from the exposition parsed by
prometheus_client's own parser (the format's reference implementation), not by string search."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from libvirt_synth import errors
from libvirt_synth._native import lib
from libvirt_synth.abi import Op
from libvirt_synth.guest import Device

from daemonctl import Daemon, scratch
from rawregion import RawRegion
from test_hostile import IV, KEY, ring_attack

UUID = "6d7e8f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
USED, IDLE = "metrics-crypto0", "metrics-crypto1"

# What the endpoint must expose for each device: family name -> (type, label names besides device).
FAMILIES = {
    "synth_device_ops": ("counter", {"status"}),
    "synth_device_bytes": ("counter", {"direction"}),
    "synth_device_resets": ("counter", set()),
    "synth_device_ring_errors": ("counter", set()),
    "synth_device_sessions": ("gauge", set()),
    "synth_device_busy_seconds": ("counter", set()),
    "synth_device_driver_attached": ("gauge", set()),
}


@pytest.fixture(scope="module")
def metrics() -> Iterator[tuple[Daemon, int]]:
    with scratch("synth-metrics-") as base:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        d = Daemon(base, "--prometheus-port", str(port)).start()
        try:
            d.call("domain.create", uuid=UUID, name="metrics",
                   devices=[{"name": USED, "class": "crypto"}, {"name": IDLE, "class": "crypto"}])
            yield d, port
            d.call("domain.destroy", uuid=UUID)
        finally:
            d.stop()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition, parsed: (sample name, sorted labels) -> value. Also checks every family
    of FAMILIES is there with its type and labels, and nothing unparsable."""
    deadline = time.monotonic() + 10
    while True:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            break
        except OSError:  # the endpoint's thread starts with the daemon: wait for it
            assert time.monotonic() < deadline, "no /metrics endpoint"
            time.sleep(0.05)
    out = {}
    seen = {}
    for fam in text_string_to_metric_families(text):
        seen[fam.name] = fam.type
        for s in fam.samples:
            if fam.name in FAMILIES:
                assert set(s.labels) == {"device"} | FAMILIES[fam.name][1], s
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert {n: seen.get(n) for n in FAMILIES} == {n: t for n, (t, _) in FAMILIES.items()}
    return out


def value(m: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, device: str, **labels: str) -> float:
    return m[(name, tuple(sorted({"device": device, **labels}.items())))]


def wait_metric(port: int, name: str, device: str, want: float, **labels: str) -> None:
    deadline = time.monotonic() + 10
    while (got := value(scrape(port), name, device, **labels)) != want:
        assert time.monotonic() < deadline, f"{name}{{device={device}}} is {got}, expected {want}"
        time.sleep(0.02)


def test_payload_bytes_count_successful_operations_only(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    before = scrape(port)
    b_in = value(before, "synth_device_bytes_total", USED, direction="in")
    b_out = value(before, "synth_device_bytes_total", USED, direction="out")
    with Device.open(str(d.regions / USED)) as g:
        with g.queue(0).session("aes-256-gcm", KEY) as s:
            for n in (100, 200, 300):
                s.encrypt(bytes(n), IV)
            ct, tag = s.encrypt(bytes(50), IV)
            with pytest.raises(errors.AuthenticationError):  # a failed op moves no payload
                s.decrypt(ct, bytes(len(tag)), IV)
        m = scrape(port)
    assert value(m, "synth_device_bytes_total", USED, direction="in") == b_in + 650
    assert value(m, "synth_device_bytes_total", USED, direction="out") == b_out + 650
    assert value(m, "synth_device_bytes_total", IDLE, direction="in") == 0
    assert value(m, "synth_device_ops_total", USED, status="auth_failed") == 1


def test_driver_attached_follows_the_guest_driver(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    with Device.open(str(d.regions / USED)) as g:
        g.queue(0).nop()
        m = scrape(port)
        assert value(m, "synth_device_driver_attached", USED) == 1
        assert value(m, "synth_device_driver_attached", IDLE) == 0, "nobody ever opened it"


def test_resets_and_ring_errors_are_counted(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    with Device.open(str(d.regions / USED)) as g:
        g.queue(0).nop()
        m = scrape(port)
        resets = value(m, "synth_device_resets_total", USED)
        assert value(m, "synth_device_ring_errors_total", USED) == 0
        g.reset()
        g.queue(0).nop()
        wait_metric(port, "synth_device_resets_total", USED, resets + 1)
        # A completion index past anything the host produced: seen once a ring's worth of
        # completions is pending (as in test_hostile), the device is marked NEEDS_RESET once.
        raw = RawRegion(str(d.regions / USED))
        ring_attack(raw, "cq-cons-past-prod")
        q = g.queue(0)
        entries = raw.hdr.ring_entries
        assert q.submit(q.descs([{"opcode": Op.NOP}] * (entries - 8))) == entries - 8
        wait_metric(port, "synth_device_ring_errors_total", USED, 1)
        assert raw.hdr.dev_error == lib.SYNTH_DEVERR_CQ_INDEX
        raw.close()
        g.reset()  # the driver recovers: one more reset, the ring error stays counted
        g.queue(0).nop()
        wait_metric(port, "synth_device_resets_total", USED, resets + 2)
        m = scrape(port)
        assert value(m, "synth_device_ring_errors_total", USED) == 1
        assert value(m, "synth_device_ring_errors_total", IDLE) == 0
        assert value(m, "synth_device_resets_total", IDLE) == 0
