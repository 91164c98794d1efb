# SPDX-License-Identifier: Apache-2.0
"""Serve synthetic devices without the daemon: a set of regions in one directory, served by C
worker threads of this process. ``virt-synth serve`` and ``virt-synthd`` are front ends of this;
tests, benchmarks and the demo use it directly."""

from __future__ import annotations

import os
import pathlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from libvirt_synth import errors, log
from libvirt_synth.abi import DevClass
from libvirt_synth.host import packet as host_packet
from libvirt_synth.host.device import HostDevice, HostDeviceSpec, Worker


def default_region_dir() -> pathlib.Path:
    """Where regions go by default: /dev/shm (what libvirt's <shmem> maps), else the temp dir."""
    env = os.environ.get("LIBVIRT_SYNTH_REGION_DIR")
    if env:
        return pathlib.Path(env)
    shm = pathlib.Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else pathlib.Path("/tmp")


def parse_cpus(text: str | None) -> list[int]:
    """'0,2-3' -> [0, 2, 3]."""
    if not text:
        return []
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise errors.ValueError(f"bad CPU list {text!r}; expected e.g. 0,2-3") from None
        cpus.extend(range(a, b + 1))
    return cpus


#: Class-specific counters, for the classes that have some.
CLASS_STATS: dict[DevClass, Callable[[HostDevice], dict[str, Any]]] = {DevClass.PACKET: host_packet.stats}


def class_stats(dev: HostDevice) -> dict[str, Any]:
    """Class-specific counters of a device (``CLASS_STATS``), if its class has some."""
    fn = CLASS_STATS.get(dev.spec.dev_class)
    return {dev.spec.dev_class.name.lower(): fn(dev)} if fn is not None else {}


#: Classes whose devices get a worker thread of their own by default: one compression operation
#: may take a second (zstd level 19 on 1 MiB), and on a shared worker every other device would
#: wait for it. Crypto and packet operations take microseconds and share. A worker of its own runs
#: at DEDICATED_NICE: where it shares a CPU with the shared workers, it has that CPU while they
#: sleep and gives it back as soon as they have work.
DEDICATED_CLASSES = (DevClass.COMPRESS,)
DEDICATED_NICE = 10
#: Every worker whose devices have been idle this long parks (Worker.park_when_idle): no more timed
#: wake-ups; one watcher thread for the process looks at the parked workers' rings and wakes the one
#: with work, as soon as it would have woken from its deepest idle sleep. The shared workers ask
#: first, so the watcher runs at their nice value and on the first one's CPU: a watcher at
#: DEDICATED_NICE would wait behind busy shared workers, and every parked worker's first op with it.
PARK_AFTER_MS = 1000


class Backend:
    """Devices and the workers serving them. Devices are spread over the shared workers
    round-robin; a device of a class in ``dedicated`` gets a worker of its own, which goes with it
    (on the same CPUs, round-robin: the kernel shares a CPU between threads, a worker's loop does
    not have to)."""

    def __init__(self, workers: int = 1, cpus: Iterable[int] = (), dedicated: Iterable[DevClass] = DEDICATED_CLASSES,
                 **worker_kw: Any) -> None:
        if workers < 1:
            raise errors.ValueError(f"need at least one worker, got {workers}")
        self._cpus = list(cpus)
        self._worker_kw = worker_kw
        self.dedicated = frozenset(dedicated)
        self.workers = [self._new_worker(self._cpu(i)) for i in range(workers)]
        self.own_workers: dict[str, Worker] = {}  # device path -> its own worker
        self.devices: dict[str, HostDevice] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._groups: dict[str, set[str]] = {}  # path -> the paths joined to it by wires (one worker)

    def add(self, spec: HostDeviceSpec) -> HostDevice:
        """Lay out a region and start serving it."""
        return self._serve(spec, attach=False, generation=0)

    def attach(self, spec: HostDeviceSpec, generation: int = 0) -> HostDevice:
        """Serve an existing region again (a restarted backend); its generation goes up."""
        return self._serve(spec, attach=True, generation=generation)

    def _new_worker(self, cpu: int | None, nice: int = 0) -> Worker:
        w = Worker(cpu=cpu, nice=nice, **self._worker_kw)
        try:
            w.park_when_idle(PARK_AFTER_MS)
        except BaseException:
            w.stop()
            raise
        return w

    def _cpu(self, i: int) -> int | None:
        return self._cpus[i % len(self._cpus)] if self._cpus else None

    def _worker_for(self, spec: HostDeviceSpec) -> Worker:
        if spec.dev_class in self.dedicated:
            w = self._new_worker(self._cpu(len(self.workers) + len(self.own_workers)), DEDICATED_NICE)
            self.own_workers[spec.path] = w
            return w
        w = self.workers[self._next % len(self.workers)]
        self._next += 1
        return w

    def _drop_own_worker(self, path: str) -> None:
        w = self.own_workers.pop(path, None)
        if w is not None:
            w.stop()

    def _serve(self, spec: HostDeviceSpec, attach: bool, generation: int) -> HostDevice:
        with self._lock:
            if spec.path in self.devices:
                raise errors.ValueError(f"device {spec.path} is already served")
            dev = HostDevice.from_spec(spec, attach=attach, generation=generation)
            try:
                self._worker_for(spec).add(dev)
            except BaseException:
                dev.destroy(unlink=not attach)
                self._drop_own_worker(spec.path)
                raise
            self.devices[spec.path] = dev
            log.info("serving %s device %s with %s", spec.dev_class.name.lower(), spec.path, dev.plugin)
            return dev

    def add_group(self, specs: Sequence[HostDeviceSpec],
                  connect: Callable[[list[HostDevice]], None] | None = None, *, attach: bool = False,
                  generations: dict[str, int] | None = None, join: Sequence[HostDevice] = ()) -> list[HostDevice]:
        """Lay out several regions (or, with attach, take over existing ones), let ``connect`` link
        them while nothing serves them yet, then serve them all from one worker. Packet devices
        joined by a wire need this: one worker thread must serve both ends. ``join`` are devices
        served already that ``connect`` links to the new ones (a wire to another VM's device):
        they stop being served for the moment it takes, and their groups move to one worker with
        the new devices. ``connect`` gets the joined devices, then the new ones. All or nothing: on
        failure no new region is left (attached ones are left to their VMs) and the joined devices
        are served as before."""
        with self._lock:
            paths = [s.path for s in specs]
            dup = [p for p in paths if p in self.devices or paths.count(p) > 1]
            if dup:
                raise errors.ValueError(f"device {dup[0]} is already served (or given twice)")
            members = {p: self.devices[p] for d in join for p in self._groups.get(d.path, {d.path})}
            joined = list(join)
            worker = joined[0].worker if joined and joined[0].worker else self.workers[self._next % len(self.workers)]
            # Links change only while nothing serves their ends; group members elsewhere move here.
            paused = {p: d for p, d in members.items() if d in joined or d.worker is not worker}
            was = {p: d.worker for p, d in paused.items()}
            for d in paused.values():
                if d.worker is not None:
                    d.worker.remove(d)
            devs: list[HostDevice] = []
            try:
                for spec in specs:
                    gen = (generations or {}).get(spec.path, 0)
                    devs.append(HostDevice.from_spec(spec, attach=attach, generation=gen))
                if connect is not None:
                    connect(joined + devs)
                for dev in [*paused.values(), *devs]:
                    worker.add(dev)
            except BaseException:
                for dev in devs:
                    dev.destroy(unlink=not attach)
                for p, d in paused.items():  # back where they were, serving as before
                    if d.worker is not None:
                        d.worker.remove(d)
                    if was[p] is not None:
                        was[p].add(d)  # type: ignore[union-attr]
                raise
            self._next += 1
            group = set(members) | set(paths)
            for p in group:
                self._groups[p] = group
            for dev in devs:
                self.devices[dev.path] = dev
                log.info("serving %s device %s with %s", dev.spec.dev_class.name.lower(), dev.path, dev.plugin)
            if joined:
                log.info("linked %s to %s on one worker", ", ".join(d.path for d in devs),
                         ", ".join(d.path for d in joined))
            return devs

    def release(self, dev: HostDevice) -> None:
        """Stop serving a device but keep its region (the VM still maps it)."""
        self.remove(dev.path, unlink=False)

    def remove(self, path: str, unlink: bool = True) -> None:
        with self._lock:
            dev = self.devices.pop(path, None)
            self._groups.pop(path, set()).discard(path)
        if dev is None:
            raise errors.NotFoundError(f"no device {path} is served here")
        dev.destroy(unlink=unlink)
        with self._lock:
            self._drop_own_worker(path)

    def stats(self) -> dict[str, Any]:
        return {
            "devices": {p: d.stats().as_dict() | {"plugin": d.plugin} | class_stats(d)
                        for p, d in self.devices.items()},
            "workers": [w.stats() for w in self.workers],
            "own_workers": {p: w.stats() for p, w in self.own_workers.items()},
            "watch_rounds": Worker.watch_rounds(),
        }

    def close(self, unlink: bool = True) -> None:
        for path in list(self.devices):
            self.remove(path, unlink=unlink)
        for w in self.workers:
            w.stop()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
