# SPDX-License-Identifier: Apache-2.0
"""Restart survival: kill -9 the backend while guests are busy. On restart it re-attaches every
live region; sessions keep working without re-keying; operations in flight complete exactly once
or come back RETRY; no guest hangs; no AES-GCM (key, IV) pair is used twice."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from waiting import until

from libvirt_synth.abi import Alg, DevClass, Op, Status
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, HostDeviceSpec, Worker

from daemonctl import Daemon
from rawregion import RawRegion

UUID = "0e2d4c6a-8b1f-4d3e-a5c7-9f1b3d5e7a90"
KEY = bytes(range(32))


@pytest.fixture
def base() -> Iterator[pathlib.Path]:
    d = pathlib.Path(tempfile.mkdtemp(prefix="synth-restart-", dir="/dev/shm"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sessions_survive_a_reattach_through_the_vault(base: pathlib.Path) -> None:
    vault = str(base / "dev.vault")
    spec = HostDeviceSpec(path=str(base / "dev"), dev_class=DevClass.CRYPTO, vault=vault)
    with Worker() as w:
        dev = HostDevice.from_spec(spec)
        w.add(dev)
        g = Device.open(spec.path)
        q = g.queue(0)
        s = q.session(Alg.AES256_GCM, KEY)
        gen = q.session(Alg.AES128_GCM, KEY[:16], iv_gen=True)
        iv1, ct1, tag1 = gen.seal(b"before")
        assert os.stat(vault).st_mode & 0o777 == 0o600
        assert KEY not in pathlib.Path(spec.path).read_bytes(), "keys never stay in the region"
        dev.destroy(unlink=False)  # the backend goes away; region and vault stay
        dev = HostDevice.from_spec(spec, attach=True)
        w.add(dev)
        try:
            assert dev.stats().restored_sessions == 2
            ct, tag = s.encrypt(b"after the restart", bytes(12), b"hdr")  # same id, no re-keying
            assert ct + tag == AESGCM(KEY).encrypt(bytes(12), b"after the restart", b"hdr")
            iv2, ct2, tag2 = gen.seal(b"after")
            assert iv2[:4] == iv1[:4] and int.from_bytes(iv2[4:], "big") > int.from_bytes(iv1[4:], "big")
            assert AESGCM(KEY[:16]).decrypt(iv2, ct2 + tag2, b"") == b"after"
            g.close()
        finally:
            dev.destroy()
    assert not os.path.exists(vault), "destroying the device removes its vault"


def test_a_driver_reset_clears_the_vault(base: pathlib.Path) -> None:
    vault = str(base / "dev.vault")
    spec = HostDeviceSpec(path=str(base / "dev"), dev_class=DevClass.CRYPTO, vault=vault)
    with Worker() as w:
        dev = HostDevice.from_spec(spec)
        w.add(dev)
        g = Device.open(spec.path)
        g.queue(0).session(Alg.AES256_GCM, KEY)
        g.reset()
        assert dev.stats().sessions == 0
        dev.destroy(unlink=False)
        dev = HostDevice.from_spec(spec, attach=True)
        w.add(dev)
        assert dev.stats().restored_sessions == 0
        assert KEY not in pathlib.Path(vault).read_bytes(), "a destroyed session's key is wiped"
        g.close()
        dev.destroy()


class Traffic(threading.Thread):
    """A guest encrypting with an IV_GEN session as fast as it can, in bursts, through restarts.
    Every op must complete once: OK (checked) or RETRY (resubmitted). The IV buffers are zeroed
    before each burst, so whatever IV the host wrote is recorded, OK or RETRY: an op the crashed
    backend had started wrote its IV into the guest's buffer even though it comes back RETRY, and
    that (key, IV) pair must never be handed out again."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.dev = Device.open(path)
        self.q = self.dev.queue(0)
        self.s = self.q.session(Alg.AES256_GCM, KEY, iv_gen=True)
        self.stop = threading.Event()
        self.ivs: list[bytes] = []       # every IV the host wrote, OK and RETRY completions alike
        self.retry_ivs = 0               # how many of them came with RETRY
        self.ok = self.retried = 0
        self.ok_since_retry = 0          # OK completions since the last RETRY: the restarted backend serves
        self.error: BaseException | None = None
        self.size = 1 << 20

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the test
            self.error = e

    def _run(self) -> None:
        n = 8
        bufs = [(self.q.alloc(self.size), self.q.alloc(12), self.q.alloc(16)) for _ in range(n)]
        for data, _, _ in bufs:
            data.write(bytes(self.size))
        aead = AESGCM(KEY)
        while not self.stop.is_set():
            descs = self.q.descs([{"cookie": i, "opcode": Op.ENCRYPT, "session": self.s.id, "src_off": d.offset,
                                   "src_len": self.size, "dst_off": d.offset, "dst_len": self.size,
                                   "iv_off": iv.offset, "tag_off": tag.offset} for i, (d, iv, tag) in enumerate(bufs)])
            for d, iv, _ in bufs:
                d.write(bytes(self.size))
                iv.write(bytes(12))  # a counter starts at 1: an IV the host wrote is never all zero
            assert self.q.submit(descs) == n
            done = self.q.drain(n, timeout=20)  # a hang fails here
            assert sorted(c.cookie for c in done) == list(range(n)), "each op completes exactly once"
            for c in sorted(done, key=lambda c: c.cookie):  # the host runs a burst in ring order
                data, iv, tag = bufs[c.cookie]
                ivb = iv.read()
                if c.status == Status.RETRY:
                    self.retried += 1
                    self.ok_since_retry = 0
                    if ivb != bytes(12):  # the crashed backend had started it: its IV is spent
                        self.ivs.append(ivb)
                        self.retry_ivs += 1
                    continue
                assert c.status == Status.OK, c
                assert ivb != bytes(12), "an IV_GEN encryption completed OK without an IV"
                self.ivs.append(ivb)
                self.ok_since_retry += 1
                if self.ok % 16 == 0:  # check the cryptography now and then (it costs)
                    assert data.read() + tag.read() == aead.encrypt(ivb, bytes(self.size), b"")
                self.ok += 1


@pytest.mark.slow
def test_kill_9_while_busy(base: pathlib.Path) -> None:
    daemons = [Daemon(base).start()]
    try:
        kill_9_while_busy(base, daemons)
    finally:
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()


def in_flight(sq: Any, cq: Any) -> int:
    """Descriptors the host took from the SQ and did not complete in the CQ. Exact once the
    backend is dead: only a backend moves `sq.cons` and `cq.prod`."""
    return int((sq.cons - cq.prod) & 0xFFFFFFFF)


def kill_9_while_busy(base: pathlib.Path, daemons: list[Daemon]) -> None:
    d = daemons[0]
    d.call("domain.create", uuid=UUID, name="busy",
           devices=[{"name": "busy-crypto", "class": "crypto", "size": 32 << 20}])
    t = Traffic(str(d.regions / "busy-crypto"))
    t.start()
    raw = RawRegion(str(d.regions / "busy-crypto"))
    sq, _, cq, _, _ = raw.queue(0)
    kills: list[int] = []      # ops in flight at each kill that caught some
    retried: list[int] = []    # RETRY completions each restarted backend wrote
    try:
        while len(kills) < 3:
            assert len(daemons) < 20, f"20 kills, and only {len(kills)} caught operations in flight"
            # The guest must have had OK completions from this backend (it serves), and the
            # backend must hold taken-but-not-completed operations: then kill it.
            until(lambda: t.ok_since_retry >= 8 or t.error is not None, "the restarted backend never served")
            until(lambda: in_flight(sq, cq) >= 1 or t.error is not None, "the backend never took operations")
            assert t.error is None, repr(t.error)
            d.kill9()
            n = in_flight(sq, cq)  # the dead backend took these and never completed them
            d = Daemon(base).start()
            daemons.append(d)
            st = d.call("stats", name="busy-crypto")["devices"]["busy-crypto"]
            retried.append(st["retried"])  # written at attach, before any new op is taken
            if n:
                kills.append(n)
                assert st["retried"] >= 1, (n, st["retried"])
        until(lambda: t.ok_since_retry >= 8 or t.error is not None, "the last backend never served")
    finally:
        t.stop.set()
        t.join(30)
    assert not t.is_alive(), "the guest hung"
    assert t.error is None, repr(t.error)
    assert t.retried == sum(retried), "each op the dead backends held came back RETRY once"
    assert t.retry_ivs >= 1, "no RETRY op had its IV written: the IVs of interrupted ops were not checked"
    assert len(set(t.ivs)) == len(t.ivs), "an AES-GCM (key, IV) pair was used twice"
    counters = [int.from_bytes(iv[4:], "big") for iv in t.ivs]
    assert counters == sorted(counters), "IVs only go forward, across restarts too"
    listing = d.call("devices.list")
    assert listing[0]["generation"] == len(daemons) and listing[0]["sessions"] == 1
    t.dev.close()
    raw.close()
    d.call("domain.destroy", uuid=UUID)
    d.stop()
