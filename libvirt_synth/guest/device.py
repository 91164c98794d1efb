# SPDX-License-Identifier: Apache-2.0
"""Guest API in Python: a typed wrapper over the C guest library (``synth/guest.h``).

Open a device by region path (host side: tests, demo) or by PCI address (inside a VM), then use
its queues. Each ``Queue`` is single-threaded, as in C. Buffers live in the queue's arena and are
addressed by offset; descriptors name those offsets.

    with Device.open("/dev/shm/synth-demo-crypto") as dev:
        q = dev.queue(0)
        with q.session(Alg.AES256_GCM, key) as s:
            ct, tag = s.encrypt(b"payload", iv=nonce, aad=b"hdr")
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from libvirt_synth import errors
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import ALG_INFO, Alg, DevClass, Op, Status, dev_status_names, feature_names


class Completion(NamedTuple):
    cookie: int
    status: int
    result: int
    flags: int = 0


@dataclass(frozen=True)
class DeviceInfo:
    dev_class: int
    abi_version: str
    num_queues: int
    ring_entries: int
    generation: int
    region_size: int
    arena_size: int
    features_offered: int
    features_accepted: int
    status: list[str]
    dev_error: int
    name: str
    backend: str
    algorithms: list[str]
    max_sessions: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "class": DevClass(self.dev_class).name.lower() if self.dev_class in DevClass._value2member_map_
            else self.dev_class,
            "abi_version": self.abi_version,
            "name": self.name,
            "backend": self.backend,
            "num_queues": self.num_queues,
            "ring_entries": self.ring_entries,
            "region_size": self.region_size,
            "arena_size": self.arena_size,
            "generation": self.generation,
            "status": self.status,
            "features_offered": feature_names(self.features_offered, self.dev_class),
            "features_accepted": feature_names(self.features_accepted, self.dev_class),
            "algorithms": self.algorithms,
            "max_sessions": self.max_sessions,
        }


# The exception of each non-OK status (tests/test_errors.py checks that every status has its own).
_STATUS_ERRORS: dict[int, type[errors.OpError]] = {
    Status.INVALID: errors.InvalidOpError,
    Status.AUTH_FAILED: errors.AuthenticationError,
    Status.NO_SESSION: errors.UnknownSessionError,
    Status.NOT_SUPPORTED: errors.UnsupportedOpError,
    Status.NO_SPACE: errors.OutputTooSmallError,
    Status.NO_RESOURCES: errors.NoResourcesError,
    Status.RETRY: errors.RetryError,
    Status.BAD_DATA: errors.CorruptDataError,
    Status.DEVICE_ERROR: errors.DeviceOpError,
    Status.LIMIT: errors.LimitError,
    Status.QUOTA: errors.QuotaError,
}

# What to do next, where the status alone does not say it.
_STATUS_HINTS: dict[int, str] = {
    Status.RETRY: "not executed: submit it again",
    Status.QUOTA: "not executed: submit it again later",
}


def raise_for_status(status: int, result: int, what: str) -> None:
    """Raise the exception matching a non-OK op status: a subclass of ``errors.OpError`` of its
    own for each status (``errors.OpError`` itself for a status this library does not know)."""
    if status == Status.OK:
        return
    text = ffi.string(lib.synth_status_str(status)).decode()
    hint = _STATUS_HINTS.get(status)
    msg = f"{what}: {text} ({hint})" if hint else f"{what}: {text}"
    if status == Status.NO_SPACE:
        raise errors.OutputTooSmallError(status, f"{msg} ({result} bytes needed)", result)
    raise _STATUS_ERRORS.get(status, errors.OpError)(status, msg)


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise errors.from_errno(rc, what)
    return rc


def pci_scan(limit: int = 64, dev_class: int = 0) -> list[str]:
    """PCI addresses of the synthetic devices on this (virtual) machine's bus; with ``dev_class``
    (a DevClass), only those of that class (read from each header: nothing is opened)."""
    bdfs = ffi.new("char[][16]", limit)
    n = _check(lib.synth_pci_scan_class(bdfs, limit, int(dev_class)), "scanning the PCI bus")
    return [ffi.string(bdfs[i]).decode() for i in range(min(n, limit))]


class Device:
    """An open synthetic device. Close it (or use ``with``) to release its sessions."""

    def __init__(self, handle: Any, where: str) -> None:
        self._h = handle
        self.where = where
        info = self.info()
        self._queues = [Queue(self, i) for i in range(info.num_queues)]

    @classmethod
    def open(
        cls,
        path: str | None = None,
        *,
        pci: str | None = None,
        features: int = 0,
        timeout: float = 5.0,
    ) -> Device:
        """Open by region path or by PCI address (exactly one). ``features`` = 0 takes every
        feature the library knows; ``timeout`` bounds the wait for the backend's handshake."""
        if (path is None) == (pci is None):
            raise errors.ValueError("give exactly one of a region path or a PCI address")
        opts = ffi.new("struct synth_open_opts *")
        opts.features = features
        opts.timeout_ms = max(1, int(timeout * 1000))
        out = ffi.new("struct synth_dev **")
        if path is not None:
            rc = lib.synth_dev_open_path(path.encode(), opts, out)
            where = path
        else:
            assert pci is not None
            rc = lib.synth_dev_open_pci(pci.encode(), opts, out)
            where = f"PCI {pci}"
        _check(rc, f"opening device {where}")
        return cls(ffi.gc(out[0], lib.synth_dev_close), where)

    def close(self) -> None:
        if self._h is not None:
            ffi.release(self._h)
            self._h = None

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def handle(self) -> Any:
        if self._h is None:
            raise errors.DeviceError(f"device {self.where} is closed")
        return self._h

    def info(self) -> DeviceInfo:
        i = ffi.new("struct synth_dev_info *")
        lib.synth_dev_get_info(self.handle, i)
        algs = [ALG_INFO[a].label for a in Alg if i.crypto_alg_mask & (1 << a)]
        return DeviceInfo(
            dev_class=i.dev_class,
            abi_version=f"{i.abi_major}.{i.abi_minor}",
            num_queues=i.num_queues,
            ring_entries=i.ring_entries,
            generation=i.generation,
            region_size=i.region_size,
            arena_size=i.arena_size,
            features_offered=i.features_offered,
            features_accepted=i.features_accepted,
            status=dev_status_names(i.dev_status),
            dev_error=i.dev_error,
            name=ffi.string(i.name).decode(errors="replace"),
            backend=ffi.string(i.backend).decode(errors="replace"),
            algorithms=algs,
            max_sessions=i.crypto_max_sessions,
        )

    @property
    def needs_reset(self) -> bool:
        return bool(lib.synth_dev_needs_reset(self.handle))

    def reset(self) -> None:
        """New driver epoch: the backend drops this device's sessions and in-flight ops."""
        _check(lib.synth_dev_reset(self.handle), f"resetting device {self.where}")
        for q in self._queues:
            q._buffers.clear()

    def queue(self, index: int = 0) -> Queue:
        if not 0 <= index < len(self._queues):
            raise errors.ValueError(f"queue {index} out of range (device has {len(self._queues)})")
        return self._queues[index]


class Buffer:
    """A zero-copy buffer in a queue's arena."""

    def __init__(self, queue: Queue, offset: int, size: int) -> None:
        self.queue = queue
        self.offset = offset
        self.size = size

    @property
    def view(self) -> memoryview:
        ptr = lib.synth_buf_ptr(self.queue.handle, self.offset)
        return memoryview(ffi.buffer(ptr, self.size))

    def write(self, data: bytes | bytearray | memoryview, at: int = 0) -> None:
        if at < 0 or at + len(data) > self.size:
            raise errors.ValueError(f"{len(data)} bytes at {at} do not fit a {self.size}-byte buffer")
        self.view[at : at + len(data)] = data

    def read(self, length: int | None = None, at: int = 0) -> bytes:
        n = self.size - at if length is None else length
        if at < 0 or n < 0 or at + n > self.size:
            raise errors.ValueError(f"{n} bytes at {at} are outside a {self.size}-byte buffer")
        return bytes(self.view[at : at + n])

    def free(self) -> None:
        self.queue.free(self)


class Queue:
    """One queue pair of a device: its rings and its arena. Use from one thread at a time."""

    def __init__(self, device: Device, index: int) -> None:
        self.device = device
        self.index = index
        self._buffers: dict[int, int] = {}

    @property
    def handle(self) -> Any:
        return lib.synth_dev_queue(self.device.handle, self.index)

    @property
    def arena_size(self) -> int:
        return int(lib.synth_q_arena_size(self.handle))

    def alloc(self, size: int) -> Buffer:
        if not 0 < size <= 0xFFFFFFFF:
            raise errors.ValueError(f"buffer size {size} out of range")
        off = lib.synth_buf_alloc(self.handle, size)
        if off < 0:
            raise errors.from_errno(off, f"allocating {size} bytes in the arena of queue {self.index}")
        self._buffers[off] = size
        return Buffer(self, off, size)

    def free(self, buf: Buffer) -> None:
        size = self._buffers.pop(buf.offset, None)
        if size is not None:
            lib.synth_buf_free(self.handle, buf.offset, size)

    @contextmanager
    def scratch(self, *sizes: int) -> Iterator[list[Buffer]]:
        bufs = [self.alloc(max(1, s)) for s in sizes]
        try:
            yield bufs
        finally:
            for b in bufs:
                self.free(b)

    # ---- rings ----

    @staticmethod
    def descs(items: Sequence[dict[str, Any]]) -> Any:
        """Build a C array of descriptors from dicts of field values (missing fields are 0)."""
        arr = ffi.new("struct synth_desc[]", len(items))
        for i, fields in enumerate(items):
            for k, v in fields.items():
                if k == "arg":
                    for j, a in enumerate(v):
                        arr[i].arg[j] = a
                else:
                    setattr(arr[i], k, v)
        return arr

    def submit(self, descs: Any, n: int | None = None) -> int:
        """Submit a C array of descriptors (see ``descs``); returns how many were taken."""
        count = len(descs) if n is None else n
        return int(lib.synth_q_submit_burst(self.handle, descs, count))

    def poll(self, max_n: int = 64) -> list[Completion]:
        cpl = ffi.new("struct synth_cpl[]", max_n)
        n = lib.synth_q_poll_burst(self.handle, cpl, max_n)
        return [Completion(cpl[i].cookie, cpl[i].status, cpl[i].result, cpl[i].flags) for i in range(n)]

    @property
    def inflight(self) -> int:
        return int(lib.synth_q_inflight(self.handle))

    def wait(self, timeout: float = 5.0) -> None:
        _check(lib.synth_q_wait(self.handle, max(1, int(timeout * 1000))), f"waiting on queue {self.index}")

    def drain(self, count: int, timeout: float = 5.0) -> list[Completion]:
        """Wait for and return ``count`` completions."""
        out: list[Completion] = []
        while len(out) < count:
            self.wait(timeout)
            out.extend(self.poll(count - len(out)))
        return out

    def exec(self, fields: dict[str, Any], timeout: float = 5.0) -> Completion:
        """Submit one descriptor and wait for its completion (nothing else may be in flight)."""
        d = self.descs([fields])
        c = ffi.new("struct synth_cpl *")
        _check(lib.synth_q_exec(self.handle, d, c, max(1, int(timeout * 1000))), f"queue {self.index}")
        return Completion(c.cookie, c.status, c.result, c.flags)

    def nop(self) -> None:
        c = self.exec({"opcode": Op.NOP})
        raise_for_status(c.status, c.result, "nop")

    # ---- crypto ----

    def session(self, alg: Alg | str, key: bytes, tag_len: int | None = None, *, iv_gen: bool = False,
                mac_no_iv: bool = False) -> CryptoSession:
        """Create a crypto session (security association) on this device. With iv_gen the device
        chooses every encryption's IV (salt || counter) and never repeats one, restarts included.
        With mac_no_iv (AES-256-CBC + HMAC-SHA-256) the tag covers AAD || ciphertext, not the IV."""
        return CryptoSession.create(self, alg, key, tag_len, iv_gen=iv_gen, mac_no_iv=mac_no_iv)


class CryptoSession:
    """A crypto session: algorithm and key held by the backend, named by an id."""

    def __init__(self, queue: Queue, sid: int, alg: Alg, tag_len: int, iv_gen: bool = False) -> None:
        self.queue = queue
        self.id = sid
        self.alg = alg
        self.iv_len = ALG_INFO[alg].iv_len
        self.tag_len = tag_len
        self.iv_gen = iv_gen

    @classmethod
    def create(cls, queue: Queue, alg: Alg | str, key: bytes, tag_len: int | None = None, *,
               iv_gen: bool = False, mac_no_iv: bool = False) -> CryptoSession:
        a = Alg.parse(alg) if isinstance(alg, str) else Alg(alg)
        info = ALG_INFO[a]
        tag = info.default_tag if tag_len is None else tag_len
        if len(key) not in info.key_sizes:
            raise errors.ValueError(
                f"{info.label} takes a key of {_sizes(info.key_sizes)} bytes, got {len(key)}"
            )
        if tag not in info.tag_sizes:
            raise errors.ValueError(f"{info.label} takes a tag of {_sizes(info.tag_sizes)} bytes, got {tag}")
        p = ffi.new("struct synth_crypto_session_params *")
        p.alg = a
        p.key_len = len(key)
        p.iv_len = info.iv_len
        p.tag_len = tag
        p.flags = (lib.SYNTH_CRYPTO_SF_IV_GEN if iv_gen else 0) | (lib.SYNTH_CRYPTO_SF_MAC_NO_IV if mac_no_iv else 0)
        ffi.memmove(p.key, key, len(key))
        sid = ffi.new("uint32_t *")
        rc = lib.synth_crypto_session_create(queue.handle, p, sid)
        ffi.memmove(p.key, b"\0" * len(key), len(key))
        if rc < 0:
            raise errors.from_errno(rc, f"creating a {info.label} session")
        raise_for_status(rc, 0, f"creating a {info.label} session")
        return cls(queue, int(sid[0]), a, tag, iv_gen)

    def destroy(self) -> None:
        rc = lib.synth_crypto_session_destroy(self.queue.handle, self.id)
        if rc < 0:
            raise errors.from_errno(rc, f"destroying session {self.id:#x}")
        raise_for_status(rc, 0, f"destroying session {self.id:#x}")

    def __enter__(self) -> CryptoSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def _check_iv(self, iv: bytes) -> None:
        if len(iv) != self.iv_len:
            raise errors.ValueError(f"{self.alg.label} takes a {self.iv_len}-byte IV, got {len(iv)}")

    def op_at(
        self,
        op: Op,
        src: Buffer,
        dst: Buffer | None,
        length: int,
        *,
        iv: Buffer | None,
        tag: Buffer,
        aad: Buffer | None = None,
        aad_len: int = 0,
        src_at: int = 0,
        dst_at: int = 0,
    ) -> None:
        """Zero-copy op over arena buffers; raises on a non-OK status."""
        d = {
            "opcode": op,
            "session": self.id,
            "src_off": src.offset + src_at,
            "src_len": length,
            "dst_off": (dst.offset + dst_at) if dst is not None else src.offset + src_at,
            "dst_len": length,
            "aad_off": aad.offset if aad is not None else 0,
            "aad_len": aad_len,
            "iv_off": iv.offset if iv is not None else 0,
            "tag_off": tag.offset,
        }
        c = self.queue.exec(d)
        raise_for_status(c.status, c.result, f"{op.name.lower()} with {self.alg.label}")

    def encrypt(self, data: bytes, iv: bytes = b"", aad: bytes = b"") -> tuple[bytes, bytes]:
        """Encrypt ``data`` (or, for HMAC, authenticate it); returns (ciphertext, tag)."""
        self._check_iv(iv)
        q = self.queue
        with q.scratch(len(data), len(aad), len(iv), self.tag_len) as (buf, abuf, ivbuf, tbuf):
            buf.write(data)
            abuf.write(aad)
            ivbuf.write(iv)
            self.op_at(Op.ENCRYPT, buf, buf, len(data), iv=ivbuf, tag=tbuf, aad=abuf, aad_len=len(aad))
            out = b"" if self.alg == Alg.HMAC_SHA256 else buf.read(len(data))
            return out, tbuf.read(self.tag_len)

    def seal(self, data: bytes, aad: bytes = b"") -> tuple[bytes, bytes, bytes]:
        """IV_GEN sessions: encrypt with the next IV the device chooses; returns (iv, ciphertext, tag)."""
        if not self.iv_gen:
            raise errors.ValueError("seal() needs a session created with iv_gen=True; use encrypt(data, iv)")
        q = self.queue
        with q.scratch(len(data), len(aad), self.iv_len, self.tag_len) as (buf, abuf, ivbuf, tbuf):
            buf.write(data)
            abuf.write(aad)
            self.op_at(Op.ENCRYPT, buf, buf, len(data), iv=ivbuf, tag=tbuf, aad=abuf, aad_len=len(aad))
            return ivbuf.read(self.iv_len), buf.read(len(data)), tbuf.read(self.tag_len)

    def decrypt(self, data: bytes, tag: bytes, iv: bytes = b"", aad: bytes = b"") -> bytes:
        """Verify ``tag`` and decrypt; raises AuthenticationError if the tag does not verify."""
        self._check_iv(iv)
        if len(tag) != self.tag_len:
            raise errors.ValueError(f"this session takes a {self.tag_len}-byte tag, got {len(tag)}")
        q = self.queue
        with q.scratch(len(data), len(aad), len(iv), self.tag_len) as (buf, abuf, ivbuf, tbuf):
            buf.write(data)
            abuf.write(aad)
            ivbuf.write(iv)
            tbuf.write(tag)
            self.op_at(Op.DECRYPT, buf, buf, len(data), iv=ivbuf, tag=tbuf, aad=abuf, aad_len=len(aad))
            return b"" if self.alg == Alg.HMAC_SHA256 else buf.read(len(data))


def _sizes(values: Iterable[int]) -> str:
    v = sorted(values)
    if len(v) > 2 and v[-1] - v[0] == len(v) - 1:
        return f"{v[0]}..{v[-1]}"
    return " or ".join(str(x) for x in v)


__all__ = [
    "Alg",
    "Buffer",
    "Completion",
    "CryptoSession",
    "DevClass",
    "Device",
    "DeviceInfo",
    "Op",
    "Queue",
    "Status",
    "pci_scan",
    "raise_for_status",
]

