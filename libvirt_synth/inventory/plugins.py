# SPDX-License-Identifier: Apache-2.0
"""Installed plugins and their measured capacity.

Calibration runs each available plugin on each algorithm it serves for a short time on one core
(``synth_calibrate`` in native/src/host/calibrate.c: the plugin's own burst function on host
buffers, no device), and gives Gb/s per worker core, ops/s and the mean time per op at one size
(1500 bytes, a full Ethernet frame: an IPsec packet, a chunk of an HTTP body). Compression is
measured compressing semi-compressible text at the plugin's default level (the costlier direction).
Packet I/O has no plugin: the host's own data path is measured instead (``synth_calibrate_packet``:
two packet devices joined by a virtual wire in a temporary directory, frames of the same size sent
across, only the host's poll passes timed), listed as the pseudo-plugin ``packet-io``.

Results are cached as JSON (``$LIBVIRT_SYNTH_CACHE_DIR``, else /var/cache/libvirt-synth for root,
else ~/.cache/libvirt-synth), keyed by CPU model, plugin, plugin detail (its version and code path),
algorithm, size and duration; a changed plugin or CPU is measured again. ``calibrate=True`` (the
CLI's ``--calibrate``) measures everything again.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import pathlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libvirt_synth import defaults, errors, log

DEFAULT_SIZE = 1500
DEFAULT_MILLIS = 150
CACHE_FILE = "calibration.json"
CACHE_VERSION = 1
#: Sessions one crypto device holds: virt-synthd creates devices with the data path's default
#: (DEFAULT_MAX_SESSIONS in native/src/host/crypto_dev.c; tests pin the two together).
CRYPTO_SESSIONS_PER_DEVICE = defaults.CRYPTO_SESSIONS


def default_cache_dir() -> str:
    env = os.environ.get("LIBVIRT_SYNTH_CACHE_DIR")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/cache/libvirt-synth"
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "libvirt-synth")


@dataclass(frozen=True)
class Measurement:
    plugin: str
    algorithm: str
    dev_class: str
    size: int
    millis: int
    gbps_per_core: float
    ops_per_s_per_core: float
    latency_us: float
    ops: int
    level: int | None
    measured_at: float
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("plugin", "algorithm", "dev_class", "size", "millis", "gbps_per_core",
                                           "ops_per_s_per_core", "latency_us", "ops", "level", "measured_at",
                                           "cached")}
        return d


def measure(plugin: str, algorithm: str, size: int = DEFAULT_SIZE, millis: int = DEFAULT_MILLIS) -> Measurement:
    """Run one calibration now (one core, this thread)."""
    from libvirt_synth._native import ffi, lib
    from libvirt_synth.abi import Alg, CAlg

    if not 0 < size <= lib.SYNTH_CALIB_MAX_SIZE:
        raise errors.ValueError(f"calibration size must be 1..{lib.SYNTH_CALIB_MAX_SIZE} bytes, got {size}")
    if not 0 < millis <= lib.SYNTH_CALIB_MAX_MILLIS:
        raise errors.ValueError(f"calibration time must be 1..{lib.SYNTH_CALIB_MAX_MILLIS} ms, got {millis}")
    p = lib.synth_plugin_find(plugin.encode())
    if p == ffi.NULL:
        raise errors.NotFoundError(f"no plugin {plugin!r} in the catalog")
    try:
        alg = int(Alg.parse(algorithm)) if p.dev_class == lib.SYNTH_CLASS_CRYPTO else int(CAlg.parse(algorithm))
    except ValueError as e:
        raise errors.ValueError(f"plugin {plugin}: {e}") from None
    out = ffi.new("struct synth_calib_result *")
    rc = lib.synth_calibrate(plugin.encode(), alg, size, millis, out)
    what = f"calibrating {plugin} {algorithm}"
    if rc == -errno.ENODEV:
        raise errors.NotSupportedError(errno.ENODEV, f"{what}: the plugin cannot run on this host")
    if rc == -errno.EIO:
        raise errors.DeviceError(f"{what}: an operation completed with an error status")
    if rc < 0:
        raise errors.from_errno(rc, what)
    cls = {lib.SYNTH_CLASS_CRYPTO: "crypto", lib.SYNTH_CLASS_COMPRESS: "compress"}.get(out.dev_class, "?")
    return Measurement(plugin=plugin, algorithm=algorithm, dev_class=cls, size=size, millis=millis,
                       gbps_per_core=round(out.gbps, 3), ops_per_s_per_core=round(out.ops_per_s, 1),
                       latency_us=round(out.latency_us, 3), ops=int(out.ops),
                       level=int(out.level) if cls == "compress" else None, measured_at=round(time.time(), 3))


PACKET_IO = "packet-io"  # the pseudo-plugin of packet I/O: the host's own data path


def measure_packet(size: int = DEFAULT_SIZE, millis: int = DEFAULT_MILLIS) -> Measurement:
    """Measure the host's packet path now (one core, this thread): frames delivered over a wire."""
    import shutil

    from libvirt_synth._native import ffi, lib

    if not lib.SYNTH_PKT_MIN_FRAME <= size <= lib.SYNTH_PKT_MAX_FRAME:
        raise errors.ValueError(f"packet calibration size must be {lib.SYNTH_PKT_MIN_FRAME}.."
                                f"{lib.SYNTH_PKT_MAX_FRAME} bytes, got {size}")
    if not 0 < millis <= lib.SYNTH_CALIB_MAX_MILLIS:
        raise errors.ValueError(f"calibration time must be 1..{lib.SYNTH_CALIB_MAX_MILLIS} ms, got {millis}")
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="synth-calibrate-", dir=base)
    try:
        out = ffi.new("struct synth_calib_result *")
        rc = lib.synth_calibrate_packet(d.encode(), size, millis, out)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if rc == -errno.EIO:
        raise errors.DeviceError("calibrating packet I/O: no frame arrived whole")
    if rc < 0:
        raise errors.from_errno(rc, "calibrating packet I/O")
    return Measurement(plugin=PACKET_IO, algorithm="io", dev_class="packet", size=size, millis=millis,
                       gbps_per_core=round(out.gbps, 3), ops_per_s_per_core=round(out.ops_per_s, 1),
                       latency_us=round(out.latency_us, 3), ops=int(out.ops), level=None,
                       measured_at=round(time.time(), 3))


class Cache:
    """Measurements on disk, one JSON file; entries whose key no longer matches are ignored."""

    def __init__(self, directory: str | None = None) -> None:
        self.dir = pathlib.Path(directory or default_cache_dir())
        self.path = self.dir / CACHE_FILE
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            doc = json.loads(self.path.read_text())
            if doc.get("version") == CACHE_VERSION and isinstance(doc.get("entries"), dict):
                self.entries = doc["entries"]
        except (OSError, ValueError, AttributeError):
            pass

    @staticmethod
    def key(cpu_model: str, plugin: str, detail: str, algorithm: str, size: int, millis: int) -> str:
        return json.dumps([cpu_model, plugin, detail, algorithm, size, millis])

    def get(self, key: str) -> Measurement | None:
        e = self.entries.get(key)
        if not isinstance(e, dict):
            return None
        try:
            return Measurement(**(e | {"cached": True}))
        except TypeError:
            return None

    def put(self, key: str, m: Measurement) -> None:
        self.entries[key] = m.as_dict() | {"cached": False}

    def save(self) -> None:
        """Write atomically; a cache that cannot be written is only a warning."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".calibration-", dir=self.dir)
            with os.fdopen(fd, "w") as f:
                json.dump({"version": CACHE_VERSION, "entries": self.entries}, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("cannot write the calibration cache %s: %s", self.path, e)


def inventory(cpu_model: str, calibrate: bool = False, cache_dir: str | None = None, size: int = DEFAULT_SIZE,
              millis: int = DEFAULT_MILLIS, measure_missing: bool = True) -> list[dict[str, Any]]:
    """Every plugin of the catalog, with a calibration per algorithm for the available ones:
    from the cache, or measured now (``calibrate``: all measured now; ``measure_missing`` False:
    only what the cache has)."""
    from libvirt_synth.host.plugins import catalog

    cache = Cache(cache_dir)
    changed = False
    out: list[dict[str, Any]] = []
    # (plugin entry, algorithm, cache key, how to measure it)
    jobs: list[tuple[dict[str, Any], str, str, Callable[[], Measurement]]] = []
    for p in catalog():
        entry: dict[str, Any] = {"name": p.name, "class": p.dev_class, "priority": p.priority,
                                 "available": p.available, "detail": p.detail, "algorithms": p.algorithms,
                                 "calibration": {}}
        if p.available and p.dev_class in ("crypto", "compress"):
            for alg in p.algorithms:
                jobs.append((entry, alg, Cache.key(cpu_model, p.name, p.detail, alg, size, millis),
                             functools.partial(measure, p.name, alg, size, millis)))
        out.append(entry)
    # Packet I/O: the host's own data path, listed as a pseudo-plugin (the frame size is the
    # calibration size, within what a packet device carries).
    from libvirt_synth import __version__
    from libvirt_synth._native import lib

    psize = min(max(size, int(lib.SYNTH_PKT_MIN_FRAME)), int(lib.SYNTH_PKT_MAX_FRAME))
    entry = {"name": PACKET_IO, "class": "packet", "priority": 0, "available": True,
             "detail": "the host's data path: frames over a virtual wire", "algorithms": ["io"], "calibration": {}}
    jobs.append((entry, "io", Cache.key(cpu_model, PACKET_IO, __version__, "io", psize, millis),
                 lambda: measure_packet(psize, millis)))
    out.append(entry)
    for entry, alg, key, run in jobs:
        m = None if calibrate else cache.get(key)
        if m is None and (calibrate or measure_missing):
            log.info("calibrating %s %s (%d ms)", entry["name"], alg, millis)
            m = run()
            cache.put(key, m)
            changed = True
        if m is not None:
            entry["calibration"][alg] = {k: v for k, v in m.as_dict().items()
                                         if k not in ("plugin", "algorithm", "dev_class")}
    if changed:
        cache.save()
    return out


def packet_capacity(name: str, kind: str, plugins: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """Packet I/O: frames the host delivers over a wire per second, ``workers`` cores of it. A frame
    is the send of one device and the receive of another; packets/s counts it once."""
    entry: dict[str, Any] = {"class": "packet", "kind": kind, "plugin": None}
    cal = next((p["calibration"].get(name) for p in plugins if p["name"] == PACKET_IO), None)
    if cal is None:
        return entry | {"source": "unmeasured", "throughput_gbps": None, "ops_per_s": None, "packets_per_s": None,
                        "latency_us": None}
    return entry | {"plugin": PACKET_IO, "source": "calibrated", "gbps_per_core": cal["gbps_per_core"],
                    "throughput_gbps": round(cal["gbps_per_core"] * workers, 3), "ops_per_s": None,
                    "packets_per_s": round(cal["ops_per_s_per_core"] * workers, 1),
                    "packets_per_s_per_core": cal["ops_per_s_per_core"], "latency_us": cal["latency_us"],
                    "size": cal["size"]}


def capacity(plugins: list[dict[str, Any]], workers: int) -> dict[str, dict[str, Any]]:
    """Per capability: the plugin the data path would pick (highest priority among the available
    ones that serve it; catalog order breaks ties) and what ``workers`` cores of it deliver."""
    from libvirt_synth.capabilities import CAPABILITIES, PACKET

    out: dict[str, dict[str, Any]] = {}
    for cap in CAPABILITIES.values():
        if cap.dev_class == PACKET:
            out[cap.name] = packet_capacity(cap.name, cap.kind, plugins, workers)
            continue
        able = [p for p in plugins if p["available"] and p["class"] == cap.dev_class and cap.name in p["algorithms"]]
        if not able:
            continue
        best = max(able, key=lambda p: p["priority"])  # max() keeps the first of equals: catalog order
        cal = best["calibration"].get(cap.name)
        entry: dict[str, Any] = {"class": cap.dev_class, "kind": cap.kind, "plugin": best["name"]}
        if cal is None:
            entry |= {"source": "uncalibrated", "throughput_gbps": None, "ops_per_s": None, "latency_us": None}
        else:
            entry |= {"source": "calibrated", "gbps_per_core": cal["gbps_per_core"],
                      "throughput_gbps": round(cal["gbps_per_core"] * workers, 3),
                      "ops_per_s": round(cal["ops_per_s_per_core"] * workers, 1),
                      "latency_us": cal["latency_us"], "size": cal["size"]}
        if cap.dev_class == "crypto":
            entry["sessions_per_device"] = CRYPTO_SESSIONS_PER_DEVICE
        else:
            from libvirt_synth._native import lib

            entry["sessions_per_device"] = int(lib.SYNTH_COMP_DEF_MAX_STREAMS)
        out[cap.name] = entry
    return out
