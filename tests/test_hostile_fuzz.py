# SPDX-License-Identifier: Apache-2.0
"""Randomised hostility: Hypothesis-generated descriptors and ring indices, a process racing the
backend by rewriting descriptors while it reads them, and a flooded neighbour on a shared worker."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import until

from libvirt_synth import errors
from libvirt_synth._native import lib
from libvirt_synth.abi import Alg, DevClass, Op, Status
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, Worker

from rawregion import RawRegion
from test_hostile import check_still_serves

PEER = pathlib.Path(__file__).parent / "hostile_peer.py"
KEY = bytes(range(32))

u32 = st.one_of(
    st.integers(0, 2**32 - 1),
    st.sampled_from([0, 1, 8, 12, 15, 16, 17, 63, 64, 264, 4095, 4096, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]),
    st.integers(0, 1 << 22),  # near and around the real arena size
)
opcodes = st.one_of(st.sampled_from([int(o) for o in Op]), st.integers(0, 0xFFFF))
descriptor = st.fixed_dictionaries({
    "cookie": st.integers(0, 2**64 - 1),
    "opcode": opcodes,
    "flags": st.one_of(st.just(0), st.integers(0, 0xFFFF)),
    "session": u32,
    "src_off": u32, "src_len": u32, "dst_off": u32, "dst_len": u32,
    "aad_off": u32, "aad_len": u32, "iv_off": u32, "tag_off": u32,
    "arg": st.lists(u32, min_size=3, max_size=3),
    "seq": u32,  # the library overwrites it
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(descs=st.lists(descriptor, min_size=1, max_size=64), with_session=st.booleans())
def test_random_descriptors_get_a_status_each(guest: Device, served: HostDevice, descs, with_session: bool) -> None:
    q = guest.queue(0)
    s = q.session(Alg.AES256_GCM, KEY) if with_session else None
    if s is not None:  # aim some of them at a live session
        for i, d in enumerate(descs):
            if i % 3 == 0:
                d["session"] = s.id
    arr = q.descs(descs)
    assert q.submit(arr) == len(descs)
    got = q.drain(len(descs))
    assert [c.cookie for c in got] == [d["cookie"] for d in descs], "completions in order, cookies echoed"
    for c, d in zip(got, descs, strict=True):
        assert 0 <= c.status < lib.SYNTH_ST_MAX
        if d["flags"]:
            assert c.status == Status.INVALID  # no flags are defined yet
        elif d["opcode"] not in [int(o) for o in Op]:
            assert c.status == Status.NOT_SUPPORTED
    for c, d in zip(got, descs, strict=True):  # sessions a random op created must not leak
        if d["opcode"] == Op.SESSION_CREATE and c.status == Status.OK:
            q.exec({"opcode": Op.SESSION_DESTROY, "session": c.result})
    if s is not None:
        with contextlib.suppress(errors.UnknownSessionError):  # a random SESSION_DESTROY may have hit it
            s.destroy()
    assert served.stats().ring_errors == 0
    check_still_serves(q)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sq_prod=st.integers(0, 2**32 - 1), sq_cons=st.integers(0, 2**32 - 1),
       cq_prod=st.integers(0, 2**32 - 1), cq_cons=st.integers(0, 2**32 - 1),
       header=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=32))
def test_random_ring_indices_and_header_bytes(guest: Device, served: HostDevice, worker: Worker, sq_prod: int,
                                               sq_cons: int, cq_prod: int, cq_cons: int, header) -> None:
    raw = RawRegion(served.path)
    sq, _, cq, _, _ = raw.queue(0)
    sq.prod, sq.cons, cq.prod, cq.cons = sq_prod, sq_cons, cq_prod, cq_cons
    for off, val in header:
        raw.map[off] = val
    passes = worker.stats()["passes"]
    until(lambda: worker.stats()["passes"] >= passes + 2, "the worker to poll the device twice")  # it saw them
    raw.close()
    # Whatever happened, a reset brings the device back (the layout the guest uses is its own copy).
    guest.reset()
    check_still_serves(guest.queue(0))
    check_still_serves(guest.queue(1))



def run_peer(mode: str, path: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(PEER), mode, path, str(seconds)], stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_racing_writer_flips_descriptors_while_backend_reads(guest: Device, served: HostDevice) -> None:
    q = guest.queue(0)
    statuses: dict[int, int] = {}
    bufs = [q.alloc(256) for _ in range(4)]
    s = q.session(Alg.AES256_GCM, KEY)  # before the scribbler runs: it could turn this op into anything
    raw = RawRegion(served.path)
    arena = raw.queue(0)[4]
    watched = slice(arena + max(b.offset + b.size for b in bufs), arena + 64 * 1024)  # it writes there, we do not
    calm = bytes(raw.map[watched])
    peer = run_peer("scribble", served.path, 3.0)
    until(lambda: bytes(raw.map[watched]) != calm, "the scribbler to start writing")
    raw.close()
    # The scribbler may turn one of our descriptors into a destroy of this very session.
    d = {"opcode": Op.ENCRYPT, "session": s.id, "src_off": bufs[0].offset, "src_len": 256,
         "dst_off": bufs[1].offset, "dst_len": 256, "aad_off": bufs[2].offset, "aad_len": 8,
         "iv_off": bufs[3].offset, "tag_off": bufs[3].offset + 64}
    batch = q.descs([d | {"cookie": i} for i in range(32)])
    ops = 0
    while peer.poll() is None:
        n = q.submit(batch)
        for c in q.drain(n, timeout=5):
            statuses[c.status] = statuses.get(c.status, 0) + 1
        ops += n
    with contextlib.suppress(errors.UnknownSessionError):
        s.destroy()
    out = json.loads(peer.communicate(timeout=10)[0])
    assert out["writes"] > 0 and ops > 0  # all ours ran between its first write and its exit
    assert set(statuses) <= set(range(lib.SYNTH_ST_MAX))
    assert served.stats().ring_errors == 0  # the scribbler never touched the indices
    check_still_serves(q)


@pytest.mark.slow
def test_flooded_neighbour_on_the_same_worker(region_dir: pathlib.Path) -> None:
    with Worker(spin_us=200, max_sleep_us=200) as w:
        bad = HostDevice.create(str(region_dir / "flooded"), DevClass.CRYPTO)
        good = HostDevice.create(str(region_dir / "victim"), DevClass.CRYPTO)
        w.add(bad)
        w.add(good)
        try:
            peer = run_peer("flood", bad.path, 4.0)
            until(lambda: bad.stats().ops > 0, "the flood to start")
            checked, flood_ops = 0, [bad.stats().ops]
            with Device.open(good.path) as g:
                q = g.queue(0)
                with q.session(Alg.AES256_GCM, KEY) as s:
                    aead = AESGCM(KEY)
                    while peer.poll() is None:
                        data, iv = os.urandom(200), os.urandom(12)
                        ct, tag = s.encrypt(data, iv, b"hdr")
                        assert ct + tag == aead.encrypt(iv, data, b"hdr")
                        checked += 1
                        flood_ops.append(bad.stats().ops)
            out = json.loads(peer.communicate(timeout=10)[0])
            assert out["submitted"] > 0 and out["index_attacks"] > 0
            assert checked > 0 and flood_ops[-1] > flood_ops[0], "the neighbour was served while we checked"
            assert good.stats().ring_errors == 0 and good.stats().resets <= 2  # our open and close only
            assert bad.stats().ring_errors > 0
        finally:
            bad.destroy()
            good.destroy()
