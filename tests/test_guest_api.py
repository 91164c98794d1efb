# SPDX-License-Identifier: Apache-2.0
"""Guest library behaviour: opening (by path and by PCI address on a fake sysfs tree), errors,
feature negotiation, queues, arena buffers, reset."""

from __future__ import annotations

import errno
import os
import pathlib
import random
import time

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from libvirt_synth import errors
from libvirt_synth._native import lib
from libvirt_synth.abi import Alg, DevClass
from libvirt_synth.guest import CryptoSession, Device, pci_scan
from libvirt_synth.host import plugins
from libvirt_synth.host.device import HostDevice, Worker

from rawregion import RawRegion
from test_hostile import check_still_serves


def catalog_backend() -> str:
    """What a crypto device's header names as its backend: the plugin the catalog picks for each
    algorithm (a pin, else the available one of highest priority), in algorithm order, each once."""
    names: list[str] = []
    for choice in plugins.choices().values():
        if choice["plugin"] and choice["plugin"] not in names:
            names.append(choice["plugin"])
    return ",".join(names)


def test_info_describes_the_device(guest: Device, served: HostDevice) -> None:
    info = guest.info()
    assert info.dev_class == DevClass.CRYPTO
    assert info.abi_version == f"{lib.SYNTH_ABI_MAJOR}.{lib.SYNTH_ABI_MINOR}"
    assert info.num_queues == 2 and info.region_size == 4 << 20
    assert info.backend == catalog_backend() and info.name == "crypto0"  # the best plugin per algorithm
    assert info.status == ["ready"] and info.generation == 1
    assert set(info.algorithms) == {"aes-128-gcm", "aes-256-gcm", "chacha20-poly1305",
                                    "aes-256-cbc-hmac-sha256", "hmac-sha256"}
    assert info.features_accepted & lib.SYNTH_F_RING_V1
    d = info.as_dict()
    assert d["class"] == "crypto" and "sessions" in d["features_accepted"]


def test_open_errors(region_dir: pathlib.Path) -> None:
    with pytest.raises(errors.NotFoundError, match="opening device .*missing: No such file") as nf:
        Device.open(str(region_dir / "missing"))
    assert nf.value.errno == errno.ENOENT
    junk = region_dir / "junk"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises(errors.DeviceError, match="not a synthetic device"):
        Device.open(str(junk))
    with pytest.raises(errors.ValueError, match="exactly one of a region path or a PCI address"):
        Device.open()


def test_open_without_backend_times_out(region_dir: pathlib.Path) -> None:
    dev = HostDevice.create(str(region_dir / "orphan"), DevClass.CRYPTO)  # laid out, not served
    try:
        with pytest.raises(errors.TimeoutError, match="no backend"):
            Device.open(dev.path, timeout=0.2)
    finally:
        dev.destroy()


def test_unknown_abi_major_is_refused(served: HostDevice) -> None:
    raw = RawRegion(served.path)
    raw.hdr.abi_major = lib.SYNTH_ABI_MAJOR + 1
    raw.close()
    with pytest.raises(errors.NotSupportedError, match="ABI major"):
        Device.open(served.path)


def test_backend_parameter_errors(region_dir: pathlib.Path) -> None:
    p = str(region_dir / "x")
    with pytest.raises(errors.ValueError, match="power of two"):
        HostDevice.create(p, size=3 << 20)
    with pytest.raises(errors.ValueError, match="queues"):
        HostDevice.create(p, queues=0)
    with pytest.raises(errors.ValueError, match="ring entries"):
        HostDevice.create(p, ring_entries=100)
    with pytest.raises(errors.ValueError, match="64 queues of 4096 ring entries do not fit in 65536 bytes"):
        HostDevice.create(p, size=64 << 10, queues=64, ring_entries=4096)
    with pytest.raises(errors.NotFoundError, match="user 'no-such-user-here' .* does not exist") as nf:
        HostDevice.create(p, owner="no-such-user-here")
    assert nf.value.errno == errno.ENOENT
    d = HostDevice.create(p)
    try:
        st = os.stat(p)
        assert st.st_size == 4 << 20 and st.st_mode & 0o777 == 0o600
        with pytest.raises(errors.ValueError, match="File exists"):  # never clobbers an existing region
            HostDevice.create(p)
    finally:
        d.destroy()
    assert not os.path.exists(p)


def test_queues_are_independent(guest: Device, served: HostDevice) -> None:
    """Sessions belong to the device: one created on a queue serves ops submitted on the other, with
    its own key (checked against cryptography), and one destroyed through a queue is gone for both."""
    rng = random.Random(14)
    k0, k1 = rng.randbytes(32), rng.randbytes(32)
    iv, data, aad = rng.randbytes(12), rng.randbytes(300), rng.randbytes(20)
    q0, q1 = guest.queue(0), guest.queue(1)
    s0 = q0.session(Alg.AES256_GCM, k0)
    s1 = q1.session(Alg.CHACHA20_POLY1305, k1)
    before = [q["ops"] for q in served.stats().queues]
    s0_on_q1 = CryptoSession(q1, s0.id, s0.alg, s0.tag_len)
    s1_on_q0 = CryptoSession(q0, s1.id, s1.alg, s1.tag_len)
    ct, tag = s0_on_q1.encrypt(data, iv, aad)
    assert ct + tag == AESGCM(k0).encrypt(iv, data, aad)
    ct, tag = s1_on_q0.encrypt(data, iv, aad)
    assert ct + tag == ChaCha20Poly1305(k1).encrypt(iv, data, aad)
    assert s1.decrypt(ct, tag, iv, aad) == data  # and back on the queue that created it
    after = [q["ops"] for q in served.stats().queues]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 2], "each op ran on the queue it was sent to"
    s0_on_q1.destroy()
    with pytest.raises(errors.UnknownSessionError, match="unknown session"):
        s0.encrypt(data, iv)
    with pytest.raises(errors.ValueError, match="queue 2 out of range"):
        guest.queue(2)


def test_arena_allocator(guest: Device) -> None:
    q = guest.queue(0)
    size = q.arena_size
    a = q.alloc(100)
    b = q.alloc(1)
    assert a.offset % 64 == 0 and b.offset % 64 == 0 and b.offset >= a.offset + 100
    a.write(b"x" * 100)
    assert a.read(3) == b"xxx"
    with pytest.raises(errors.ValueError, match="101 bytes at 0 do not fit a 100-byte buffer"):
        a.write(b"y" * 101)
    a.free()
    b.free()
    whole = q.alloc(size)  # everything coalesced back into one extent
    with pytest.raises(errors.DeviceError, match="allocating 64 bytes in the arena") as full:
        q.alloc(64)
    assert full.value.errno == errno.ENOMEM
    whole.free()
    many = [q.alloc(4096) for _ in range(100)]
    for buf in many[::2]:
        buf.free()
    for buf in many[1::2]:
        buf.free()
    q.alloc(size).free()


def test_reset_drops_sessions_and_serves_again(guest: Device, served: HostDevice) -> None:
    s = guest.queue(0).session(Alg.AES256_GCM, bytes(32))
    assert served.stats().sessions == 1
    guest.reset()
    assert served.stats().sessions == 0
    with pytest.raises(errors.UnknownSessionError, match="unknown session"):
        s.encrypt(b"x", bytes(12))
    check_still_serves(guest.queue(0))


def make_fake_pci(root: pathlib.Path, bdf: str, vendor: str, device: str,
                  resource: pathlib.Path | None) -> pathlib.Path:
    """A PCI function in a fake sysfs tree, as the kernel shows one (BAR2 = ``resource2``)."""
    d = root / "bus" / "pci" / "devices" / bdf
    d.mkdir(parents=True)
    (d / "vendor").write_text(vendor + "\n")
    (d / "device").write_text(device + "\n")
    (d / "enable").write_text("1\n")
    if resource is not None:
        (d / "resource2").symlink_to(resource)
    return d


def test_pci_scan_and_open_on_a_fake_sysfs(region_dir: pathlib.Path, worker: Worker,
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """Inside a VM the device is BAR2 of PCI 1af4:1110; here a fake sysfs tree points resource2 at
    a region file, which exercises the same discovery and mapping code."""
    dev = HostDevice.create(str(region_dir / "pci-crypto"), DevClass.CRYPTO)
    worker.add(dev)
    plain = region_dir / "plain-ivshmem"
    plain.write_bytes(bytes(1 << 16))
    sysfs = tmp_path / "sys"
    make_fake_pci(sysfs, "0000:00:05.0", "0x1af4", "0x1110", pathlib.Path(dev.path))
    make_fake_pci(sysfs, "0000:00:06.0", "0x1af4", "0x1110", plain)  # ivshmem, not ours
    make_fake_pci(sysfs, "0000:00:01.0", "0x8086", "0x7000", None)  # something else
    monkeypatch.setenv("LIBVIRT_SYNTH_SYSFS", str(sysfs))
    try:
        assert pci_scan() == ["0000:00:05.0"]
        with Device.open(pci="0000:00:05.0") as g:
            assert g.info().name == "pci-crypto"
            check_still_serves(g.queue(0))
        with pytest.raises(errors.DeviceError, match="PCI 0000:00:01.0: No such device") as nodev:
            Device.open(pci="0000:00:01.0")  # not 1af4:1110
        assert nodev.value.errno == errno.ENODEV
        with pytest.raises(errors.DeviceError, match="not a synthetic device"):
            Device.open(pci="0000:00:06.0")
        with pytest.raises(errors.ValueError, match="PCI ../../etc: Invalid argument"):
            Device.open(pci="../../etc")
    finally:
        dev.destroy()


def test_worker_rejects_a_device_owned_by_another(region_dir: pathlib.Path) -> None:
    with Worker() as w1, Worker() as w2:
        d = HostDevice.create(str(region_dir / "owned"))
        try:
            w1.add(d)
            with pytest.raises(errors.BusyError, match="adding .*owned to a worker: another worker serves it") as busy:
                w2.add(d)
            assert busy.value.errno == errno.EBUSY
            with pytest.raises(errors.DeviceError, match="served by a worker; remove it first"):
                d.poll()
        finally:
            d.destroy()


def test_backend_reattach_bumps_generation_and_keeps_the_rings(region_dir: pathlib.Path) -> None:
    """A backend that restarts attaches to the live region: the driver keeps its rings (no reset)
    and sees the generation counter move."""
    path = str(region_dir / "restart")
    with Worker() as w:
        dev = HostDevice.create(path, DevClass.CRYPTO)
        w.add(dev)
        g = Device.open(path)
        g.queue(0).nop()
        assert g.info().generation == 1
        dev.destroy(unlink=False)  # the old backend goes away, the region stays
        dev2 = HostDevice.from_spec(dev.spec, attach=True)
        w.add(dev2)
        try:
            for _ in range(3):
                g.queue(0).nop()  # same driver epoch, same ring indices
            assert g.info().generation == 2
            assert dev2.stats().resets == 0 and dev2.stats().active
            g.close()
        finally:
            dev2.destroy()


def test_stats_histogram_and_queue_counters_add_up(guest: Device, served: HostDevice) -> None:
    t0 = time.monotonic_ns()
    s = guest.queue(1).session(Alg.AES256_GCM, bytes(32))
    for _ in range(300):
        s.encrypt(b"x" * 100, bytes(12))
    st = served.stats()
    assert sum(st.latency_ns.values()) == st.ops, "every op lands in exactly one service-time bucket"
    assert sum(q["ops"] for q in st.queues) == st.ops
    assert st.queues[1]["by_status"]["ok"] >= 301 and st.queues[0]["ops"] == 0
    assert 0 < st.latency_percentile(50) <= st.latency_percentile(99)
    # Every op here waits for its completion before the next is sent, so each burst holds one op and
    # its service time is both one histogram entry and one addition to busy_ns: busy time is at least
    # the sum of the lower bounds of the ops' buckets ([2^b, 2^(b+1)) ns; the first holds 0 too) and
    # at most the wall time spent.
    lower = sum((int(k) // 2 if int(k) > 2 else 0) * n for k, n in st.latency_ns.items())
    assert 0 < lower <= st.busy_ns <= (time.monotonic_ns() - t0), (lower, st.busy_ns)
