# SPDX-License-Identifier: Apache-2.0
"""Host backend in Python: lay out device regions and serve them from C worker threads.

This is the data path without the daemon: tests, benchmarks and ``virt-synth serve`` use it
directly; the daemon builds on it. The worker threads are C threads that never take the GIL.

    with Worker() as w:
        dev = HostDevice.create("/dev/shm/synth-x", DevClass.CRYPTO, size=4 << 20)
        w.add(dev)
        ...
"""

from __future__ import annotations

import errno
import grp
import os
import pathlib
import pwd
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import defaults, errors, log
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import DevClass, Status, dev_status_names
from libvirt_synth.host import compress as host_compress
from libvirt_synth.host import crypto as host_crypto
from libvirt_synth.host import packet as host_packet

#: Each class's host code that turns its host options into its C parameter block.
CLASS_PARAMS: dict[DevClass, Callable[[dict[str, Any], list[Any]], Any]] = {
    DevClass.CRYPTO: host_crypto.class_params,
    DevClass.COMPRESS: host_compress.class_params,
    DevClass.PACKET: host_packet.class_params,
}

DEFAULT_REGION_SIZE = defaults.REGION_SIZE
DEFAULT_QUEUES = defaults.QUEUES
DEFAULT_RING_ENTRIES = defaults.RING_ENTRIES


@dataclass(frozen=True)
class HostDeviceSpec:
    """What a host device looks like: everything needed to lay out (or re-attach) its region."""

    path: str
    dev_class: DevClass = DevClass.CRYPTO
    name: str = ""
    size: int = DEFAULT_REGION_SIZE
    queues: int = DEFAULT_QUEUES
    ring_entries: int = DEFAULT_RING_ENTRIES
    max_sessions: int = 0
    owner: str | None = None  # who must own the region: the QEMU user, or a domain's own "+UID:GROUP"
    mode: int = 0o600
    plugin: str | None = None  # serving plugin by name (None: the class default)
    options: tuple[tuple[str, Any], ...] = ()  # class-specific host options (see class_params_builder)
    vault: str | None = None  # host-only state file: sessions and in-flight ops survive a backend restart
    quota: tuple[tuple[str, int], ...] = ()  # ops_per_s, bytes_per_s, inflight (0 or absent: no limit)
    streams: bytes = b""  # compression streams another backend exported (export_streams): re-created

    def validate(self) -> None:
        if self.size <= 0 or self.size & (self.size - 1):
            raise errors.ValueError(f"region size {self.size} is not a power of two (ivshmem requires one)")
        if self.size < lib.SYNTH_MIN_REGION_SIZE:
            raise errors.ValueError(f"region size {self.size} is below the minimum {lib.SYNTH_MIN_REGION_SIZE}")
        if not 1 <= self.queues <= lib.SYNTH_MAX_QUEUES:
            raise errors.ValueError(f"queues must be 1..{lib.SYNTH_MAX_QUEUES}, got {self.queues}")
        re = self.ring_entries
        if re & (re - 1) or not lib.SYNTH_MIN_RING_ENTRIES <= re <= lib.SYNTH_MAX_RING_ENTRIES:
            raise errors.ValueError(
                f"ring entries must be a power of two in {lib.SYNTH_MIN_RING_ENTRIES}.."
                f"{lib.SYNTH_MAX_RING_ENTRIES}, got {re}"
            )
        if len(self.name.encode()) > 31:
            raise errors.ValueError(f"device name {self.name!r} is longer than 31 bytes")


@dataclass
class DeviceStats:
    ops: int
    by_status: dict[str, int]
    bytes_in: int
    bytes_out: int
    resets: int
    ring_errors: int
    sessions: int
    status: list[str]
    dev_error: int
    active: bool
    generation: int
    throttled: int = 0
    retried: int = 0
    restored_sessions: int = 0
    latency_ns: dict[str, int] = field(default_factory=dict)  # "<2^b ns" bucket -> ops
    busy_ns: int = 0  # worker time spent processing this device's bursts
    latency_sum_ns: int = 0  # the ops' service times summed: the latency histogram's sum
    queues: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def latency_percentile(self, pct: float) -> int:
        """Upper bound (ns) of the service-time bucket holding the pct-th percentile; 0 if no ops."""
        total = sum(self.latency_ns.values())
        if not total:
            return 0
        seen = 0
        for label, n in sorted(self.latency_ns.items(), key=lambda kv: int(kv[0])):
            seen += n
            if seen >= total * pct / 100:
                return int(label)
        return 0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(d.pop("extra"))
        return d


def owner_ids(owner: str) -> tuple[int, int]:
    """A region owner -> (uid, gid): a user name (and its group), or libvirt's ``+UID:GROUP`` /
    ``+UID:+GID`` (a domain's own QEMU uid)."""
    if not owner.startswith("+"):
        try:
            pw = pwd.getpwnam(owner)
        except KeyError:
            raise errors.NotFoundError(f"user {owner!r} (region owner) does not exist") from None
        return pw.pw_uid, pw.pw_gid
    user, _, group = owner[1:].partition(":")
    if not user.isdigit() or not group:
        raise errors.ValueError(f"region owner {owner!r}: expected +UID:GROUP or +UID:+GID")
    if group.startswith("+") and group[1:].isdigit():
        return int(user), int(group[1:])
    try:
        return int(user), grp.getgrnam(group).gr_gid
    except KeyError:
        raise errors.NotFoundError(f"group {group!r} (of region owner {owner}) does not exist") from None


def _params(spec: HostDeviceSpec, keep: list[Any], generation: int = 0) -> Any:
    p = ffi.new("struct synth_hdev_params *")
    path = ffi.new("char[]", spec.path.encode())
    name = ffi.new("char[]", (spec.name or pathlib.Path(spec.path).name)[:31].encode())
    keep += [path, name]
    p.path = path
    p.name = name
    p.dev_class = spec.dev_class
    p.num_queues = spec.queues
    p.region_size = spec.size
    p.ring_entries = spec.ring_entries
    p.max_sessions = spec.max_sessions
    p.plugin = ffi.NULL
    if spec.plugin:
        from libvirt_synth.host.plugins import find_plugin

        p.plugin = find_plugin(spec.plugin, spec.dev_class)
    p.uid = p.gid = -1
    if spec.owner is not None:
        p.uid, p.gid = owner_ids(spec.owner)
    p.mode = spec.mode
    p.generation = generation
    if spec.vault:
        vault = ffi.new("char[]", spec.vault.encode())
        keep.append(vault)
        p.vault_path = vault
    for key, value in spec.quota:
        if key not in ("ops_per_s", "bytes_per_s", "inflight") or not isinstance(value, int) or value < 0:
            raise errors.ValueError(f"quota {key}={value!r}: expected ops_per_s, bytes_per_s or inflight >= 0")
        setattr(p.quota, key, value)
    builder = class_params_builder(spec.dev_class)
    if builder is not None:
        cp = builder(dict(spec.options), keep)
        keep.append(cp)
        p.class_params = cp
        p.class_params_size = ffi.sizeof(cp[0])
    elif spec.options:
        raise errors.ValueError(f"{spec.dev_class.name.lower()} devices take no options, got {dict(spec.options)}")
    return p


def class_params_builder(dev_class: DevClass) -> Any:
    """The function that turns a class's host options into its C parameter block, or None."""
    return CLASS_PARAMS.get(dev_class)


def _region_error(rc: int, spec: HostDeviceSpec, attach: bool) -> errors.SynthError:
    """What a failed create or attach means, in words an operator can act on."""
    what = f"{'attaching to' if attach else 'creating'} region {spec.path}"
    if rc == -errno.EBUSY:
        return errors.BusyError(f"{what}: another backend process serves it already (a second "
                                "virt-synthd with the same region directory?); stop that one first")
    if rc == -errno.EFAULT:
        return errors.DeviceError(errno.EFAULT, f"{what}: the file was truncated while it was being "
                                  "set up (by the VM's QEMU, or whoever controls that file); the device is "
                                  "abandoned, the others go on")
    if rc == -errno.ENOSPC and not attach:
        where = os.path.dirname(spec.path) or "."
        try:
            vfs = os.statvfs(where)
            free = vfs.f_bavail * vfs.f_frsize
        except OSError:
            free = spec.size
        if free < spec.size:
            return errors.NoSpaceError(f"{what}: {where} has {free >> 10} KiB free and the region "
                                       f"needs {spec.size >> 10} KiB; free space there or enlarge it "
                                       f"(df -h {where}; a tmpfs: mount -o remount,size=...)")
        return errors.ValueError(f"{what}: {spec.queues} queues of {spec.ring_entries} ring entries do not fit "
                                 f"in {spec.size} bytes; give a larger size or fewer queues or entries")
    return errors.from_errno(rc, what)


class HostDevice:
    """A device region laid out (or re-attached) by this process, with its class state."""

    def __init__(self, handle: Any, spec: HostDeviceSpec) -> None:
        self._h = handle
        self.spec = spec
        self.worker: Worker | None = None

    @classmethod
    def create(cls, path: str, dev_class: DevClass = DevClass.CRYPTO, **kw: Any) -> HostDevice:
        return cls.from_spec(HostDeviceSpec(path=path, dev_class=dev_class, **kw))

    @classmethod
    def from_spec(cls, spec: HostDeviceSpec, attach: bool = False, generation: int = 0) -> HostDevice:
        spec.validate()
        keep: list[Any] = []
        p = _params(spec, keep, generation)
        out = ffi.new("struct synth_hdev **")
        fn = lib.synth_hdev_attach if attach else lib.synth_hdev_create
        rc = fn(p, out)
        if rc < 0:
            raise _region_error(rc, spec, attach)
        log.debug("%s %s device %s (%d bytes)", "attached" if attach else "created",
                  spec.dev_class.name.lower(), spec.path, spec.size)
        dev = cls(out[0], spec)
        if spec.streams:
            back = lib.synth_hdev_import_streams(dev.handle, spec.streams, len(spec.streams))
            if back < 0:
                log.warning("device %s: the compression streams handed over are malformed; none came back",
                            spec.path)
            else:
                log.info("device %s: %d compression streams came back", spec.path, back)
        return dev

    @property
    def handle(self) -> Any:
        if self._h is None:
            raise errors.DeviceError(f"device {self.spec.path} was destroyed")
        return self._h

    @property
    def path(self) -> str:
        return self.spec.path

    @property
    def plugin(self) -> str:
        return str(ffi.string(lib.synth_hdev_plugin_name(self.handle)).decode())

    def set_quota(self, quota: dict[str, int]) -> None:
        """Change the device's quotas (ops_per_s, bytes_per_s, inflight; 0 or absent: no limit)."""
        q = ffi.new("struct synth_quota *")
        for key, value in quota.items():
            if key not in ("ops_per_s", "bytes_per_s", "inflight") or not isinstance(value, int) or value < 0:
                raise errors.ValueError(f"quota {key}={value!r}: expected ops_per_s, bytes_per_s or inflight >= 0")
            setattr(q, key, value)
        lib.synth_hdev_set_quota(self.handle, q)

    def poll(self) -> int:
        """Serve the queues once from this thread (only for a device no worker owns)."""
        if self.worker is not None:
            raise errors.DeviceError("device is served by a worker; remove it first")
        return int(lib.synth_hdev_poll(self.handle))

    def stats(self) -> DeviceStats:
        st = ffi.new("struct synth_hdev_stats *")
        lib.synth_hdev_get_stats(self.handle, st)
        return DeviceStats(
            ops=st.ops,
            by_status={Status(i).name.lower(): st.status[i] for i in range(lib.SYNTH_ST_MAX) if st.status[i]},
            bytes_in=st.bytes_in,
            bytes_out=st.bytes_out,
            resets=st.resets,
            ring_errors=st.ring_errors,
            sessions=st.sessions,
            status=dev_status_names(st.dev_status),
            dev_error=st.dev_error,
            active=bool(st.active),
            generation=st.generation,
            throttled=st.throttled,
            retried=st.retried,
            restored_sessions=st.restored_sessions,
            latency_ns={str(2 ** (b + 1)): st.lat_hist[b] for b in range(lib.SYNTH_LAT_BUCKETS) if st.lat_hist[b]},
            busy_ns=st.busy_ns, latency_sum_ns=st.lat_sum_ns,
            queues=[self._queue_stats(i) for i in range(self.spec.queues)],
        )

    def sessions(self) -> list[dict[str, Any]]:
        """The device's live crypto sessions: id, algorithm, flags, serving plugin (never keys)."""
        from libvirt_synth.abi import ALG_INFO, Alg

        n = 256
        while True:
            buf = ffi.new("struct synth_session_info[]", n)
            total = lib.synth_hdev_sessions(self.handle, buf, n)
            if total <= n:
                break
            n = total
        out = []
        for i in range(total):
            alg = buf[i].alg
            out.append({"id": buf[i].id, "alg": ALG_INFO[Alg(alg)].label if alg in Alg._value2member_map_ else alg,
                        "iv_gen": bool(buf[i].flags & lib.SYNTH_CRYPTO_SF_IV_GEN),
                        "plugin": ffi.string(buf[i].plugin).decode()})
        return out

    def _queue_stats(self, qi: int) -> dict[str, Any]:
        qs = ffi.new("struct synth_hqueue_stats *")
        lib.synth_hdev_get_queue_stats(self.handle, qi, qs)
        return {"queue": qi, "ops": qs.ops,
                "by_status": {Status(i).name.lower(): qs.status[i] for i in range(lib.SYNTH_ST_MAX) if qs.status[i]}}

    def export_streams(self) -> bytes:
        """The compression streams at rest, for another backend to re-create (a migration). The
        device must not be served meanwhile (no worker)."""
        if self.worker is not None:
            raise errors.BusyError(f"device {self.path} is served: stop serving it before exporting its streams")
        need = lib.synth_hdev_export_streams(self.handle, ffi.NULL, 0)
        if need <= 0:
            return b""
        buf = ffi.new("uint8_t[]", need)
        lib.synth_hdev_export_streams(self.handle, buf, need)
        return bytes(ffi.buffer(buf, need))

    def destroy(self, unlink: bool = True) -> None:
        """Stop serving (if a worker has the device), release state, unlink the region."""
        if self._h is None:
            return
        if self.worker is not None:
            self.worker.remove(self)
        lib.synth_hdev_destroy(self._h, 1 if unlink else 0)
        self._h = None


class Worker:
    """A C worker thread polling the devices added to it."""

    def __init__(self, cpu: int | None = None, burst: int = 32, spin_us: int = 50, max_sleep_us: int = 1000,
                 deep_sleep_us: int = 10000, nice: int = 0):
        if not 1 <= burst <= lib.SYNTH_MAX_BURST:
            raise errors.ValueError(f"burst must be 1..{lib.SYNTH_MAX_BURST}, got {burst}")
        if cpu is not None and cpu not in os.sched_getaffinity(0):
            raise errors.ValueError(f"CPU {cpu} is not available to this process")
        p = ffi.new("struct synth_worker_params *")
        p.cpu = -1 if cpu is None else cpu
        p.burst = burst
        p.spin_us = spin_us
        p.max_sleep_us = max_sleep_us
        p.deep_sleep_us = deep_sleep_us
        if not -20 <= nice <= 19:
            raise errors.ValueError(f"nice must be -20..19, got {nice}")
        p.nice = nice
        out = ffi.new("struct synth_worker **")
        rc = lib.synth_worker_create(p, out)
        if rc < 0:
            raise errors.from_errno(rc, "starting a worker thread")
        self._h = out[0]
        self.devices: list[HostDevice] = []

    def add(self, dev: HostDevice) -> None:
        rc = lib.synth_worker_add(self._h, dev.handle)
        if rc == -errno.EBUSY:
            raise errors.BusyError(f"adding {dev.path} to a worker: another worker serves it already; remove it there "
                                   "first")
        if rc < 0:
            raise errors.from_errno(rc, f"adding {dev.path} to a worker")
        dev.worker = self
        self.devices.append(dev)

    def remove(self, dev: HostDevice) -> None:
        lib.synth_worker_remove(self._h, dev.handle)
        dev.worker = None
        if dev in self.devices:
            self.devices.remove(dev)

    def park_when_idle(self, idle_ms: int) -> None:
        """Park once every device has been idle for ``idle_ms`` (0: never): no more timed wake-ups;
        the process's watcher thread looks at the rings and wakes this worker on work, as soon as
        its deepest idle sleep would have ended. A worker serving a device no ring tells about (a
        packet device with a TAP) does not park while it does."""
        rc = lib.synth_worker_park_when_idle(self._h, idle_ms)
        if rc < 0:
            raise errors.from_errno(rc, "starting the thread that watches parked workers")

    @property
    def parked(self) -> bool:
        """On the watcher's list now."""
        return bool(lib.synth_worker_parked(self._h))

    @staticmethod
    def watch_rounds() -> int:
        """Rounds of looks the process's watcher thread has made at the parked workers' devices."""
        return int(lib.synth_worker_watch_rounds())

    def stats(self) -> dict[str, int]:
        st = ffi.new("struct synth_worker_stats *")
        lib.synth_worker_get_stats(self._h, st)
        return {"passes": st.passes, "busy_passes": st.busy_passes, "sleeps": st.sleeps,
                "ops": st.ops, "devices": st.devices, "region_faults": st.region_faults, "parked": int(self.parked)}

    def stop(self) -> None:
        if self._h is not None:
            for d in list(self.devices):
                d.worker = None
            self.devices.clear()
            lib.synth_worker_destroy(self._h)
            self._h = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        self.stop()
