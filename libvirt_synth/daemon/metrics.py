# SPDX-License-Identifier: Apache-2.0
"""Prometheus endpoint of virt-synthd (off by default; ``[prometheus] port`` and ``address``).

Every value is read from the data path's counters at scrape time: nothing on the data path changes
for it, and nothing here is estimated. Every per-device family has a ``device`` label, which
``synth_device_info`` joins to the device's domain, class, plugin and worker (PromQL ``on(device)
group_left(...)``). The families, their labels and what each counts are in docs/daemon.md
("Metrics")."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from libvirt_synth import __version__, errors, log
from libvirt_synth._native import lib
from libvirt_synth.host.backend import class_stats
from libvirt_synth.host.device import DeviceStats, HostDevice, Worker

#: The service-time histogram's finite bounds, ns: the data path's power-of-two buckets
#: (bucket b counts [2^b, 2^(b+1)) ns; the last one everything from 2^(SYNTH_LAT_BUCKETS-1) up, so
#: it is only in +Inf). Below 256 ns the buckets are merged into the first: cumulative, that is exact.
LATENCY_BOUNDS_NS = tuple(2 ** k for k in range(8, lib.SYNTH_LAT_BUCKETS))

#: Why a packet device dropped a frame: (direction, reason) -> its counter in host.packet.stats.
#: tx_drops and rx_drops are the sums of these, so they are not exposed again.
PACKET_DROPS = {
    ("tx", "bad"): "tx_bad", ("tx", "no_link"): "tx_no_link", ("tx", "peer_full"): "tx_peer_full",
    ("tx", "tap_error"): "tx_tap_error",
    ("rx", "no_buffer"): "rx_no_buffer", ("rx", "too_long"): "rx_too_long", ("rx", "bad_frame"): "rx_bad_frame",
}

#: Worker counters (Worker.stats) exposed as counters: key -> (family, help).
WORKER_COUNTERS = {
    "ops": ("synth_worker_ops", "Descriptors the worker completed"),
    "passes": ("synth_worker_passes", "Poll passes over the worker's devices"),
    "busy_passes": ("synth_worker_busy_passes", "Poll passes that found work"),
    "sleeps": ("synth_worker_sleeps", "Idle sleeps"),
    "region_faults": ("synth_worker_region_faults", "Devices abandoned because their region file was truncated"),
}

#: How long a scrape waits for the service (which holds its lock while it creates or destroys
#: devices) before it answers without the device and worker families.
LOCK_TIMEOUT_S = 5.0


@dataclass
class _Device:
    name: str
    dev: HostDevice
    stats: DeviceStats
    extra: dict[str, Any]   # class-specific counters (backend.class_stats)
    worker: str             # label of the worker serving it, "" if none
    domain: str
    domain_name: str


@dataclass
class _Seen:
    dev: HostDevice   # kept until the next scrape, so that its id is not reused meanwhile
    worker: str
    busy_ns: int      # the device's busy_ns when last scraped
    base_ns: int      # how much of it was spent on an earlier worker


def worker_labels(service: Any) -> list[tuple[str, Worker]]:
    """The shared workers as "0", "1", ...; a worker of a device's own ([workers] dedicated) as
    "own:DEVICE" (device names have no colon)."""
    names = {dev.path: name for name, dev in service.devices.items()}
    out = [(str(i), w) for i, w in enumerate(service.backend.workers)]
    out += [(f"own:{names.get(path, path)}", w) for path, w in service.backend.own_workers.items()]
    return out


class SynthCollector:
    """A prometheus_client collector over a daemon Service."""

    def __init__(self, service: Any) -> None:
        self.service = service
        # A worker's busy time is the sum of its devices' (the data path times each device's
        # bursts, not the worker as such). So that it never goes down when a device leaves the
        # worker (destroyed, or moved to another), what a device had spent stays counted.
        self._busy_lock = threading.Lock()
        self._seen: dict[int, _Seen] = {}
        self._retired: dict[str, int] = {}  # worker -> ns of devices that left it

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        build = GaugeMetricFamily("synth_build_info", "virt-synthd's version; always 1", labels=["version"])
        build.add_metric([__version__], 1)
        up = GaugeMetricFamily("synth_up", "1: virt-synthd answers")
        up.add_metric([], 1)
        yield from (build, up)
        # Devices are destroyed under the service's lock: with it held, none goes while its
        # counters are read.
        if not self.service.lock.acquire(timeout=LOCK_TIMEOUT_S):
            log.warning("metrics: the service was busy for %.0f s; answered without device counters", LOCK_TIMEOUT_S)
            return
        try:
            devices, workers = self._read()
            sla = self.service.sla.report(self.service)
        finally:
            self.service.lock.release()
        yield from self._sla_families(sla)
        yield from self._device_families(devices)
        yield from self._packet_families([d for d in devices if "packet" in d.extra])
        yield from self._worker_families(devices, workers)

    def _read(self) -> tuple[list[_Device], list[tuple[str, dict[str, int]]]]:
        svc = self.service
        labelled = worker_labels(svc)
        label_of = {id(w): label for label, w in labelled}
        domains = {d["uuid"]: d["name"] for d in svc.registry.domains()}
        domain_of = {r.name: r.domain_uuid for r in svc.registry.devices()}
        devices = []
        for name, dev in svc.devices.items():
            uuid = domain_of.get(name, "")
            devices.append(_Device(name, dev, dev.stats(), class_stats(dev),
                                   label_of.get(id(dev.worker), ""), uuid, domains.get(uuid, "")))
        return devices, [(label, w.stats()) for label, w in labelled]

    def _device_families(self, devices: list[_Device]) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

        info = GaugeMetricFamily("synth_device_info", "One per served device: its domain, class, plugin and worker; "
                                 "always 1", labels=["device", "domain", "domain_name", "class", "plugin", "worker"])
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
        throttled = CounterMetricFamily("synth_device_throttled", "Poll passes that skipped the device for its quota",
                                        labels=["device"])
        retried = CounterMetricFamily("synth_device_retried", "In-flight operations completed with RETRY after a "
                                      "re-attach", labels=["device"])
        # The data path counts operations per bucket and sums their times (lat_sum_ns), each op
        # counting the time of the burst it was in.
        service = Metric("synth_device_service_seconds", "Service time of the operations workers processed: each "
                         "counts the time of the burst it was in", "histogram")
        for d in devices:
            st, name = d.stats, d.name
            info.add_metric([name, d.domain, d.domain_name, d.dev.spec.dev_class.name.lower(), d.dev.plugin, d.worker],
                            1)
            for status, n in st.by_status.items():
                ops.add_metric([name, status], n)
            nbytes.add_metric([name, "in"], st.bytes_in)
            nbytes.add_metric([name, "out"], st.bytes_out)
            resets.add_metric([name], st.resets)
            ring_errors.add_metric([name], st.ring_errors)
            sessions.add_metric([name], st.sessions)
            busy.add_metric([name], st.busy_ns / 1e9)
            attached.add_metric([name], 1 if st.active else 0)
            throttled.add_metric([name], st.throttled)
            retried.add_metric([name], st.retried)
            by_bound = sorted((int(upper), n) for upper, n in st.latency_ns.items())
            total = sum(n for _, n in by_bound)
            for bound in LATENCY_BOUNDS_NS:
                below = sum(n for upper, n in by_bound if upper <= bound)
                service.add_sample("synth_device_service_seconds_bucket",
                                   {"device": name, "le": repr(bound / 1e9)}, below)
            service.add_sample("synth_device_service_seconds_bucket", {"device": name, "le": "+Inf"}, total)
            service.add_sample("synth_device_service_seconds_count", {"device": name}, total)
            service.add_sample("synth_device_service_seconds_sum", {"device": name}, st.latency_sum_ns / 1e9)
        yield from (info, ops, nbytes, resets, ring_errors, sessions, busy, attached, throttled, retried, service)

    @staticmethod
    def _sla_families(rows: list[dict[str, Any]]) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["device", "kpi", "unit"]
        asked = GaugeMetricFamily("synth_device_kpi_asked", "What the domain's metadata asks of the device, per KPI",
                                  labels=labels)
        achieved = GaugeMetricFamily("synth_device_kpi_achieved", "What the device achieved over the SLA window "
                                     "([sla] window_s), per KPI", labels=labels)
        violation = GaugeMetricFamily("synth_device_sla_violation", "1 while the device had demand it could not "
                                      "serve and fell short of the KPI (docs/daemon.md, SLA)", labels=labels)
        for r in rows:
            key = [r["device"], r["kpi"], r["unit"]]
            asked.add_metric(key, float(r["asked"]))
            achieved.add_metric(key, float(r["achieved"]))
            violation.add_metric(key, 1.0 if r["violation"] else 0.0)
        yield from (asked, achieved, violation)

    def _packet_families(self, devices: list[_Device]) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        frames = CounterMetricFamily("synth_packet_frames", "Frames sent (delivered to the peer or the TAP) and "
                                     "received (into a posted buffer)", labels=["device", "direction"])
        nbytes = CounterMetricFamily("synth_packet_bytes", "Bytes of the frames counted in synth_packet_frames",
                                     labels=["device", "direction"])
        drops = CounterMetricFamily("synth_packet_drops", "Frames dropped, by direction and reason",
                                    labels=["device", "direction", "reason"])
        bad_desc = CounterMetricFamily("synth_packet_rx_bad_descriptors", "Receive descriptors completed INVALID or "
                                       "NOT_SUPPORTED (not drops)", labels=["device"])
        tap_errors = CounterMetricFamily("synth_packet_tap_read_errors", "Reads from a TAP that failed",
                                         labels=["device"])
        for d in devices:
            p = d.extra["packet"]
            for direction in ("tx", "rx"):
                frames.add_metric([d.name, direction], p[f"{direction}_frames"])
                nbytes.add_metric([d.name, direction], p[f"{direction}_bytes"])
            for (direction, reason), key in PACKET_DROPS.items():
                drops.add_metric([d.name, direction, reason], p[key])
            bad_desc.add_metric([d.name], p["rx_bad_desc"])
            tap_errors.add_metric([d.name], p["tap_read_errors"])
        yield from (frames, nbytes, drops, bad_desc, tap_errors)

    def _worker_families(self, devices: list[_Device], workers: list[tuple[str, dict[str, int]]]) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        busy_ns = self._worker_busy_ns(devices, [label for label, _ in workers])
        busy = CounterMetricFamily("synth_worker_busy_seconds", "Time the worker spent processing its devices' "
                                   "bursts (theirs summed, including devices gone since)", labels=["worker"])
        counters = {k: CounterMetricFamily(name, text, labels=["worker"])
                    for k, (name, text) in WORKER_COUNTERS.items()}
        served = GaugeMetricFamily("synth_worker_devices", "Devices the worker serves", labels=["worker"])
        parked = GaugeMetricFamily("synth_worker_parked", "1 while the worker is parked: idle for a second, "
                                   "its devices watched by the watcher thread, its passes and sleeps standing still",
                                   labels=["worker"])
        for label, st in workers:
            busy.add_metric([label], busy_ns[label] / 1e9)
            for k, fam in counters.items():
                fam.add_metric([label], st[k])
            served.add_metric([label], st["devices"])
            parked.add_metric([label], st["parked"])
        yield from (busy, *counters.values(), served, parked)

    def _worker_busy_ns(self, devices: list[_Device], labels: list[str]) -> dict[str, int]:
        """Per worker: its devices' busy_ns now, plus what devices that left it had when last seen
        (a device that moved counts here only from its move on)."""
        with self._busy_lock:  # two scrapes at once
            seen: dict[int, _Seen] = {}
            for d in devices:
                if not d.worker:
                    continue
                ns, prev = d.stats.busy_ns, self._seen.get(id(d.dev))
                base = 0
                if prev is not None and prev.worker == d.worker:
                    base = prev.base_ns
                elif prev is not None:  # moved: its time so far stays with the worker it left
                    self._retire(prev)
                    base = prev.busy_ns
                seen[id(d.dev)] = _Seen(d.dev, d.worker, ns, base)
            for key, prev in self._seen.items():
                if key not in seen:
                    self._retire(prev)
            self._seen = seen
            # A worker that is gone (a device's own) takes its total with it.
            self._retired = {w: ns for w, ns in self._retired.items() if w in labels}
            out = {label: self._retired.get(label, 0) for label in labels}
            for s in seen.values():
                if s.worker in out:
                    out[s.worker] += s.busy_ns - s.base_ns
            return out

    def _retire(self, s: _Seen) -> None:
        self._retired[s.worker] = self._retired.get(s.worker, 0) + s.busy_ns - s.base_ns


def url(addr: str, port: int) -> str:
    return f"http://[{addr}]:{port}/metrics" if ":" in addr else f"http://{addr}:{port}/metrics"


def start(service: Any, port: int, addr: str = "127.0.0.1") -> None:
    """Serve /metrics on addr:port (IPv4 or IPv6) from a daemon thread of prometheus-client, with
    the process's own metrics (process_cpu_seconds_total, ...) beside the daemon's."""
    from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

    registry = CollectorRegistry()
    registry.register(SynthCollector(service))
    ProcessCollector(registry=registry)
    try:
        start_http_server(port, addr=addr, registry=registry)
    except OSError as e:
        what = f"cannot serve {url(addr, port)}: {e.strerror or e}"
        if e.errno in (errno.EACCES, errno.EPERM):
            raise errors.PermissionError(f"{what}; ports below 1024 need root: set [prometheus] port to "
                                         "another") from None
        raise errors.BusyError(e.errno or errno.EADDRINUSE, f"{what}; is another program listening there? Set "
                               "[prometheus] port (or --prometheus-port) to a free port") from None
    log.info("Prometheus metrics on %s", url(addr, port))

