# SPDX-License-Identifier: Apache-2.0
"""Quotas hold a device to what they say (docs/daemon.md, [quotas] and domain.create's `quotas`):
`bytes_per_s` to a byte rate (a lower bound on elapsed time that the quota guarantees, with a
margin: the one kind of time bound a test may assert), `inflight` to a number of descriptors taken
from a queue at once (seen from the guest, in the ring indices), and the daemon's configured
defaults apply to a device that sets none."""

from __future__ import annotations

import hashlib
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libvirt_synth.abi import Alg, DevClass, Op, Status
from libvirt_synth.guest import Completion, CryptoSession, Device, Queue
from libvirt_synth.host.device import HostDevice, Worker

from daemonctl import running
from rawregion import RawRegion

KEY = hashlib.sha256(b"libvirt-synth test_quotas").digest()
UUID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"


# ---- bytes_per_s ----

RATE = 4 << 20   # bytes per second
OP = 32 << 10    # bytes per encryption
OPS = 96         # 3 MiB


def test_bytes_per_s_holds_a_device_to_its_rate(region_dir, worker: Worker) -> None:  # type: ignore[no-untyped-def]
    """The bucket holds at most max(RATE / 1000, one op) of credit and charges each op after it
    ran, so the last op cannot start before (OPS * OP - OP - credit) / RATE = 0.73 s."""
    dev = HostDevice.create(str(region_dir / "c"), DevClass.CRYPTO, size=4 << 20, quota=(("bytes_per_s", RATE),))
    worker.add(dev)
    try:
        data = hashlib.shake_256(b"test_quotas payload").digest(OP)
        with Device.open(dev.path) as g, g.queue(0).session(Alg.AES256_GCM, KEY) as s:
            t0 = time.monotonic()
            for i in range(OPS):
                iv = i.to_bytes(12, "big")
                ct, tag = s.encrypt(data, iv)
                if i % 16 == 0:  # the work is real: check it against OpenSSL now and then
                    assert ct + tag == AESGCM(KEY).encrypt(iv, data, None)
            elapsed = time.monotonic() - t0
        bound = (OPS * OP - 2 * OP) / RATE
        assert elapsed > 0.8 * bound, f"{OPS} x {OP} bytes at {RATE} B/s took {elapsed:.2f} s (< {bound:.2f} s)"
        st = dev.stats()
        assert st.throttled > 0, "the quota never held the device back"
        assert st.bytes_in == OPS * OP and st.by_status.get("ok") == OPS + 2  # and session create, destroy
    finally:
        dev.destroy()


# ---- inflight ----

def most_taken_at_once(raw: RawRegion, q: Queue, s: CryptoSession, n: int = 16, size: int = 256 << 10) -> int:
    """Submit n encryptions at once and, until all complete, watch the ring indices: the most
    descriptors the host had taken (SQ cons) and not completed (CQ prod). cons is read before
    prod, so a sample never exceeds what was true when cons was read (it may be negative)."""
    bufs = [(q.alloc(size), q.alloc(12), q.alloc(16)) for _ in range(n)]
    sq, _, cq, _, _ = raw.queue(0)
    try:
        descs = q.descs([{"cookie": i, "opcode": Op.ENCRYPT, "session": s.id, "src_off": d.offset,
                          "src_len": size, "dst_off": d.offset, "dst_len": size, "iv_off": iv.offset,
                          "tag_off": tag.offset} for i, (d, iv, tag) in enumerate(bufs)])
        assert q.submit(descs) == n
        most, done = 0, list[Completion]()
        deadline = time.monotonic() + 30
        while len(done) < n:
            assert time.monotonic() < deadline, f"{len(done)} of {n} completed"
            cons = sq.cons
            taken = (cons - cq.prod) & 0xFFFFFFFF
            if taken < 1 << 31:  # else prod moved past the cons read earlier: nothing to learn
                most = max(most, taken)
            done += q.poll(n)
        assert sorted(c.cookie for c in done) == list(range(n)) and all(c.status == Status.OK for c in done)
        return most
    finally:
        for bs in bufs:
            for b in bs:
                b.free()


def test_inflight_bounds_the_descriptors_taken_at_once(region_dir, worker: Worker) -> None:  # type: ignore[no-untyped-def]
    dev = HostDevice.create(str(region_dir / "c"), DevClass.CRYPTO, size=16 << 20, quota=(("inflight", 2),))
    worker.add(dev)
    raw = RawRegion(dev.path)
    try:
        with Device.open(dev.path) as g, g.queue(0).session(Alg.AES256_GCM, KEY) as s:
            q = g.queue(0)
            for _ in range(3):
                assert most_taken_at_once(raw, q, s) <= 2, "the host took more than inflight=2 at once"
            # The same watch sees more without the quota (it can fail): the host takes a burst.
            dev.set_quota({})
            deadline = time.monotonic() + 30
            while most_taken_at_once(raw, q, s) <= 2:
                assert time.monotonic() < deadline, "without a quota the host never took more than 2 at once"
            dev.set_quota({"inflight": 2})
            assert most_taken_at_once(raw, q, s) <= 2, "a quota set while served applies"
    finally:
        raw.close()
        dev.destroy()


# ---- defaults from the configuration file ----

def test_configured_default_quotas_apply_to_a_device_that_sets_none() -> None:
    config = "[quotas]\ninflight = 2\n"
    with running("synth-quotas-", config=config) as d:
        d.call("domain.create", uuid=UUID, name="q", devices=[{"name": "q-c", "class": "crypto", "size": 16 << 20}])
        shown = d.call("device.show", name="q-c")
        assert shown["quotas"] == {"inflight": 2}, shown["quotas"]
        path = str(d.regions / "q-c")
        raw = RawRegion(path)
        try:
            with Device.open(path) as g, g.queue(0).session(Alg.AES256_GCM, KEY) as s:
                for _ in range(3):
                    assert most_taken_at_once(raw, g.queue(0), s) <= 2, "the configured inflight=2 did not apply"
        finally:
            raw.close()
        d.call("domain.destroy", uuid=UUID)
