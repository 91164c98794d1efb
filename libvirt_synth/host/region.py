# SPDX-License-Identifier: Apache-2.0
"""Read a region's header page without attaching to it: what tools and the daemon use to see
what a region file is, without disturbing the driver or the backend that use it."""

from __future__ import annotations

import fcntl
import os
import pathlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from libvirt_synth import errors
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import ALG_INFO, Alg, DevClass, dev_status_names, feature_names

HEADER_SIZE = int(lib.SYNTH_HEADER_SIZE)


@dataclass(frozen=True)
class RegionInfo:
    path: str
    name: str
    dev_class: str
    abi_version: str
    size: int
    queues: int
    ring_entries: int
    backend: str
    status: list[str]
    generation: int
    heartbeat_age_s: float | None  # seconds since the backend last polled, None if never
    features_offered: list[str]
    driver_attached: bool
    algorithms: list[str]
    owner_uid: int
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _monotonic_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def is_region(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and int.from_bytes(head, "little") == lib.SYNTH_MAGIC


def is_locked(path: str | os.PathLike[str]) -> bool:
    """Does a backend serve this region? Each one holds an exclusive flock on it (synth/host.h)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if it was taken
    return False


def read_header(path: str | os.PathLike[str]) -> RegionInfo:
    """Snapshot of a region's header. Raises NotFoundError, or DeviceError if it is not a region."""
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.NotFoundError(f"no region file {p}") from None
    except PermissionError as e:
        raise errors.PermissionError(e.errno, f"cannot read region {p}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        # pread, not mmap: a region's QEMU may truncate the file at any moment, and a read then
        # comes back short where a mapping would kill this process with SIGBUS.
        raw = os.pread(fd, HEADER_SIZE, 0)
    finally:
        os.close(fd)
    if len(raw) < HEADER_SIZE:
        raise errors.DeviceError(f"{p} is not a synthetic device region (too small)")
    h = ffi.from_buffer("struct synth_dev_header *", raw)
    if h.magic != lib.SYNTH_MAGIC:
        raise errors.DeviceError(f"{p} is not a synthetic device region (bad magic)")
    cls = DevClass(h.dev_class).name.lower() if h.dev_class in DevClass._value2member_map_ else str(h.dev_class)
    algs: list[str] = []
    if h.dev_class == DevClass.CRYPTO:
        cfg = ffi.cast("struct synth_crypto_cfg *", ffi.cast("char *", h) + lib.SYNTH_CLASS_CFG_OFF)
        algs = [ALG_INFO[a].label for a in Alg if cfg.alg_mask & (1 << a)]
    age = None
    if h.heartbeat:
        age = max(0.0, (_monotonic_ns() - h.heartbeat) / 1e9)
    return RegionInfo(
        path=p,
        name=ffi.string(h.device_name, 32).decode(errors="replace"),
        dev_class=cls,
        abi_version=f"{h.abi_major}.{h.abi_minor}",
        size=st.st_size,
        queues=h.num_queues,
        ring_entries=h.ring_entries,
        backend=ffi.string(h.backend, 32).decode(errors="replace"),
        status=dev_status_names(h.dev_status),
        generation=h.generation,
        heartbeat_age_s=age,
        features_offered=feature_names(h.features_offered, h.dev_class),
        driver_attached=bool(h.drv_status & lib.SYNTH_DRV_DRIVER_OK),
        algorithms=algs,
        owner_uid=st.st_uid,
        mode=oct(st.st_mode & 0o777),
    )


def scan(directory: str | os.PathLike[str]) -> list[RegionInfo]:
    """Every region file in a directory (other files are skipped)."""
    d = pathlib.Path(directory)
    out = []
    for f in sorted(d.iterdir()) if d.is_dir() else []:
        if f.is_file() and is_region(f):
            try:
                out.append(read_header(f))
            except errors.SynthError:
                continue
    return out
