# SPDX-License-Identifier: Apache-2.0
"""Prometheus text endpoint for virt-synthd (off by default; [prometheus] port in the config).
Values are read from the C counters at scrape time: nothing on the data path changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from libvirt_synth import log


class SynthCollector:
    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        ops = CounterMetricFamily("synth_device_ops", "Operations completed", labels=["device", "status"])
        nbytes = CounterMetricFamily("synth_device_bytes", "Payload bytes of successful operations",
                                     labels=["device", "direction"])
        resets = CounterMetricFamily("synth_device_resets", "Driver resets acted on", labels=["device"])
        ring_errors = CounterMetricFamily("synth_device_ring_errors", "Times marked NEEDS_RESET", labels=["device"])
        sessions = GaugeMetricFamily("synth_device_sessions", "Live crypto sessions", labels=["device"])
        busy = CounterMetricFamily("synth_device_busy_seconds", "Worker time spent processing the device's bursts",
                                   labels=["device"])
        attached = GaugeMetricFamily("synth_device_driver_attached", "1 if a guest driver is attached",
                                     labels=["device"])
        for name, dev in list(self.service.devices.items()):
            st = dev.stats()
            for status, n in st.by_status.items():
                ops.add_metric([name, status], n)
            nbytes.add_metric([name, "in"], st.bytes_in)
            nbytes.add_metric([name, "out"], st.bytes_out)
            resets.add_metric([name], st.resets)
            ring_errors.add_metric([name], st.ring_errors)
            sessions.add_metric([name], st.sessions)
            busy.add_metric([name], st.busy_ns / 1e9)
            attached.add_metric([name], 1 if st.active else 0)
        yield from (ops, nbytes, resets, ring_errors, sessions, busy, attached)


def start(service: Any, port: int, addr: str = "127.0.0.1") -> None:
    """Serve /metrics on addr:port from a daemon thread of prometheus-client."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(SynthCollector(service))
    start_http_server(port, addr=addr, registry=registry)
    log.info("Prometheus metrics on http://%s:%d/metrics", addr, port)
