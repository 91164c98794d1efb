# SPDX-License-Identifier: Apache-2.0
"""A packet guest is untrusted: hostile SEND and RECV descriptors end as statuses (in order, and
counted), a descriptor is copied once, a broken ring marks only its own device, random descriptors
each get one completion, and a flooded or misbehaving neighbour on the same worker does not disturb
another pair's traffic.

Run as a script, this file is the hostile peer of the last test:

  test_packet_hostile.py frames PATH SECONDS    send valid frames as fast as possible on channel 0
  test_packet_hostile.py garbage PATH SECONDS   random descriptors on both queues, index attacks, resets
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from waiting import until

from libvirt_synth._native import lib  # noqa: E402
from libvirt_synth.abi import DevClass, PacketOp, Status  # noqa: E402
from libvirt_synth.guest import Device  # noqa: E402
from libvirt_synth.guest.packet import PacketChannel, device_counters  # noqa: E402
from libvirt_synth.host import packet as host_packet  # noqa: E402
from libvirt_synth.host.device import HostDevice, Worker  # noqa: E402

from rawregion import RawRegion  # noqa: E402

SEND, RECV = int(PacketOp.SEND), int(PacketOp.RECV)


def frame(seq: int, size: int = 64) -> bytes:
    head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x02\x88\xb5" + seq.to_bytes(4, "big")
    return (head + bytes((seq + i) & 0xFF for i in range(size)))[:size]



def taken(path: str, queue: int) -> None:
    """Wait until the host has taken every descriptor published on a queue of the device at path:
    its consumer index of the submission ring has reached the producer index."""
    raw = RawRegion(path)
    try:
        sq = raw.queue(queue)[0]
        until(lambda: sq.cons == sq.prod, f"the host to take queue {queue}'s descriptors")
    finally:
        raw.close()


def full_pass(worker: Worker) -> None:
    """Wait until the worker has finished the pass it is in and one more."""
    start = worker.stats()["passes"]
    until(lambda: worker.stats()["passes"] >= start + 2, "two worker passes")


class Pair:
    """Two wired packet devices with their guests, driven through raw queues."""

    def __init__(self, region_dir: pathlib.Path, worker: Worker) -> None:
        self.worker = worker
        self.a = HostDevice.create(str(region_dir / "a"), DevClass.PACKET, queues=2)
        self.b = HostDevice.create(str(region_dir / "b"), DevClass.PACKET, queues=2)
        host_packet.wire(self.a, 0, self.b, 0)
        worker.add(self.a)
        worker.add(self.b)
        self.ga = Device.open(self.a.path)
        self.gb = Device.open(self.b.path)
        self.atx, self.brx = self.ga.queue(0), self.gb.queue(1)
        self.src = self.atx.alloc(16384)
        self.dst = self.brx.alloc(16384)

    def send(self, data: bytes, cookie: int = 0) -> Any:
        self.src.write(data)
        return self.atx.exec({"opcode": SEND, "src_off": self.src.offset, "src_len": len(data), "cookie": cookie})

    def still_serves(self) -> None:
        """A correct frame still goes from a to b, into a correct buffer."""
        data = frame(4242, 300)
        assert self.brx.submit(self.brx.descs([{"opcode": RECV, "dst_off": self.dst.offset, "dst_len": 2048,
                                                "cookie": 99}])) == 1
        taken(self.b.path, 1)  # the buffer is the host's before the frame is sent
        c = self.send(data)
        assert c.status == Status.OK
        got = self.brx.drain(1)[0]
        assert (got.cookie, got.status, got.result) == (99, Status.OK, 300)
        assert self.dst.read(300) == data
        assert not self.ga.needs_reset and not self.gb.needs_reset

    def close(self) -> None:
        self.ga.close()
        self.gb.close()
        self.a.destroy()
        self.b.destroy()


@pytest.fixture
def pair(region_dir: pathlib.Path, worker: Worker) -> Iterator[Pair]:
    p = Pair(region_dir, worker)
    try:
        yield p
    finally:
        p.close()


HOSTILE_SEND = [
    ("frame past the arena", {"src_off": "END", "src_len": 64}, Status.INVALID),
    ("length wraps", {"src_off": 0xFFFFFFF0, "src_len": 0x20}, Status.INVALID),
    ("frame straddles the end", {"src_off": "END-32", "src_len": 64}, Status.INVALID),
    ("length huge", {"src_len": 0xFFFFFFFF}, Status.INVALID),
    ("offset huge, length 0", {"src_off": 0xFFFFFFFF, "src_len": 0}, Status.INVALID),
    ("oversize frame", {"src_len": lib.SYNTH_PKT_MAX_FRAME + 1}, Status.LIMIT),
    ("runt frame", {"src_len": 13}, Status.LIMIT),
    ("empty frame", {"src_len": 0}, Status.LIMIT),
    ("flags set", {"flags": 0x4000}, Status.INVALID),
]

OTHER_OPS = [
    ("receive on the send queue", {"opcode": RECV, "dst_off": 0, "dst_len": 2048}, Status.NOT_SUPPORTED),
    ("unknown opcode", {"opcode": 0xBEEF}, Status.NOT_SUPPORTED),
    ("crypto opcode", {"opcode": 0x12}, Status.NOT_SUPPORTED),
    ("nop", {"opcode": 0}, Status.OK),
]


@pytest.mark.parametrize("case,fields,want", HOSTILE_SEND + OTHER_OPS, ids=[h[0] for h in HOSTILE_SEND + OTHER_OPS])
def test_hostile_send(pair: Pair, case: str, fields: dict[str, Any], want: Status) -> None:
    end = pair.atx.arena_size
    d = {"opcode": SEND, "src_off": pair.src.offset, "src_len": 64, "cookie": 0xC0FFEE}
    for k, v in fields.items():
        d[k] = {"END": end, "END-32": end - 32}.get(v, v) if isinstance(v, str) else v
    c = pair.atx.exec(d)
    assert (c.cookie, Status(c.status), c.result) == (0xC0FFEE, want, 0), case
    st = host_packet.stats(pair.a)
    is_send = d["opcode"] == SEND
    assert st["tx_bad"] == (1 if is_send else 0) and st["tx_drops"] == st["tx_bad"]
    assert pair.ga.queue(0).exec({"opcode": 0}).status == Status.OK  # the queue goes on
    assert host_packet.stats(pair.b)["rx_frames"] == 0, "nothing reached the peer"
    pair.still_serves()


HOSTILE_RECV = [
    ("buffer past the arena", {"dst_off": "END"}, Status.INVALID),
    ("buffer straddles the end", {"dst_off": "END-100", "dst_len": 2048}, Status.INVALID),
    ("length wraps", {"dst_off": 0xFFFFFF00, "dst_len": 0x200}, Status.INVALID),
    ("length huge", {"dst_len": 0xFFFFFFFF}, Status.INVALID),
    ("buffer shorter than a frame header", {"dst_len": 13}, Status.INVALID),
    ("flags set", {"flags": 1}, Status.INVALID),
    ("send on the receive queue", {"opcode": SEND, "src_off": 0, "src_len": 64}, Status.NOT_SUPPORTED),
    ("unknown opcode", {"opcode": 0x7777}, Status.NOT_SUPPORTED),
    ("nop", {"opcode": 0}, Status.OK),
]


@pytest.mark.parametrize("case,fields,want", HOSTILE_RECV, ids=[h[0] for h in HOSTILE_RECV])
def test_hostile_recv_completes_in_posting_order(pair: Pair, case: str, fields: dict[str, Any], want: Status) -> None:
    """[good, hostile, good]: the hostile one is judged at once but completes only after the good
    buffer posted before it, never before."""
    end = pair.brx.arena_size
    good = {"opcode": RECV, "dst_off": pair.dst.offset, "dst_len": 4096}
    bad = good | {"dst_off": pair.dst.offset + 4096, "cookie": 2}
    for k, v in fields.items():
        bad[k] = {"END": end, "END-100": end - 100}.get(v, v) if isinstance(v, str) else v
    assert pair.brx.submit(pair.brx.descs([good | {"cookie": 1}, bad, good | {"cookie": 3,
                                                                          "dst_off": pair.dst.offset + 8192}])) == 3
    taken(pair.b.path, 1)  # the host has judged all three
    full_pass(pair.worker)  # and finished the pass that took them
    assert pair.brx.poll() == [], "nothing completes before the first buffer is filled"
    assert pair.send(frame(1, 100)).status == Status.OK
    c1, c2 = pair.brx.drain(2)
    assert (c1.cookie, c1.status, c1.result) == (1, Status.OK, 100)
    assert (c2.cookie, Status(c2.status), c2.result) == (2, want, 0), case
    assert pair.send(frame(2, 200)).status == Status.OK
    (c3,) = pair.brx.drain(1)
    assert (c3.cookie, c3.status, c3.result) == (3, Status.OK, 200)
    assert pair.dst.read(100) == frame(1, 100) and pair.dst.read(200, at=8192) == frame(2, 200)
    st = host_packet.stats(pair.b)
    assert st["rx_bad_desc"] == (0 if want == Status.OK else 1) and st["rx_drops"] == 0
    pair.still_serves()


def test_posted_buffer_is_copied_once(pair: Pair) -> None:
    """Rewriting a RECV descriptor after the host took it changes nothing: the frame goes where
    the descriptor said when it was published."""
    raw = RawRegion(pair.b.path)
    sq, sqe, _, _, arena_off = raw.queue(1)
    guard = pair.brx.arena_size - 4096
    before = bytes(raw.map[arena_off + guard:arena_off + guard + 4096])
    assert pair.brx.submit(pair.brx.descs([{"opcode": RECV, "dst_off": pair.dst.offset, "dst_len": 512,
                                            "cookie": 5}])) == 1
    deadline = time.monotonic() + 5
    while sq.cons != 1 and time.monotonic() < deadline:
        time.sleep(0.0005)
    assert sq.cons == 1, "the host took the descriptor"
    sqe[0].dst_off = guard
    sqe[0].dst_len = 9000
    assert pair.send(frame(7, 400)).status == Status.OK
    (c,) = pair.brx.drain(1)
    assert (c.cookie, c.status, c.result) == (5, Status.OK, 400)
    assert pair.dst.read(400) == frame(7, 400)
    assert bytes(raw.map[arena_off + guard:arena_off + guard + 4096]) == before
    raw.close()


def test_broken_receive_ring_marks_only_that_device(pair: Pair, region_dir: pathlib.Path, worker: Worker) -> None:
    c = HostDevice.create(str(region_dir / "c"), DevClass.PACKET, queues=2)
    host_packet.wire(c, 0, c, 0)
    worker.add(c)
    try:
        with Device.open(c.path) as gc:
            cc = PacketChannel(gc, 0)
            raw = RawRegion(pair.b.path)
            _, _, cq, _, _ = raw.queue(1)
            entries = raw.hdr.ring_entries
            cq.cons = (cq.prod + entries + 5) & 0xFFFFFFFF
            # The host reads the completion index when its cached copy shows too little room.
            assert pair.brx.submit(pair.brx.descs([{"opcode": 0}] * (entries - 8))) == entries - 8
            deadline = time.monotonic() + 5
            while not pair.gb.needs_reset and time.monotonic() < deadline:
                time.sleep(0.001)
            assert pair.gb.needs_reset and pair.b.stats().dev_error == lib.SYNTH_DEVERR_CQ_INDEX
            # The sender is not harmed: its frames to the broken peer are dropped and counted.
            assert pair.send(frame(1)).status == Status.NO_RESOURCES
            assert host_packet.stats(pair.a)["tx_peer_full"] == 1 and pair.a.stats().ring_errors == 0
            # Another device on the same worker keeps its traffic.
            assert cc.send_packets([frame(i) for i in range(10)]) == 10
            assert cc.receive(10) == [frame(i) for i in range(10)]
            raw.close()
            pair.gb.reset()
            pair.brx = pair.gb.queue(1)
            pair.dst = pair.brx.alloc(16384)
            pair.still_serves()
    finally:
        c.destroy()


# ---- random descriptors ----

u32 = st.one_of(
    st.integers(0, 2**32 - 1),
    st.sampled_from([0, 1, 13, 14, 15, 60, 64, 1514, 9216, 9217, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]),
    st.integers(0, 1 << 21),  # around the real arena size
)
descriptor = st.fixed_dictionaries({
    "cookie": st.integers(0, 2**64 - 1),
    "opcode": st.one_of(st.sampled_from([SEND, RECV, 0]), st.integers(0, 0xFFFF)),
    "flags": st.one_of(st.just(0), st.just(0), st.integers(0, 0xFFFF)),
    "session": u32, "src_off": u32, "src_len": u32, "dst_off": u32, "dst_len": u32,
    "aad_off": u32, "aad_len": u32, "iv_off": u32, "tag_off": u32,
    "arg": st.lists(u32, min_size=3, max_size=3),
})
SEND_STATUSES = {Status.OK, Status.INVALID, Status.LIMIT, Status.NO_RESOURCES, Status.NOT_SUPPORTED}
RECV_STATUSES = {Status.OK, Status.INVALID, Status.NOT_SUPPORTED, Status.NO_SPACE}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tx=st.lists(descriptor, max_size=48), rx=st.lists(descriptor, max_size=48))
def test_random_descriptors_each_complete_once_in_order(pair: Pair, tx: list[dict[str, Any]],
                                                        rx: list[dict[str, Any]]) -> None:
    assert pair.brx.submit(pair.brx.descs(rx)) == len(rx)
    assert pair.atx.submit(pair.atx.descs(tx)) == len(tx)
    got_tx = pair.atx.drain(len(tx))
    assert [c.cookie for c in got_tx] == [d["cookie"] for d in tx]
    for c, d in zip(got_tx, tx, strict=True):
        assert Status(c.status) in SEND_STATUSES
        if d["flags"]:
            assert c.status == Status.INVALID
        elif d["opcode"] not in (SEND, 0):
            assert c.status == Status.NOT_SUPPORTED
        assert c.result == (d["src_len"] if c.status == Status.OK and d["opcode"] == SEND else 0)
    # Buffers still posted wait for frames: send until each RECV has its completion.
    got_rx = pair.brx.poll(64)
    for i in range(len(rx) + 1):
        if len(got_rx) == len(rx):
            break
        pair.send(frame(i, 14 + i * 37 % 2000))
        got_rx += pair.brx.poll(64)
    got_rx += pair.brx.drain(len(rx) - len(got_rx)) if len(got_rx) < len(rx) else []
    assert [c.cookie for c in got_rx] == [d["cookie"] for d in rx], "one completion each, in posting order"
    for c, d in zip(got_rx, rx, strict=True):
        assert Status(c.status) in RECV_STATUSES
        if c.status == Status.OK and d["opcode"] == RECV:
            assert 14 <= c.result <= min(d["dst_len"], lib.SYNTH_PKT_MAX_FRAME)
        if d["flags"]:
            assert c.status == Status.INVALID
    assert pair.a.stats().ring_errors == 0 and pair.b.stats().ring_errors == 0
    pair.still_serves()


# ---- a flooded neighbour and a garbage neighbour on the same worker ----

def test_flooded_and_hostile_neighbours_do_not_disturb_a_pair(region_dir: pathlib.Path, worker: Worker) -> None:
    good = Pair(region_dir, worker)
    flooder = HostDevice.create(str(region_dir / "flooder"), DevClass.PACKET, queues=2)
    victim = HostDevice.create(str(region_dir / "victim"), DevClass.PACKET, queues=2)
    garbage = HostDevice.create(str(region_dir / "garbage"), DevClass.PACKET, queues=2)
    host_packet.wire(flooder, 0, victim, 0)
    host_packet.wire(garbage, 0, garbage, 0)
    for d in (flooder, victim, garbage):
        worker.add(d)
    procs = []
    try:
        with Device.open(victim.path) as gv:
            stuck = PacketChannel(gv, 0, rx_bufs=8)  # posts 8 buffers and never reads them
            me = str(pathlib.Path(__file__))
            procs = [subprocess.Popen([sys.executable, me, mode, path, "3"], stdout=subprocess.PIPE, text=True)
                     for mode, path in (("frames", flooder.path), ("garbage", garbage.path))]
            def noise() -> tuple[int, int]:
                """What the neighbours have done so far, counted by the host."""
                return host_packet.stats(flooder)["tx_peer_full"], garbage.stats().ops

            until(lambda: min(noise()) > 0, "both neighbours to start")
            before = noise()
            a, b = PacketChannel(good.ga, 0), PacketChannel(good.gb, 0)
            frames = [frame(i, 64 + i % 1400) for i in range(3000)]
            got: list[bytes] = []
            for i in range(0, len(frames), 64):
                chunk = frames[i:i + 64]
                sent = 0
                while sent < len(chunk):
                    sent += a.send_packets(chunk[sent:])
                got += b.receive(len(chunk))
            assert got == frames, "every frame, in order, despite the neighbours"
            after = noise()
            assert after[0] > before[0] and after[1] > before[1], "both neighbours were busy meanwhile"
            results = [json.loads(p.communicate(timeout=30)[0].strip().splitlines()[-1]) for p in procs]
            assert all(p.returncode == 0 for p in procs)
            assert stuck.are_there_packets() == 8
        fs, vs = host_packet.stats(flooder), host_packet.stats(victim)
        assert results[0]["sent"] > 8, "the flood sent more than the victim's buffers take"
        assert vs["rx_frames"] == 8 and vs["rx_no_buffer"] > 0 and fs["tx_peer_full"] == vs["rx_no_buffer"]
        assert results[1]["submitted"] > 0
        sa, sb = host_packet.stats(good.a), host_packet.stats(good.b)
        assert sa["tx_frames"] == 3000 and sa["tx_drops"] == 0 and sb["rx_drops"] == 0
        assert good.a.stats().ring_errors == 0 and good.b.stats().ring_errors == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        good.close()
        for d in (flooder, victim, garbage):
            d.destroy()


def flood_frames(path: str, seconds: float) -> dict[str, int]:
    dev = Device.open(path)
    ch = PacketChannel(dev, 0, buf_size=128)
    sent = 0
    pkts = ch.alloc(64)
    for i, p in enumerate(pkts):
        p.write(frame(i, 64))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pkts = ch.alloc(64)
        for p in pkts:
            p.len = 64
        n = ch.send(pkts)
        ch.free(pkts[n:])
        sent += n
    ch.close()
    dev.close()
    return {"sent": sent}


def random_packet_desc(rng: random.Random) -> dict[str, int]:
    return {
        "cookie": rng.getrandbits(64), "opcode": rng.choice([SEND, RECV, 0, rng.getrandbits(16)]),
        "flags": rng.choice([0, 0, rng.getrandbits(16)]),
        "src_off": rng.choice([0, rng.getrandbits(32), rng.randrange(1 << 21)]),
        "src_len": rng.choice([64, 1514, 9216, 9217, rng.getrandbits(32)]),
        "dst_off": rng.choice([0, rng.getrandbits(32), rng.randrange(1 << 21)]),
        "dst_len": rng.choice([13, 64, 2048, rng.getrandbits(32)]),
    }


def garbage_flood(path: str, seconds: float) -> dict[str, int]:
    """Random descriptors on both queues of channel 0, ring index attacks and resets."""
    from hostile_peer import flood_with

    return flood_with(path, seconds, 2, random_packet_desc)


if __name__ == "__main__":
    mode, path, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    result = flood_frames(path, secs) if mode == "frames" else garbage_flood(path, secs)
    print(json.dumps(result), flush=True)


# A sender in its own process: four frames in its transmit arena, the first on a page of its own,
# then (once told) its region cut right after that page, and the four SENDs submitted together.
CUT_SENDER = """
import os, sys
from libvirt_synth.abi import PacketOp
from libvirt_synth.guest import Device
path, arena_off = sys.argv[1], int(sys.argv[2])
q = Device.open(path).queue(0)
first, _pad, *rest = q.alloc(64), q.alloc(8192), q.alloc(64), q.alloc(64), q.alloc(64)
frames = [first, *rest]
for i, b in enumerate(frames):
    b.write(b"\\xff" * 12 + b"\\x88\\xb5" + bytes([i]) * 50)
cut = (arena_off + first.offset + 64 + 4095) // 4096 * 4096
assert arena_off + rest[0].offset >= cut
d = q.descs([{"opcode": PacketOp.SEND, "src_off": b.offset, "src_len": 64, "cookie": i} for i, b in enumerate(frames)])
print("ready", flush=True)
sys.stdin.readline()
os.truncate(path, cut)
assert q.submit(d) == 4
print("submitted", flush=True)
sys.stdin.read()
os._exit(0)
"""


def test_a_burst_cut_by_the_senders_fault_leaves_the_receiver_counted(region_dir: pathlib.Path,
                                                                     worker: Worker) -> None:
    """The sender's region is cut between the first frame of a burst and the rest: the worker
    delivers the first, faults reading the second and abandons the sender. The receiver goes on
    with exactly that one frame, completed and counted (the host adds up a burst's deliveries at its
    end, so the next pass must count what a fault left uncounted)."""
    a = HostDevice.create(str(region_dir / "cut-tx"), DevClass.PACKET, queues=2)
    b = HostDevice.create(str(region_dir / "cut-rx"), DevClass.PACKET, queues=2)
    host_packet.wire(a, 0, b, 0)
    worker.add(a)
    worker.add(b)
    raw = RawRegion(a.path)
    arena_off = raw.queue(0)[4]
    raw.close()
    peer = subprocess.Popen([sys.executable, "-c", CUT_SENDER, a.path, str(arena_off)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(__file__))
    try:
        with Device.open(b.path) as gb, PacketChannel(gb, 0) as rx:
            assert peer.stdout is not None and peer.stdin is not None
            assert peer.stdout.readline().strip() == "ready"
            worker.remove(a)  # so that the worker takes the four SENDs in one burst
            peer.stdin.write("go\n")
            peer.stdin.flush()
            assert peer.stdout.readline().strip() == "submitted"
            worker.add(a)
            until(lambda: worker.stats()["region_faults"] == 1)
            assert a.stats().dev_error == lib.SYNTH_DEVERR_REGION and b.stats().dev_error == 0
            got = rx.receive(1)
            assert got == [b"\xff" * 12 + b"\x88\xb5" + bytes([0]) * 50]
            time.sleep(0.05)
            assert rx.give_me_packets() == []
            # Counted once, everywhere: host counters, the region's, the device's completions.
            until(lambda: host_packet.stats(b)["rx_frames"] == 1)
            assert host_packet.stats(b)["rx_bytes"] == 64
            assert device_counters(gb)["rx_frames"] == 1 and device_counters(gb)["rx_bytes"] == 64
            assert b.stats().by_status.get("ok", 0) == 1
    finally:
        peer.communicate("", timeout=10)
    b.destroy()
    a.destroy()
