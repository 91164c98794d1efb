# SPDX-License-Identifier: Apache-2.0
"""A guest is untrusted: hostile descriptors end as error statuses, a broken ring protocol ends
as that one device marked NEEDS_RESET, and nothing reaches another device or the backend."""

from __future__ import annotations

import errno
import os
import pathlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from waiting import until

from libvirt_synth import errors
from libvirt_synth._native import ffi, lib
from libvirt_synth.abi import Alg, DevClass, Op, Status
from libvirt_synth.guest import Device, Queue
from libvirt_synth.host.device import HostDevice, Worker

from rawregion import RawRegion

KEY = bytes(range(32))
IV = bytes(12)


def check_still_serves(q: Queue) -> None:
    """A correct AES-256-GCM op still works and matches in-process OpenSSL."""
    data = os.urandom(100)
    with q.session(Alg.AES256_GCM, KEY) as s:
        ct, tag = s.encrypt(data, IV, b"aad")
    assert ct + tag == AESGCM(KEY).encrypt(IV, data, b"aad")


@pytest.fixture
def sess(guest: Device):
    s = guest.queue(0).session(Alg.AES256_GCM, KEY)
    yield s
    if not guest.needs_reset:
        s.destroy()


def valid_desc(q: Queue, sid: int, bufs: dict[str, int]) -> dict[str, int]:
    return {"opcode": Op.ENCRYPT, "session": sid, "src_off": bufs["src"], "src_len": 64, "dst_off": bufs["src"],
            "dst_len": 64, "aad_off": bufs["aad"], "aad_len": 8, "iv_off": bufs["iv"], "tag_off": bufs["tag"]}


@pytest.fixture
def bufs(guest: Device):
    q = guest.queue(0)
    b = {k: q.alloc(n) for k, n in {"src": 128, "aad": 64, "iv": 64, "tag": 64}.items()}
    yield {k: v.offset for k, v in b.items()}
    for v in b.values():
        v.free()



HOSTILE = [
    ("src past the arena", {"src_off": "END"}, Status.INVALID),
    ("src length wraps", {"src_off": 0xFFFFFFF0, "src_len": 0x20}, Status.INVALID),
    ("src length past the end", {"src_off": "END-32", "src_len": 64, "dst_off": 0}, Status.INVALID),
    ("dst past the arena", {"dst_off": "END-8", "dst_len": 64}, Status.INVALID),
    ("aad past the arena", {"aad_off": "END-4"}, Status.INVALID),
    ("aad length huge", {"aad_len": 0xFFFFFFFF}, Status.INVALID),
    ("iv straddles the end", {"iv_off": "END-4"}, Status.INVALID),
    ("tag past the arena", {"tag_off": 0xFFFFFFFF}, Status.INVALID),
    ("unknown session", {"session": 0x7777}, Status.NO_SESSION),
    ("session id 0", {"session": 0}, Status.NO_SESSION),
    ("unknown opcode", {"opcode": 0xBEEF}, Status.NOT_SUPPORTED),
    ("flags set", {"flags": 0x8000}, Status.INVALID),
    ("dst too small", {"dst_len": 10}, Status.NO_SPACE),
    ("partial overlap", {"dst_off": "SRC+1"}, Status.INVALID),
    ("length over the op limit", {"src_len": 0x7FFFFFFF}, Status.INVALID),
]


@pytest.mark.parametrize("case,fields,want", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_descriptor(guest: Device, served: HostDevice, sess, bufs, case: str, fields: dict,
                            want: Status) -> None:
    q = guest.queue(0)
    end = q.arena_size
    d = valid_desc(q, sess.id, bufs)
    for k, v in fields.items():
        if isinstance(v, str):
            v = {"END": end, "END-32": end - 32, "END-8": end - 8, "END-4": end - 4,
                 "SRC+1": bufs["src"] + 1}[v]
        d[k] = v
    c = q.exec(d | {"cookie": 0xC0FFEE})
    assert c.cookie == 0xC0FFEE
    assert Status(c.status) == want, case
    if want == Status.NO_SPACE:
        assert c.result == 64
    assert served.stats().ring_errors == 0
    check_still_serves(q)


def test_cbc_needs_whole_blocks(guest: Device) -> None:
    with guest.queue(0).session(Alg.AES256_CBC_HMAC_SHA256, os.urandom(64)) as s:
        with pytest.raises(errors.InvalidOpError) as e:
            s.encrypt(b"x" * 17, os.urandom(16))
        assert e.value.status == Status.INVALID, str(e.value)
        assert len(s.encrypt(b"x" * 32, os.urandom(16))[0]) == 32


def params_block(alg: int, key_len: int, iv_len: int, tag_len: int, flags: int = 0, src_len: int | None = None):
    p = ffi.new("struct synth_crypto_session_params *")
    p.alg, p.key_len, p.iv_len, p.tag_len, p.flags = alg, key_len, iv_len, tag_len, flags
    for i in range(min(key_len, 256)):
        p.key[i] = 0x5A
    return bytes(ffi.buffer(p))


BAD_SESSIONS = [
    ("unknown algorithm", (99, 32, 12, 16), Status.INVALID),
    ("algorithm 0", (0, 32, 12, 16), Status.INVALID),
    ("aes-256 with a 16-byte key", (int(Alg.AES256_GCM), 16, 12, 16), Status.INVALID),
    ("gcm with a 16-byte iv", (int(Alg.AES256_GCM), 32, 16, 16), Status.INVALID),
    ("gcm with a 17-byte tag", (int(Alg.AES256_GCM), 32, 12, 17), Status.INVALID),
    ("chacha with a short tag", (int(Alg.CHACHA20_POLY1305), 32, 12, 12), Status.INVALID),
    ("cbc-hmac without a mac key", (int(Alg.AES256_CBC_HMAC_SHA256), 32, 16, 16), Status.INVALID),
    ("key longer than the block", (int(Alg.HMAC_SHA256), 300, 0, 32), Status.INVALID),
    ("undefined flag set", (int(Alg.AES256_GCM), 32, 12, 16, 4), Status.INVALID),
    ("iv-gen on cbc", (int(Alg.AES256_CBC_HMAC_SHA256), 64, 16, 16, 1), Status.INVALID),
    ("mac-no-iv on gcm", (int(Alg.AES256_GCM), 32, 12, 16, 2), Status.INVALID),
    ("mac-no-iv on hmac", (int(Alg.HMAC_SHA256), 32, 0, 16, 2), Status.INVALID),
]


@pytest.mark.parametrize("case,args,want", BAD_SESSIONS, ids=[b[0] for b in BAD_SESSIONS])
def test_bad_session_params(guest: Device, case: str, args: tuple, want: Status) -> None:
    q = guest.queue(0)
    block = params_block(*args)
    with q.scratch(len(block)) as (buf,):
        buf.write(block)
        c = q.exec({"opcode": Op.SESSION_CREATE, "src_off": buf.offset, "src_len": len(block)})
        assert Status(c.status) == want, case
        assert buf.read()[8:] == bytes(256), "the key must be wiped from the arena even when refused"
    check_still_serves(q)


def test_iv_gen_needs_the_feature_the_driver_accepted(served: HostDevice) -> None:
    """IV_GEN sessions are a negotiated feature (bit 34): a driver that did not accept it gets
    NOT_SUPPORTED, and the host writes no IV into its arena."""
    everything_but = lib.SYNTH_F_RING_V1 | lib.SYNTH_F_NOP | lib.SYNTH_CRYPTO_F_SESSIONS | \
        lib.SYNTH_CRYPTO_F_OUT_OF_PLACE
    with Device.open(served.path, features=everything_but) as g:
        assert not g.info().features_accepted & lib.SYNTH_CRYPTO_F_IV_GEN
        q = g.queue(0)
        block = params_block(int(Alg.AES256_GCM), 32, 12, 16, 1)
        with q.scratch(len(block)) as (buf,):
            buf.write(block)
            c = q.exec({"opcode": Op.SESSION_CREATE, "src_off": buf.offset, "src_len": len(block)})
            assert Status(c.status) == Status.NOT_SUPPORTED and c.result == 0
            assert buf.read()[8:] == bytes(256), "the key is wiped all the same"
        assert served.stats().sessions == 0
        check_still_serves(q)  # a session without IV_GEN is fine
    with Device.open(served.path) as g:  # accepted: the device picks the IVs
        assert g.info().features_accepted & lib.SYNTH_CRYPTO_F_IV_GEN
        with g.queue(0).session(Alg.AES256_GCM, KEY, iv_gen=True) as s:
            iv, _, _ = s.seal(b"x" * 16)
            assert len(iv) == 12 and int.from_bytes(iv[4:], "big") == 1


def test_mac_no_iv_needs_the_feature_the_driver_accepted(served: HostDevice) -> None:
    """MAC_NO_IV sessions (bit 35, ABI 1.2) are negotiated as IV_GEN is: a driver that did not
    accept the bit gets NOT_SUPPORTED, and its key is wiped all the same."""
    without = lib.SYNTH_F_RING_V1 | lib.SYNTH_F_NOP | lib.SYNTH_CRYPTO_F_SESSIONS | lib.SYNTH_CRYPTO_F_OUT_OF_PLACE
    with Device.open(served.path, features=without) as g:
        assert not g.info().features_accepted & lib.SYNTH_CRYPTO_F_MAC_NO_IV
        q = g.queue(0)
        block = params_block(int(Alg.AES256_CBC_HMAC_SHA256), 64, 16, 16, lib.SYNTH_CRYPTO_SF_MAC_NO_IV)
        with q.scratch(len(block)) as (buf,):
            buf.write(block)
            c = q.exec({"opcode": Op.SESSION_CREATE, "src_off": buf.offset, "src_len": len(block)})
            assert Status(c.status) == Status.NOT_SUPPORTED and c.result == 0
            assert buf.read()[8:] == bytes(256)
        assert served.stats().sessions == 0
        with q.session(Alg.AES256_CBC_HMAC_SHA256, KEY + KEY) as s:  # without the flag: fine
            assert len(s.encrypt(b"x" * 32, bytes(16))[1]) == 16


def test_session_create_wrong_block_size(guest: Device) -> None:
    q = guest.queue(0)
    block = params_block(int(Alg.AES256_GCM), 32, 12, 16)
    with q.scratch(len(block)) as (buf,):
        buf.write(block)
        for n in (0, 8, len(block) - 1, len(block) + 1):
            c = q.exec({"opcode": Op.SESSION_CREATE, "src_off": buf.offset, "src_len": n})
            assert c.status == Status.INVALID


def test_session_key_is_wiped_from_the_arena(guest: Device) -> None:
    q = guest.queue(0)
    block = params_block(int(Alg.AES256_GCM), 32, 12, 16)
    with q.scratch(len(block)) as (buf,):
        buf.write(block)
        c = q.exec({"opcode": Op.SESSION_CREATE, "src_off": buf.offset, "src_len": len(block)})
        assert c.status == Status.OK
        assert buf.read()[8:] == bytes(256)
        assert buf.read()[:8] == block[:8]
        assert q.exec({"opcode": Op.SESSION_DESTROY, "session": c.result}).status == Status.OK


def test_session_table_full_then_freed(region_dir: pathlib.Path, worker: Worker) -> None:
    dev = HostDevice.create(str(region_dir / "small"), DevClass.CRYPTO, max_sessions=4)
    worker.add(dev)
    try:
        with Device.open(dev.path) as g:
            q = g.queue(0)
            sessions = [q.session(Alg.AES128_GCM, os.urandom(16)) for _ in range(4)]
            with pytest.raises(errors.OpError) as e:
                q.session(Alg.AES128_GCM, os.urandom(16))
            assert e.value.status == Status.NO_RESOURCES
            old = sessions.pop(0)
            old.destroy()
            new = q.session(Alg.AES128_GCM, os.urandom(16))
            assert new.id != old.id, "a reused slot must get a new id"
            with pytest.raises(errors.UnknownSessionError, match="encrypt with aes-128-gcm: unknown session"):
                old.encrypt(b"x", IV)
            with pytest.raises(errors.UnknownSessionError, match="destroying session .*: unknown session"):
                old.destroy()
            new.encrypt(b"x", IV)
    finally:
        dev.destroy()


def test_sessions_are_per_device(region_dir: pathlib.Path, worker: Worker) -> None:
    a = HostDevice.create(str(region_dir / "a"), DevClass.CRYPTO)
    b = HostDevice.create(str(region_dir / "b"), DevClass.CRYPTO)
    worker.add(a)
    worker.add(b)
    try:
        with Device.open(a.path) as ga, Device.open(b.path) as gb:
            sa = ga.queue(0).session(Alg.AES256_GCM, KEY)
            # The same id on the other device is simply unknown.
            c = gb.queue(0).exec({"opcode": Op.ENCRYPT, "session": sa.id})
            assert c.status == Status.NO_SESSION
            sb = gb.queue(0).session(Alg.AES256_GCM, os.urandom(32))
            assert sa.encrypt(b"m", IV) != sb.encrypt(b"m", IV)
    finally:
        a.destroy()
        b.destroy()


def test_close_drops_sessions(served: HostDevice) -> None:
    with Device.open(served.path) as g:
        g.queue(0).session(Alg.AES256_GCM, KEY)
        g.queue(1).session(Alg.CHACHA20_POLY1305, KEY)
        assert served.stats().sessions == 2
    with Device.open(served.path) as g:  # the handshake waits for the backend to act on the reset
        assert served.stats().sessions == 0


def ring_attack(raw: RawRegion, which: str, q: int = 0) -> None:
    sq, sqe, cq, _, _ = raw.queue(q)
    entries = raw.hdr.ring_entries
    if which == "sq-prod-garbage":
        sq.prod = sq.cons + entries + 1  # the host never reads it: entries carry their own seq
    elif which == "sq-seq-garbage":
        for i in range(entries):  # future and past sequence numbers, nothing valid
            sqe[i].seq = (sq.cons + entries + 1 + i) & 0xFFFFFFFF
            sqe[i].opcode = 0x12
    elif which == "cq-cons-past-prod":
        cq.cons = (cq.prod + entries + 5) & 0xFFFFFFFF  # ahead of anything the host produced


@pytest.mark.parametrize("attack", ["sq-prod-garbage", "sq-seq-garbage"])
def test_submission_ring_garbage_is_ignored(region_dir: pathlib.Path, worker: Worker, attack: str) -> None:
    dev = HostDevice.create(str(region_dir / "dev"), DevClass.CRYPTO)
    worker.add(dev)
    try:
        with Device.open(dev.path) as g:
            raw = RawRegion(dev.path)
            ring_attack(raw, attack)
            import time

            time.sleep(0.01)
            assert dev.stats().ops == 0 and dev.stats().ring_errors == 0, "nothing published, nothing done"
            raw.close()
            check_still_serves(g.queue(0))
    finally:
        dev.destroy()


def test_broken_completion_ring_marks_only_that_device(region_dir: pathlib.Path, worker: Worker) -> None:
    bad = HostDevice.create(str(region_dir / "bad"), DevClass.CRYPTO, queues=2)
    good = HostDevice.create(str(region_dir / "good"), DevClass.CRYPTO)
    worker.add(bad)
    worker.add(good)
    try:
        with Device.open(bad.path) as gbad, Device.open(good.path) as ggood:
            check_still_serves(ggood.queue(0))
            raw = RawRegion(bad.path)
            ring_attack(raw, "cq-cons-past-prod")
            # The host reads the guest's completion index only when its cached copy shows too
            # little room, so the bad index is seen once a ring's worth of completions is pending.
            q = gbad.queue(0)
            entries = raw.hdr.ring_entries
            assert q.submit(q.descs([{"opcode": Op.NOP}] * (entries - 8))) == entries - 8
            until(lambda: gbad.needs_reset, "the device to need a reset")
            # Queue 0 still holds its NOPs, and an exec there says the device needs a reset (not
            # that it is busy); so does an op on the other queue, with nothing in flight.
            for qi in (0, 1):
                with pytest.raises(errors.DeviceError, match=f"queue {qi}: device needs a reset") as e:
                    gbad.queue(qi).exec({"opcode": Op.NOP})
                assert e.value.errno == errno.EIO
            assert gbad.needs_reset
            st = bad.stats()
            assert "needs-reset" in st.status and st.dev_error == lib.SYNTH_DEVERR_CQ_INDEX and st.ring_errors == 1
            check_still_serves(ggood.queue(0))
            assert good.stats().ring_errors == 0
            # The driver resets and the device serves again.
            gbad.reset()
            assert not gbad.needs_reset
            check_still_serves(gbad.queue(0))
            raw.close()
    finally:
        bad.destroy()
        good.destroy()


def test_features_not_offered_are_refused(served: HostDevice) -> None:
    """A driver (not ours: ours masks with the offer) that accepts an unoffered feature is refused."""
    import time

    raw = RawRegion(served.path)
    epoch = raw.hdr.drv_epoch + 1
    raw.hdr.features_accepted = lib.SYNTH_F_RING_V1 | (1 << 31)
    raw.hdr.drv_status = lib.SYNTH_DRV_DRIVER_OK
    raw.hdr.drv_epoch = epoch
    deadline = time.monotonic() + 5
    while raw.hdr.acked_epoch != epoch and time.monotonic() < deadline:
        time.sleep(0.001)
    assert raw.hdr.acked_epoch == epoch
    assert raw.hdr.dev_status & lib.SYNTH_DEV_NEEDS_RESET
    assert raw.hdr.dev_error == lib.SYNTH_DEVERR_FEATURES
    raw.close()
    # Our library negotiates only what is offered, and the backend holds the driver to it.
    with Device.open(served.path, features=lib.SYNTH_F_RING_V1 | (1 << 31)) as g:
        assert g.info().features_accepted == lib.SYNTH_F_RING_V1
        with pytest.raises(errors.OpError) as e:
            g.queue(0).session(Alg.AES256_GCM, KEY)
        assert e.value.status == Status.NOT_SUPPORTED
        assert g.queue(0).exec({"opcode": Op.NOP}).status == Status.NOT_SUPPORTED
    with Device.open(served.path) as g:
        check_still_serves(g.queue(0))


def test_garbage_header_fields_are_ignored(guest: Device, served: HostDevice) -> None:
    """The backend keeps its own copy of the layout: rewriting it in the region changes nothing."""
    raw = RawRegion(served.path)
    raw.hdr.num_queues = 64
    raw.hdr.ring_entries = 1 << 30
    raw.hdr.region_size = 1 << 40
    for i in range(64):
        raw.hdr.queues[i].arena_off = 0xFFFFFFFFFFFF
        raw.hdr.queues[i].arena_size = 0xFFFFFFFFFFFF
    raw.hdr.generation = 0xFFFFFFFF
    raw.hdr.dev_status = 0
    check_still_serves(guest.queue(0))
    check_still_serves(guest.queue(1))
    raw.close()


def test_a_reset_gives_the_next_driver_a_header_it_can_use(guest: Device, served: HostDevice) -> None:
    """The header's [host] fields come back with a driver reset: a driver that scribbled on them
    (a guest kernel gone wrong) leaves the next driver to open the region, after a reboot, a
    device it can use."""
    raw = RawRegion(served.path)
    before = bytes(raw.map[:lib.SYNTH_QUEUE_TABLE_OFF + 2 * ffi.sizeof("struct synth_queue_info")])
    raw.hdr.magic = 0
    raw.hdr.num_queues = 64
    for i in range(2):
        raw.hdr.queues[i].sq_off = 0xFFFFFFFFFFFF
    raw.close()
    with pytest.raises(errors.DeviceError, match="bad magic"):
        Device.open(served.path)
    guest.reset()
    raw = RawRegion(served.path)
    after = bytes(raw.map[:len(before)])
    raw.close()
    host_owned = [(0, 8), (lib.SYNTH_QUEUE_TABLE_OFF, len(before))]  # magic; the queue table
    for lo, hi in host_owned:
        assert after[lo:hi] == before[lo:hi]
    with Device.open(served.path) as g:
        check_still_serves(g.queue(0))
        check_still_serves(g.queue(1))


def test_backpressure_when_completions_are_not_consumed(guest: Device, served: HostDevice) -> None:
    """The backend never takes more than the completion ring can hold: a guest that stops
    consuming completions just sees a full submission ring, and nothing is lost or reordered."""
    import time

    q = guest.queue(0)
    entries = guest.info().ring_entries
    first = q.descs([{"opcode": Op.NOP, "cookie": i} for i in range(entries)])
    second = q.descs([{"opcode": Op.NOP, "cookie": 10_000 + i} for i in range(entries)])
    assert q.submit(first) == entries
    sent = 0
    deadline = time.monotonic() + 5
    while sent < entries and time.monotonic() < deadline:
        sent += q.submit(second + sent, entries - sent)
        time.sleep(0.001)
    assert sent == entries  # the first batch moved to the (now full) completion ring
    time.sleep(0.05)
    extra = q.descs([{"opcode": Op.NOP, "cookie": 99}])
    assert q.submit(extra) == 0, "the backend must not take work it cannot complete"
    got = q.drain(2 * entries)
    assert [c.cookie for c in got] == list(range(entries)) + [10_000 + i for i in range(entries)]
    assert all(c.status == Status.OK for c in got)
    assert served.stats().ring_errors == 0


def test_destroy_in_the_same_burst_as_ops_on_that_session(guest: Device, served: HostDevice) -> None:
    """Encrypt with S, destroy S, create T (which may reuse S's slot), encrypt with S again, all in
    one burst: ops run in order, so the first encrypt uses S's key and the last finds S unknown,
    never T's key."""
    q = guest.queue(0)
    s = q.session(Alg.AES256_GCM, KEY)
    block = params_block(int(Alg.AES256_GCM), 32, 12, 16)
    data, iv, aad = os.urandom(64), os.urandom(12), os.urandom(8)
    with q.scratch(len(block), 64, 12, 8, 16, 16) as (pbuf, src, ivb, aadb, tag1, tag4):
        pbuf.write(block)
        src.write(data)
        ivb.write(iv)
        aadb.write(aad)
        enc = {"opcode": Op.ENCRYPT, "session": s.id, "src_off": src.offset, "src_len": 64, "dst_off": src.offset,
               "dst_len": 64, "aad_off": aadb.offset, "aad_len": 8, "iv_off": ivb.offset}
        burst = q.descs([
            enc | {"cookie": 1, "tag_off": tag1.offset},
            {"opcode": Op.SESSION_DESTROY, "session": s.id, "cookie": 2},
            {"opcode": Op.SESSION_CREATE, "src_off": pbuf.offset, "src_len": len(block), "cookie": 3},
            enc | {"cookie": 4, "tag_off": tag4.offset},
        ])
        assert q.submit(burst) == 4
        got = q.drain(4)
        assert [c.cookie for c in got] == [1, 2, 3, 4]
        assert [Status(c.status) for c in got] == [Status.OK, Status.OK, Status.OK, Status.NO_SESSION]
        assert src.read() + tag1.read() == AESGCM(KEY).encrypt(iv, data, aad)
        assert tag4.read() == bytes(16)
    assert served.stats().sessions == 1
    assert q.exec({"opcode": Op.SESSION_DESTROY, "session": got[2].result}).status == Status.OK


def test_hmac_has_no_destination(guest: Device) -> None:
    """HMAC_SHA256 writes its tag and nothing else: dst_off/dst_len are not used, even when they
    name bytes outside the arena, and a failed verification writes nothing."""
    import hashlib
    import hmac

    q = guest.queue(0)
    key = bytes(range(40))
    data = os.urandom(300)
    want = hmac.new(key, data, hashlib.sha256).digest()
    with q.session(Alg.HMAC_SHA256, key) as s, q.scratch(len(data), 32, 64) as (src, tag, other):
        src.write(data)
        other.write(b"\x5a" * 64)
        for dst_off, dst_len in ((0, 0), (other.offset, 64), (0xFFFFFFF0, 0xFFFFFFFF), (src.offset, 1)):
            tag.write(bytes(32))
            c = q.exec({"opcode": Op.ENCRYPT, "session": s.id, "src_off": src.offset, "src_len": len(data),
                        "dst_off": dst_off, "dst_len": dst_len, "tag_off": tag.offset})
            assert (c.status, c.result) == (Status.OK, len(data)), (dst_off, dst_len)
            assert tag.read(32) == want
        assert src.read(len(data)) == data and other.read(64) == b"\x5a" * 64, "only the tag was written"
        tag.write(bytes(32))  # a wrong tag: AUTH_FAILED, and nothing is zeroed (there is no output)
        c = q.exec({"opcode": Op.DECRYPT, "session": s.id, "src_off": src.offset, "src_len": len(data),
                    "dst_off": other.offset, "dst_len": 64, "tag_off": tag.offset})
        assert c.status == Status.AUTH_FAILED
        assert src.read(len(data)) == data and other.read(64) == b"\x5a" * 64
        # The input and tag ranges are checked as for every algorithm.
        c = q.exec({"opcode": Op.ENCRYPT, "session": s.id, "src_off": src.offset, "src_len": 1 << 29,
                    "tag_off": tag.offset})
        assert c.status == Status.INVALID
        c = q.exec({"opcode": Op.ENCRYPT, "session": s.id, "src_off": src.offset, "src_len": len(data),
                    "tag_off": 0xFFFFFFF0})
        assert c.status == Status.INVALID


def test_a_restarted_backend_does_not_take_the_guests_word_for_why(region_dir: pathlib.Path, worker: Worker) -> None:
    """A guest can write the header's status and error words: after a restart, a device that was
    waiting for its reset keeps waiting, but never reads "abandoned" (REGION, the host's own
    verdict on a truncated file) because its guest wrote that."""
    dev = HostDevice.create(str(region_dir / "d"), DevClass.CRYPTO, size=1 << 20)
    worker.add(dev)
    dev.destroy(unlink=False)  # the backend goes; while none runs, the guest writes the words
    raw = RawRegion(dev.path)
    raw.hdr.dev_status = lib.SYNTH_DEV_READY | lib.SYNTH_DEV_NEEDS_RESET
    raw.hdr.dev_error = lib.SYNTH_DEVERR_REGION
    raw.close()
    dev = HostDevice.from_spec(dev.spec, attach=True)
    try:
        st = dev.stats()
        assert "needs-reset" in st.status and st.dev_error == lib.SYNTH_DEVERR_BACKEND, st
    finally:
        dev.destroy()


def test_destroying_a_device_its_worker_still_serves_takes_it_off_first(region_dir: pathlib.Path,
                                                                       worker: Worker) -> None:
    """synth_hdev_destroy on a served device (a C caller that forgot synth_worker_remove) must not
    leave the worker polling freed memory."""
    dev = HostDevice.create(str(region_dir / "d"), DevClass.CRYPTO, size=1 << 20)
    other = HostDevice.create(str(region_dir / "o"), DevClass.CRYPTO, size=1 << 20)
    worker.add(dev)
    worker.add(other)
    lib.synth_hdev_destroy(dev.handle, 1)  # straight to C, as a C caller would
    dev._h = None  # the Python side must not destroy it again
    worker.devices.remove(dev)
    assert worker.stats()["devices"] == 1
    with Device.open(other.path) as g:
        for _ in range(20):
            check_still_serves(g.queue(0))
    other.destroy()


def test_ranges_that_end_at_the_arena_edge(guest: Device, served: HostDevice) -> None:
    """Each range may end exactly at the arena's end, and not one byte past it: src, dst (out of
    place), aad and tag."""
    q = guest.queue(0)
    end = q.arena_size
    with q.session(Alg.AES256_GCM, KEY) as s, q.scratch(64, 12) as (src, iv):
        src.write(bytes(64))
        base = {"opcode": Op.ENCRYPT, "session": s.id, "src_off": src.offset, "src_len": 64,
                "iv_off": iv.offset, "tag_off": src.offset + 48, "dst_off": src.offset, "dst_len": 64}
        cases = [({"dst_off": end - 64}, Status.OK), ({"dst_off": end - 63}, Status.INVALID),
                 ({"aad_off": end - 16, "aad_len": 16}, Status.OK),
                 ({"aad_off": end - 15, "aad_len": 16}, Status.INVALID),
                 ({"tag_off": end - 16}, Status.OK), ({"tag_off": end - 15}, Status.INVALID),
                 ({"src_off": end - 64, "dst_off": end - 64}, Status.OK),
                 ({"src_off": end - 63, "dst_off": end - 63}, Status.INVALID)]
        for fields, want in cases:
            c = q.exec(base | fields)
            assert Status(c.status) == want, fields
    check_still_serves(q)
