# SPDX-License-Identifier: Apache-2.0
"""A compression guest is untrusted: hostile descriptors, stream parameters and stream protocol
errors end as error statuses, random descriptors each get one, and nothing of it reaches another
stream or another device. Hostile data is in test_compress_baddata.py."""

from __future__ import annotations

import os
import pathlib
import random
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import zstandard
from compress_ref import (
    ALGS,
    HOSTILE_OPTIONS,
    MAX_CHUNK,
    comp_fixture,  # noqa: F401 (the fixtures dev, guest and comp)
    dev_fixture,  # noqa: F401
    guest_fixture,  # noqa: F401
    ref_compress,
    sample,
    served_device,
    zeros_bomb,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libvirt_synth import errors
from libvirt_synth._native import lib
from libvirt_synth.abi import CAlg, CompOp, DevClass, Flush, Status
from libvirt_synth.guest import Device, Queue
from libvirt_synth.guest.compress import Compressor, CorruptDataError, LimitError
from libvirt_synth.host.device import HostDevice, Worker

from rawregion import RawRegion

SAMPLE = sample()


def status(q: Queue, **fields: Any) -> tuple[int, int, int]:
    c = q.exec(fields | {"cookie": 0xC0FFEE})
    assert c.cookie == 0xC0FFEE
    return c.status, c.result, c.flags


@pytest.fixture
def bufs(guest: Device) -> Iterator[dict[str, int]]:
    q = guest.queue(0)
    src, dst = q.alloc(8192), q.alloc(8192)
    src.write(os.urandom(8192))
    yield {"src": src.offset, "dst": dst.offset}
    src.free()
    dst.free()


ONE_SHOT = [
    ("src past the arena", {"src_off": "END"}, Status.INVALID),
    ("src length wraps", {"src_off": 0xFFFFFFF0, "src_len": 0x20}, Status.INVALID),
    ("src runs past the end", {"src_off": "END-32", "src_len": 64}, Status.INVALID),
    ("dst past the arena", {"dst_off": "END-8", "dst_len": 64}, Status.INVALID),
    ("dst length wraps", {"dst_off": 0xFFFFFF00, "dst_len": 0x200}, Status.INVALID),
    ("dst overlaps src", {"dst_off": "SRC+1"}, Status.INVALID),
    ("in place", {"dst_off": "SRC"}, Status.INVALID),
    ("src inside dst", {"src_off": "DST+16", "src_len": 100}, Status.INVALID),
    ("algorithm 0", {"arg": [0, 0, 0]}, Status.INVALID),
    ("unknown algorithm", {"arg": [99, 0, 0]}, Status.INVALID),
    ("algorithm 2^32-1", {"arg": [0xFFFFFFFF, 0, 0]}, Status.INVALID),
    ("level too high", {"arg": [int(CAlg.ZSTD), 23, 0]}, Status.NOT_SUPPORTED),
    ("level INT32_MIN", {"arg": [int(CAlg.GZIP), 0x80000000, 0]}, Status.NOT_SUPPORTED),
    ("igzip level 0 is -1, not -2", {"arg": [int(CAlg.DEFLATE), 0xFFFFFFFE, 0]}, Status.NOT_SUPPORTED),
    ("input over max_chunk", {"src_len": MAX_CHUNK + 1}, Status.LIMIT),
    ("input huge", {"src_len": 0xFFFFFFFF}, Status.LIMIT),
    ("flags set", {"flags": 1}, Status.INVALID),
    ("unknown opcode", {"opcode": 0x25}, Status.NOT_SUPPORTED),
    ("crypto opcode", {"opcode": 0x12}, Status.NOT_SUPPORTED),
    ("decompress garbage", {"opcode": CompOp.DECOMPRESS, "arg": [int(CAlg.ZSTD), 0, 0]}, Status.BAD_DATA),
    ("decompress nothing", {"opcode": CompOp.DECOMPRESS, "src_len": 0, "arg": [int(CAlg.LZ4), 0, 0]},
     Status.BAD_DATA),
    ("decompress algorithm 0", {"opcode": CompOp.DECOMPRESS, "arg": [0, 0, 0]}, Status.INVALID),
    ("decompress over max_chunk", {"opcode": CompOp.DECOMPRESS, "src_len": MAX_CHUNK + 1}, Status.LIMIT),
    ("stream op, unknown stream", {"opcode": CompOp.STREAM, "session": 0x1234}, Status.NO_SESSION),
    ("stream op, stream 0", {"opcode": CompOp.STREAM, "session": 0}, Status.NO_SESSION),
    ("destroy an unknown stream", {"opcode": CompOp.STREAM_DESTROY, "session": 0xFFFF0001}, Status.NO_SESSION),
    ("create with a short block", {"opcode": CompOp.STREAM_CREATE, "src_len": 15}, Status.INVALID),
    ("create past the arena", {"opcode": CompOp.STREAM_CREATE, "src_off": "END-8", "src_len": 16},
     Status.INVALID),
]


@pytest.mark.parametrize("case,fields,want", ONE_SHOT, ids=[c[0] for c in ONE_SHOT])
def test_hostile_descriptor(comp: Compressor, bufs: dict[str, int], case: str, fields: dict[str, Any],
                            want: Status) -> None:
    q = comp.queue
    end = q.arena_size
    d: dict[str, Any] = {"opcode": CompOp.COMPRESS, "src_off": bufs["src"], "src_len": 4096, "dst_off": bufs["dst"],
                         "dst_len": 8192, "arg": [int(CAlg.DEFLATE), 0, 0]}
    for k, v in fields.items():
        if isinstance(v, str):
            v = {"END": end, "END-32": end - 32, "END-8": end - 8, "SRC": bufs["src"], "SRC+1": bufs["src"] + 1,
                 "DST+16": bufs["dst"] + 16}[v]
        d[k] = v
    st, result, flags = status(q, **d)
    assert Status(st) == want, case
    assert (result, flags) == (0, 0), "an error carries no result and no flags"


def params(alg: int, direction: int, level: int = 0, flags: int = 0, reserved: int = 0) -> bytes:
    return struct.pack("<HHiII", alg, direction, level, flags, reserved)


BAD_STREAMS = [
    ("flags set", params(int(CAlg.ZLIB), 0, flags=1), Status.INVALID),
    ("reserved set", params(int(CAlg.ZLIB), 0, reserved=7), Status.INVALID),
    ("direction 2", params(int(CAlg.ZLIB), 2), Status.INVALID),
    ("algorithm 0", params(0, 0), Status.INVALID),
    ("algorithm 6", params(6, 1), Status.INVALID),
    ("level on a decompression stream", params(int(CAlg.ZSTD), 1, 3), Status.INVALID),
    ("level out of range", params(int(CAlg.LZ4), 0, 13), Status.NOT_SUPPORTED),
    ("level far out", params(int(CAlg.ZSTD), 0, -(2**31)), Status.NOT_SUPPORTED),
]


@pytest.mark.parametrize("case,block,want", BAD_STREAMS, ids=[b[0] for b in BAD_STREAMS])
def test_bad_stream_params(comp: Compressor, dev: HostDevice, case: str, block: bytes, want: Status) -> None:
    q = comp.queue
    with q.scratch(len(block)) as (buf,):
        buf.write(block)
        st, result, _ = status(q, opcode=CompOp.STREAM_CREATE, src_off=buf.offset, src_len=len(block))
    assert (Status(st), result) == (want, 0), case
    assert dev.stats().sessions == 0


def stream_op(q: Queue, sid: int, data: bytes, flush: int = Flush.NONE, out: int = 65536) -> tuple[int, bytes, int]:
    with q.scratch(len(data), out) as (src, dst):
        src.write(data)
        c = q.exec({"opcode": CompOp.STREAM, "session": sid, "src_off": src.offset, "src_len": len(data),
                    "dst_off": dst.offset, "dst_len": out, "arg": [flush, 0, 0]})
        return c.status, dst.read(c.result) if c.status == Status.OK else b"", c.flags


def test_stream_protocol_violations_are_refused_and_harmless(comp: Compressor) -> None:
    q = comp.queue
    with comp.stream(CAlg.ZLIB, 1) as s:
        st, out, flags = stream_op(q, s.id, SAMPLE[:100000], Flush.FINISH, out=100)
        assert st == Status.OK and flags == lib.SYNTH_CPL_F_MORE and len(out) == 100
        pending = out
        assert stream_op(q, s.id, b"more input")[0] == Status.INVALID, "input while MORE: drain first"
        assert stream_op(q, s.id, b"", 3)[0] == Status.INVALID, "flush mode 3"
        while True:  # the refusals changed nothing: the stream drains and is complete
            st, out, flags = stream_op(q, s.id, b"", Flush.NONE, out=4096)
            assert st == Status.OK
            pending += out
            if not flags & lib.SYNTH_CPL_F_MORE:
                break
        assert flags == lib.SYNTH_CPL_F_END and zlib.decompress(pending) == SAMPLE[:100000]
        assert stream_op(q, s.id, b"x")[0] == Status.INVALID, "input after the end"
        assert stream_op(q, s.id, b"")[::2] == (Status.OK, lib.SYNTH_CPL_F_END)
    with comp.stream(CAlg.ZSTD, decompress=True) as s:
        frame = ref_compress(CAlg.ZSTD, SAMPLE[:1000])
        st, out, flags = stream_op(q, s.id, frame)
        assert (st, out, flags) == (Status.OK, SAMPLE[:1000], lib.SYNTH_CPL_F_END)
        assert stream_op(q, s.id, frame)[0] == Status.INVALID, "a second frame after END"


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.label)
def test_trailing_bytes_kill_a_decompression_stream_only(comp: Compressor, alg: CAlg) -> None:
    q = comp.queue
    frame = ref_compress(alg, SAMPLE[:3000])
    with comp.stream(alg, decompress=True) as bad, comp.stream(alg, decompress=True) as good:
        assert stream_op(q, good.id, frame[:100])[0] == Status.OK
        assert stream_op(q, bad.id, frame + b"\x00trailing")[0] == Status.BAD_DATA
        assert stream_op(q, bad.id, b"")[0] == Status.BAD_DATA, "a failed stream stays failed"
        st, out, flags = stream_op(q, good.id, frame[100:])
        assert (st, flags) == (Status.OK, lib.SYNTH_CPL_F_END) and len(out) <= 3000
    with comp.stream(alg, decompress=True) as s, pytest.raises(CorruptDataError):
        s.decompress(frame[:-3], final=True)


def test_stream_table_and_memory_are_bounded(comp: Compressor, dev: HostDevice) -> None:
    streams = [comp.stream(CAlg.LZ4) for _ in range(4)]
    with pytest.raises(errors.OpError) as e:
        comp.stream(CAlg.ZLIB)
    assert e.value.status == Status.NO_RESOURCES
    assert dev.stats().sessions == 4
    streams.pop().destroy()
    comp.stream(CAlg.ZLIB).destroy()
    for s in streams:
        s.destroy()
    assert dev.stats().sessions == 0
    # zstd level 19 needs ~90 MiB (window capped at 2^20 here, so less); the budget holds.
    with served_device(options=(("max_stream_memory", 24 << 20),)) as d, Device.open(d.path) as g:
        c = Compressor(g.queue(0))
        got = []
        with pytest.raises(errors.OpError) as e:
            for _ in range(8):
                got.append(c.stream(CAlg.ZSTD, decompress=True))  # ~9.5 MiB each at window 2^23
        assert e.value.status == Status.NO_RESOURCES and len(got) == 2
        c.stream(CAlg.DEFLATE).destroy()  # a small one still fits
        for s in got:
            s.destroy()


def test_streams_need_the_feature_and_die_with_a_reset() -> None:
    with served_device() as dev, Device.open(dev.path, features=lib.SYNTH_F_RING_V1 | lib.SYNTH_F_NOP) as g:
        c = Compressor(g.queue(0))
        with pytest.raises(errors.OpError) as e:
            c.stream(CAlg.GZIP)
        assert e.value.status == Status.NOT_SUPPORTED
        assert c.decompress(c.compress(SAMPLE, CAlg.GZIP), CAlg.GZIP) == SAMPLE  # one-shot needs no feature
    with served_device() as dev, Device.open(dev.path) as g:
        c = Compressor(g.queue(1))
        s = c.stream(CAlg.GZIP)
        assert dev.stats().sessions == 1
        g.reset()
        assert dev.stats().sessions == 0
        with pytest.raises(errors.UnknownSessionError):
            s.compress(b"after the reset")


# ---- randomised descriptors ----

u32 = st.one_of(st.integers(0, 2**32 - 1),
                st.sampled_from([0, 1, 15, 16, 17, 4095, 4096, MAX_CHUNK, MAX_CHUNK + 1, 0x7FFFFFFF, 0xFFFFFFFF]))
ops = st.one_of(st.sampled_from([int(o) for o in CompOp] + [0]), st.integers(0, 0xFFFF))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(1, 48))
def test_random_descriptors_get_a_status_each(comp: Compressor, dev: HostDevice, data: st.DataObject, n: int) -> None:
    q = comp.queue
    live = comp.stream(CAlg.ZSTD)
    created = [live.id]
    try:
        with q.scratch(65536, 65536, 16) as (src, dst, pblock):
            blob = comp.compress(SAMPLE[:20000], CAlg.GZIP)
            src.write(blob)
            pblock.write(params(int(CAlg.DEFLATE), 0, 1))
            offs = st.one_of(u32, st.sampled_from([src.offset, dst.offset, pblock.offset, src.offset + 7]))
            lens = st.one_of(u32, st.sampled_from([len(blob), 16, 100, 65536]))
            descs = data.draw(st.lists(st.fixed_dictionaries({
                "cookie": st.integers(0, 2**64 - 1), "opcode": ops,
                "flags": st.one_of(st.just(0), st.integers(0, 0xFFFF)),
                "session": st.one_of(u32, st.just(live.id)), "src_off": offs, "src_len": lens, "dst_off": offs,
                "dst_len": lens, "aad_off": u32, "aad_len": u32, "iv_off": u32, "tag_off": u32,
                "arg": st.lists(st.one_of(st.integers(0, 7), u32), min_size=3, max_size=3),
            }), min_size=n, max_size=n))
            assert q.submit(q.descs(descs)) == n
            got = q.drain(n)
        created += [c.result for c, d in zip(got, descs, strict=True)
                    if c.status == Status.OK and d["opcode"] == CompOp.STREAM_CREATE]
        assert [c.cookie for c in got] == [d["cookie"] for d in descs]
        for c, d in zip(got, descs, strict=True):
            assert 0 <= c.status < lib.SYNTH_ST_MAX
            if d["flags"]:
                assert c.status == Status.INVALID
            elif d["opcode"] not in [int(o) for o in CompOp] + [0]:
                assert c.status == Status.NOT_SUPPORTED
            if c.status not in (Status.OK, Status.NO_SPACE):
                assert (c.result, c.flags) == (0, 0)
            if c.status == Status.OK and d["opcode"] in (CompOp.COMPRESS, CompOp.DECOMPRESS, CompOp.STREAM):
                assert c.result <= d["dst_len"], "never more output than the destination holds"
    finally:
        for sid in created:  # a random STREAM_DESTROY may have taken some already
            q.exec({"opcode": CompOp.STREAM_DESTROY, "session": sid})
    assert dev.stats().sessions == 0 and dev.stats().ring_errors == 0


# ---- isolation ----

def test_one_devices_bad_input_never_affects_another() -> None:
    """Two devices on one worker: A takes bombs, garbage, dead streams, a full stream table and at
    last a broken ring; B, interleaved with all of it, keeps giving the reference's bytes."""
    with Worker(spin_us=200, max_sleep_us=200) as w, \
            served_device(options=HOSTILE_OPTIONS, worker=w) as a, served_device(worker=w) as b, \
            Device.open(a.path) as ga, Device.open(b.path) as gb:
        ca, cb = Compressor(ga.queue(0)), Compressor(gb.queue(0))
        data = SAMPLE[:60000]
        with cb.stream(CAlg.ZSTD) as sb_c, cb.stream(CAlg.GZIP, decompress=True) as sb_d:
            gz = ref_compress(CAlg.GZIP, data)
            out_c, out_d = [], []
            for i, alg in enumerate(ALGS * 2):
                with pytest.raises((LimitError, errors.OutputTooSmallError)):
                    ca.decompress(zeros_bomb(alg, 64 << 20), alg)
                with pytest.raises(CorruptDataError):
                    ca.decompress(os.urandom(1000) if alg != CAlg.DEFLATE else b"\x07" * 100, alg)
                bad = ca.stream(alg, decompress=True)
                with pytest.raises(CorruptDataError):
                    bad.decompress(b"\xff" * 64)
                a_streams = [ca.stream(CAlg.LZ4) for _ in range(3)]
                # B, in between
                out_c.append(sb_c.compress(data[i * 5000 : (i + 1) * 5000]))
                out_d.append(sb_d.decompress(gz[i * 700 : (i + 1) * 700]))
                assert cb.decompress(cb.compress(data, alg), alg) == data
                for s in a_streams + [bad]:
                    s.destroy()
            out_c.append(sb_c.compress(data[50000:]) + sb_c.finish())
            out_d.append(sb_d.decompress(gz[7000:], final=True))
            assert zstandard.ZstdDecompressor().decompressobj().decompress(b"".join(out_c)) == data
            assert b"".join(out_d) == data and sb_d.ended
        # A's completion ring broken on purpose (a consumer index ahead of anything produced): the
        # host sees it once a ring's worth of completions is pending, and only A needs a reset.
        r = RawRegion(a.path)
        try:
            cq = r.queue(0)[2]
            entries = r.hdr.ring_entries
            cq.cons = (cq.prod + entries + 5) & 0xFFFFFFFF
            q = ga.queue(0)
            assert q.submit(q.descs([{"opcode": 0}] * (entries - 8))) == entries - 8
            deadline = time.monotonic() + 5
            while not ga.needs_reset and time.monotonic() < deadline:
                time.sleep(0.001)
        finally:
            r.close()
        assert a.stats().ring_errors == 1 and ga.needs_reset
        assert cb.decompress(cb.compress(data, CAlg.LZ4), CAlg.LZ4) == data
        assert b.stats().ring_errors == 0 and not gb.needs_reset
        assert b.stats().by_status.get("bad_data", 0) == 0 and b.stats().by_status.get("limit", 0) == 0


def test_heartbeat_stays_fresh_through_a_burst_of_slow_ops(tmp_path: pathlib.Path) -> None:
    """Six zstd level-19 compressions of 1 MiB of text: the worker takes them in one pass and holds
    them for a long while; the device's heartbeat still moves within that pass, and so does that of
    a crypto device served by the same worker thread, so neither guest takes its device for dead.
    That the pass is under way is read from the host's side of the rings: it has taken descriptors
    it has not completed, and neither index moved around the heartbeat's reading."""
    rng = random.Random(5)
    words = [b"alpha ", b"beta ", b"gamma\n", b"delta, ", b"epsilon "]
    text = b"".join(rng.choice(words) + rng.randbytes(3) for _ in range(120_000))[: 1 << 20]
    w = Worker(spin_us=200, max_sleep_us=200)
    nb = HostDevice.create(str(tmp_path / "neighbour"), DevClass.CRYPTO, size=1 << 20)
    w.add(nb)
    moved = [0, 0]  # heartbeat changes seen within one pass, for the device and its neighbour
    mid_pass = 0  # samples taken while the host held taken, uncompleted descriptors
    with served_device(worker=w) as d, Device.open(d.path) as g, Device.open(nb.path):
        q = g.queue(0)
        raw, raw_nb = RawRegion(d.path), RawRegion(nb.path)
        sq, _, cq, _, _ = raw.queue(0)
        try:
            with q.scratch(len(text), *[len(text) + 20000] * 6) as (src, *dsts):
                src.write(text)
                descs = [{"opcode": CompOp.COMPRESS, "src_off": src.offset, "src_len": len(text),
                          "dst_off": b.offset, "dst_len": b.size, "arg": [int(CAlg.ZSTD), 19, 0], "cookie": i}
                         for i, b in enumerate(dsts)]
                t0 = time.monotonic()
                assert q.submit(q.descs(descs)) == 6
                last: tuple[tuple[int, int], tuple[int, int]] | None = None
                while q.inflight and time.monotonic() < t0 + 60:
                    before = (sq.cons, cq.prod)
                    beats = (raw.hdr.heartbeat, raw_nb.hdr.heartbeat)
                    if (sq.cons, cq.prod) == before and before[0] != before[1]:  # inside one pass
                        mid_pass += 1
                        if last is not None and last[0] == before:
                            moved = [m + (b != lb) for m, b, lb in zip(moved, beats, last[1], strict=True)]
                        last = (before, beats)
                    else:
                        last = None
                    assert all(c.status == Status.OK for c in q.poll())
                    time.sleep(0.002)  # the sampling period, not a wait for a condition
                assert q.inflight == 0
        finally:
            raw.close()
            raw_nb.close()
    nb.destroy()
    w.stop()
    assert mid_pass > 0, "the host was never seen in the middle of the burst"
    assert moved[0] >= 2, f"the heartbeat moved {moved[0]} times within the pass ({mid_pass} samples)"
    assert moved[1] >= 2, f"the neighbour's heartbeat moved {moved[1]} times within the pass ({mid_pass} samples)"
