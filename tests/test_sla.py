# SPDX-License-Identifier: Apache-2.0
"""SLA telemetry (daemon/sla.py): a device whose quota holds it below the ops/s its domain asks
for, while a guest keeps asking for more, is in violation, which starts and ends in the daemon's
log, in `sla` and in `virt-synth sla`'s exit status; an idle device asking the same is not."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from waiting import until

from libvirt_synth.guest import Device

from daemonctl import Daemon, running

UUID = "8a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
LOADED, IDLE = "sla-busy-c0", "sla-idle-c0"
ASK = {"ops_per_s": 1000}


PORT = {"metrics": 0}


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    PORT["metrics"] = free_port()
    with running("synth-sla-", config=f"[sla]\nwindow_s = 2\n[prometheus]\nport = {PORT['metrics']}\n") as d:
        dev = {"class": "crypto", "size": 1 << 20, "capabilities": ["aes-256-gcm"], "kpis": ASK}
        d.call("domain.create", uuid=UUID, name="vnf", devices=[dev | {"name": LOADED, "quotas": {"ops_per_s": 100}},
                                                                dev | {"name": IDLE}])
        yield d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(d: Daemon) -> dict[tuple[str, str], float]:
    """synth_device_* SLA samples by (family, device), parsed by prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{PORT['metrics']}/metrics", timeout=10).read().decode()
    return {(s.name, s.labels["device"]): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name.startswith(("synth_device_kpi", "synth_device_sla"))}


def load(d: Daemon, device: str, stop: threading.Event) -> threading.Thread:
    """A guest asking the device for NOPs as fast as it can, until stop."""
    def run() -> None:
        with Device.open(str(d.regions / device)) as g:
            q = g.queue(0)
            while not stop.is_set():
                q.nop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def rows(d: Daemon) -> dict[str, dict[str, object]]:
    return {r["device"]: r for r in d.call("sla")["kpis"]}


def test_a_throttled_device_below_its_kpi_is_in_violation_and_an_idle_one_is_not(daemon: Daemon) -> None:
    d = daemon
    stop = threading.Event()
    t = load(d, LOADED, stop)
    try:
        until(lambda: rows(d).get(LOADED, {}).get("violation") and IDLE in rows(d), "the loaded device's violation",
              15)
        r = rows(d)
        assert r[LOADED]["throttled"] and r[LOADED]["demand_unmet"]
        assert 30 < float(r[LOADED]["achieved"]) < 300, r[LOADED]  # the quota's 100 ops/s, not the 1000 asked
        assert r[IDLE]["achieved"] == 0 and not r[IDLE]["demand_unmet"] and not r[IDLE]["violation"]
        cli = d.cli("sla", "--json", check=False)
        assert cli.returncode == 2 and json.loads(cli.stdout)["violations"] == 1
        assert "VIOLATION" in d.cli("sla", "vnf", check=False).stdout
        until(lambda: "SLA violation starts: ops_per_s" in d.log.read_text(), "the start in the log", 5)
        m = scrape(d)
        assert m[("synth_device_kpi_asked", LOADED)] == 1000 and m[("synth_device_sla_violation", LOADED)] == 1
        assert m[("synth_device_kpi_achieved", LOADED)] < 300 and m[("synth_device_sla_violation", IDLE)] == 0
    finally:
        stop.set()
        t.join(10)
    until(lambda: not rows(d)[LOADED]["violation"], "the violation to end once the load stops", 15)
    until(lambda: "SLA violation ends: ops_per_s" in d.log.read_text(), "the end in the log", 5)
    assert d.cli("sla", check=False).returncode == 0
    assert scrape(d)[("synth_device_sla_violation", LOADED)] == 0


def test_a_device_that_keeps_up_is_not_in_violation(daemon: Daemon) -> None:
    """The idle device, now loaded but unthrottled, serves what it is asked (a NOP loop far above
    1000 ops/s), so it is not in violation either."""
    d = daemon
    stop = threading.Event()
    t = load(d, IDLE, stop)
    try:
        time.sleep(3.5)
        r = rows(d)[IDLE]
        assert float(r["achieved"]) > 1000 and not r["throttled"] and not r["violation"], r
    finally:
        stop.set()
        t.join(10)
