# SPDX-License-Identifier: Apache-2.0
"""Packet devices: frames over virtual wires between two guests (and between two channels of one
device), in order, up to jumbo size; drops counted (host stats and the header), never silent;
links and their errors; the serve command line."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from waiting import until

from libvirt_synth import errors
from libvirt_synth.abi import PKT_MAX_FRAME, DevClass, Status
from libvirt_synth.guest import Device
from libvirt_synth.guest.packet import PacketChannel, device_counters
from libvirt_synth.host import packet as host_packet
from libvirt_synth.host.device import HostDevice, HostDeviceSpec, Worker

from rawregion import RawRegion

ETHERTYPE = 0x88B5  # IEEE 802 local experimental


def frame(seq: int, size: int = 64) -> bytes:
    """A broadcast frame carrying its sequence number, then a pattern that depends on it."""
    head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + ETHERTYPE.to_bytes(2, "big") + seq.to_bytes(4, "big")
    body = bytes((seq * 7 + i) & 0xFF for i in range(max(0, size - len(head))))
    return (head + body)[:size]



def taken(dev: HostDevice, queue: int) -> None:
    """Wait until the host has taken every descriptor published on a queue of dev (its consumer
    index has reached the producer index): RECV buffers posted there are then the host's."""
    raw = RawRegion(dev.path)
    try:
        sq = raw.queue(queue)[0]
        until(lambda: sq.prod != 0 and sq.cons == sq.prod, what=f"the host to take queue {queue}'s descriptors")
    finally:
        raw.close()


def settle(ch: PacketChannel, sent: int) -> dict[str, int]:
    """Wait until every frame the channel sent has completed; its stats then."""
    def done() -> dict[str, int] | None:
        ch.reclaim()
        st = ch.stats()
        return st if st["tx_ok"] + st["tx_dropped"] == sent else None
    return dict(until(done, what="transmit completions"))


def packet_dev(region_dir: pathlib.Path, name: str, channels: int = 1, **kw: Any) -> HostDevice:
    return HostDevice.create(str(region_dir / name), DevClass.PACKET, queues=2 * channels, **kw)


@pytest.fixture
def pair(region_dir: pathlib.Path, worker: Worker) -> Iterator[tuple[HostDevice, HostDevice]]:
    """Two packet devices joined by a wire on channel 0, served by one worker."""
    a, b = packet_dev(region_dir, "a"), packet_dev(region_dir, "b")
    host_packet.wire(a, 0, b, 0)
    worker.add(a)
    worker.add(b)
    try:
        yield a, b
    finally:
        a.destroy()
        b.destroy()


@pytest.fixture
def guests(pair: tuple[HostDevice, HostDevice]) -> Iterator[tuple[PacketChannel, PacketChannel]]:
    a, b = pair
    with Device.open(a.path) as ga, Device.open(b.path) as gb:
        yield PacketChannel(ga, 0), PacketChannel(gb, 0)


def exchange(tx: PacketChannel, rx: PacketChannel, frames: list[bytes]) -> list[bytes]:
    """Send frames in windows the receiver has buffers for; return what arrived."""
    window = min(rx.stats()["rx_posted"], 64)
    got: list[bytes] = []
    for i in range(0, len(frames), window):
        chunk = frames[i:i + window]
        sent = 0
        while sent < len(chunk):
            sent += tx.send_packets(chunk[sent:])
        got.extend(rx.receive(len(chunk)))
    return got


def test_wire_both_ways_in_order(guests: tuple[PacketChannel, PacketChannel],
                                 pair: tuple[HostDevice, HostDevice]) -> None:
    ca, cb = guests
    sizes = [14, 60, 64, 1500, 1514, 4000, 9000, 9014, PKT_MAX_FRAME]
    ab = [frame(i, sizes[i % len(sizes)]) for i in range(300)]
    ba = [frame(1000 + i, sizes[-1 - i % len(sizes)]) for i in range(300)]
    assert exchange(ca, cb, ab) == ab
    assert exchange(cb, ca, ba) == ba
    assert settle(ca, 300)["tx_ok"] == 300 and settle(cb, 300)["tx_ok"] == 300
    a, b = pair
    sa, sb = host_packet.stats(a), host_packet.stats(b)
    assert sa["tx_frames"] == sb["rx_frames"] == 300 and sa["tx_drops"] == sb["rx_drops"] == 0
    assert sa["tx_bytes"] == sum(map(len, ab)) == sb["rx_bytes"]
    # The header carries the same counters, for the guest.
    ctr = ca.counters()
    assert ctr["tx_frames"] == 300 and ctr["rx_frames"] == 300 and ctr["tx_bytes"] == sa["tx_bytes"]
    assert ctr["links"] == ["wire"] and ctr["max_frame"] == PKT_MAX_FRAME and ctr["min_frame"] == 14


def test_primitives_and_zero_copy(guests: tuple[PacketChannel, PacketChannel],
                                  pair: tuple[HostDevice, HostDevice]) -> None:
    ca, cb = guests
    assert cb.are_there_packets() == 0 and cb.give_me_packets(8) == []
    pkts = ca.alloc(3)
    assert len(pkts) == 3 and all(p.cap >= PKT_MAX_FRAME for p in pkts)
    for i, p in enumerate(pkts):
        p.write(frame(i, 100 + i))
    assert ca.send(pkts) == 3
    until(lambda: cb.are_there_packets() == 3, what="three frames")
    posted = cb.stats()["rx_posted"]
    got = cb.give_me_packets_zc(2)
    assert [bytes(p.data) for p in got] == [frame(0, 100), frame(1, 101)]
    assert cb.are_there_packets() == 1 and cb.stats()["rx_posted"] == posted
    # The frames are in the receive queue's arena, in place: each is there once (the host copied it
    # once, straight into the posted buffer), and a write through the packet lands in the region.
    raw = RawRegion(pair[1].path)
    try:
        qi = raw.hdr.queues[1]  # channel 0's receive queue
        arena = bytes(raw.map[qi.arena_off:qi.arena_off + qi.arena_size])
        at = [arena.find(f) for f in (frame(0, 100), frame(1, 101))]
        assert -1 not in at and all(arena.count(f) == 1 for f in (frame(0, 100), frame(1, 101)))
        got[0].data[0] = 0x55
        got[1].data[99] ^= 0xFF
        assert raw.map[qi.arena_off + at[0]] == 0x55
        assert raw.map[qi.arena_off + at[1] + 99] == frame(1, 101)[99] ^ 0xFF
        assert bytes(raw.map[qi.arena_off + at[0] + 1:qi.arena_off + at[0] + 100]) == frame(0, 100)[1:]
    finally:
        raw.close()
    cb.release(got)
    assert cb.stats()["rx_posted"] == posted + 2
    assert cb.give_me_packets(8) == [frame(2, 102)]


def test_drops_without_buffers_are_counted(pair: tuple[HostDevice, HostDevice]) -> None:
    a, b = pair
    with Device.open(a.path) as ga, Device.open(b.path) as gb:
        ca, cb = PacketChannel(ga, 0), PacketChannel(gb, 0, rx_bufs=4)
        assert cb.stats()["rx_posted"] == 4
        taken(b, 1)  # channel 0's receive queue: the 4 buffers are the host's now
        assert ca.send_packets([frame(i) for i in range(10)]) == 10
        st = settle(ca, 10)
        assert st["tx_ok"] == 4 and st["tx_dropped"] == 6
        assert cb.receive(4) == [frame(i) for i in range(4)]
        sa, sb = host_packet.stats(a), host_packet.stats(b)
        assert sa["tx_peer_full"] == 6 and sa["tx_drops"] == 6
        assert sb["rx_no_buffer"] == 6 and sb["rx_drops"] == 6
        assert a.stats().by_status == {"ok": 4, "no_resources": 6}
        assert ca.counters()["tx_drops"] == 6 and cb.counters()["rx_drops"] == 6


def test_frame_longer_than_the_posted_buffer(pair: tuple[HostDevice, HostDevice]) -> None:
    a, b = pair
    with Device.open(a.path) as ga, Device.open(b.path) as gb:
        ca = PacketChannel(ga, 0)
        rxq = gb.queue(1)  # channel 0's receive queue, driven by hand
        buf = rxq.alloc(256)
        assert rxq.submit(rxq.descs([{"opcode": 0x31, "dst_off": buf.offset, "dst_len": 100, "cookie": 7},
                                     {"opcode": 0x31, "dst_off": buf.offset, "dst_len": 256, "cookie": 8}])) == 2
        taken(b, 1)
        assert ca.send_packets([frame(1, 200), frame(2, 200)]) == 2
        c1, c2 = rxq.drain(2)
        assert (c1.cookie, Status(c1.status), c1.result) == (7, Status.NO_SPACE, 200)
        assert (c2.cookie, Status(c2.status), c2.result) == (8, Status.OK, 200)
        assert buf.read(200) == frame(2, 200)
        assert settle(ca, 2)["tx_dropped"] == 1
        assert host_packet.stats(b)["rx_too_long"] == 1 and host_packet.stats(a)["tx_peer_full"] == 1


def test_unlinked_channel_drops_and_counts(region_dir: pathlib.Path, worker: Worker) -> None:
    dev = packet_dev(region_dir, "alone")
    worker.add(dev)
    try:
        with Device.open(dev.path) as g:
            ch = PacketChannel(g, 0)
            assert ch.counters()["links"] == ["none"]
            assert ch.send_packets([frame(i) for i in range(5)]) == 5
            assert settle(ch, 5)["tx_dropped"] == 5
            assert host_packet.stats(dev)["tx_no_link"] == 5 and ch.counters()["tx_drops"] == 5
    finally:
        dev.destroy()


def test_peer_gone_or_without_driver(pair: tuple[HostDevice, HostDevice]) -> None:
    a, b = pair
    with Device.open(a.path) as ga:
        ca = PacketChannel(ga, 0)
        # b has no driver: what a sends is dropped at b and counted on both sides.
        assert ca.send_packets([frame(i) for i in range(3)]) == 3
        assert settle(ca, 3)["tx_dropped"] == 3
        assert host_packet.stats(b)["rx_no_buffer"] == 3 and host_packet.stats(a)["tx_peer_full"] == 3
        # b goes away while a is served: a keeps running, drops and counts, and its driver sees no link.
        b.destroy()
        assert host_packet.link(a, 0) == {"link": "wire", "peer": None, "peer_channel": 0, "peer_alive": False}
        until(lambda: ca.counters()["links"] == ["none"], what="the driver told of the lost link")  # a's worker
        assert ca.send_packets([frame(i) for i in range(4)]) == 4
        assert settle(ca, 7)["tx_dropped"] == 7
        assert host_packet.stats(a)["tx_no_link"] == 4


def test_two_channels_of_one_device(region_dir: pathlib.Path, worker: Worker) -> None:
    dev = packet_dev(region_dir, "loop", channels=2)
    host_packet.wire(dev, 0, dev, 1)
    worker.add(dev)
    try:
        with Device.open(dev.path) as g:
            c0, c1 = PacketChannel(g, 0), PacketChannel(g, 1)
            frames = [frame(i, 64 + i) for i in range(100)]
            assert exchange(c0, c1, frames) == frames
            assert exchange(c1, c0, frames[::-1]) == frames[::-1]
            assert device_counters(g)["links"] == ["wire", "wire"]
    finally:
        dev.destroy()


def test_channel_looped_back_to_itself(region_dir: pathlib.Path, worker: Worker) -> None:
    dev = packet_dev(region_dir, "self")
    host_packet.wire(dev, 0, dev, 0)
    worker.add(dev)
    try:
        with Device.open(dev.path) as g:
            ch = PacketChannel(g, 0)
            assert exchange(ch, ch, [frame(i) for i in range(50)]) == [frame(i) for i in range(50)]
    finally:
        dev.destroy()  # both references of the wire are dropped (a leak would show under ASan/valgrind)


def test_wire_across_workers_is_refused_by_the_data_path(region_dir: pathlib.Path, worker: Worker) -> None:
    """The two ends must share a worker: if not, frames are dropped and counted, never delivered."""
    a, b = packet_dev(region_dir, "a"), packet_dev(region_dir, "b")
    host_packet.wire(a, 0, b, 0)
    other = Worker(spin_us=200, max_sleep_us=200)
    worker.add(a)
    other.add(b)
    try:
        with Device.open(a.path) as ga, Device.open(b.path) as gb:
            ca, cb = PacketChannel(ga, 0), PacketChannel(gb, 0)
            taken(b, 1)  # b could receive: its buffers are with its own worker
            assert ca.send_packets([frame(i) for i in range(8)]) == 8
            assert settle(ca, 8)["tx_dropped"] == 8  # a frame is delivered, or not, before its SEND completes
            assert host_packet.stats(a)["tx_no_link"] == 8
            assert cb.are_there_packets() == 0 and host_packet.stats(b)["rx_frames"] == 0
    finally:
        a.destroy()
        b.destroy()
        other.stop()


def test_max_frame_per_device(region_dir: pathlib.Path, worker: Worker) -> None:
    a = packet_dev(region_dir, "a", options=(("max_frame", 1518),))
    b = packet_dev(region_dir, "b", options=(("max_frame", 1000),))
    host_packet.wire(a, 0, b, 0)
    worker.add(a)
    worker.add(b)
    try:
        with Device.open(a.path) as ga, Device.open(b.path) as gb:
            ca, cb = PacketChannel(ga, 0), PacketChannel(gb, 0)
            assert ca.max_frame == 1518 and ca.buf_size == 1536 and cb.max_frame == 1000
            txq = ga.queue(0)
            buf = txq.alloc(2048)
            buf.write(frame(0, 2048))
            got = [txq.exec({"opcode": 0x30, "src_off": buf.offset, "src_len": n}) for n in (1519, 1518, 1000, 13)]
            assert [Status(c.status) for c in got] == [Status.LIMIT, Status.NO_RESOURCES, Status.OK, Status.LIMIT]
            assert cb.receive(1) == [frame(0, 2048)[:1000]]
            assert host_packet.stats(b)["rx_bad_frame"] == 1  # 1518 > b's max_frame
            assert host_packet.stats(a)["tx_bad"] == 2
    finally:
        a.destroy()
        b.destroy()


def test_reset_forgets_posted_buffers(guests: tuple[PacketChannel, PacketChannel],
                                      pair: tuple[HostDevice, HostDevice]) -> None:
    ca, cb = guests
    assert exchange(ca, cb, [frame(1)]) == [frame(1)]
    cb.device.reset()  # returns once the host has acknowledged the new epoch
    cb.close()
    assert ca.send_packets([frame(2)]) == 1
    settle(ca, 2)
    assert host_packet.stats(pair[1])["rx_no_buffer"] == 1, "the old epoch's buffers are gone"
    cb2 = PacketChannel(cb.device, 0)
    assert exchange(ca, cb2, [frame(3)]) == [frame(3)]


def test_link_errors(region_dir: pathlib.Path, worker: Worker) -> None:
    a, b, c = packet_dev(region_dir, "a"), packet_dev(region_dir, "b"), packet_dev(region_dir, "c")
    crypto = HostDevice.create(str(region_dir / "k"), DevClass.CRYPTO)
    try:
        host_packet.wire(a, 0, b, 0)
        with pytest.raises(errors.ValueError, match="unlink it first"):
            host_packet.wire(a, 0, c, 0)
        with pytest.raises(errors.ValueError, match="no channel 1"):
            host_packet.wire(c, 1, b, 0)
        with pytest.raises(errors.ValueError, match="not a packet device"):
            host_packet.wire(crypto, 0, c, 0)
        host_packet.unlink(b, 0)
        assert host_packet.link(a, 0)["peer_alive"] is False
        host_packet.wire(a, 0, c, 0)  # a's dead wire is replaced
        assert host_packet.link(c, 0)["peer"] == "a"
        worker.add(b)
        with pytest.raises(errors.DeviceError, match="served by a worker"):
            host_packet.wire(b, 0, b, 0)
        with pytest.raises(errors.ValueError, match="unknown packet device option"):
            packet_dev(region_dir, "d", options=(("mtu", 1500),))
        with pytest.raises(errors.ValueError, match="max_frame must be"):
            packet_dev(region_dir, "d", options=(("max_frame", 20000),))
        with pytest.raises(errors.ValueError, match="Invalid argument"):
            HostDevice.create(str(region_dir / "odd"), DevClass.PACKET, queues=3)
    finally:
        for d in (a, b, c, crypto):
            d.destroy()


def test_serve_wire_from_the_command_line(region_dir: pathlib.Path) -> None:
    cmd = [sys.executable, "-m", "libvirt_synth.cli", "serve", "--json", "--class", "packet", "--dir",
           str(region_dir), "-d", "a", "-d", "b", "-d", "c", "--channels", "2", "--max-frame", "1518",
           "--wire", "a:b.1", "--wire", "c.0:c.1", "--size", "2M"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        links = {d["name"]: d["links"] for d in ready["devices"]}
        assert links["a"] == [{"link": "wire", "peer": "b", "peer_channel": 1, "peer_alive": True}, {"link": "none"}]
        assert links["c"][1] == {"link": "wire", "peer": "c", "peer_channel": 0, "peer_alive": True}
        with Device.open(str(region_dir / "a")) as ga, Device.open(str(region_dir / "b")) as gb:
            ca, cb = PacketChannel(ga, 0), PacketChannel(gb, 1)
            assert ca.max_frame == 1518
            assert exchange(ca, cb, [frame(i) for i in range(20)]) == [frame(i) for i in range(20)]
            settle(ca, 20)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        stopped = json.loads(out.strip().splitlines()[-1])
        st = stopped["stats"]["devices"][str(region_dir / "a")]["packet"]
        assert st["tx_frames"] == 20 and st["tx_drops"] == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("args,msg", [
    (["--wire", "a:zz"], "names no device"),
    (["--wire", "a:b", "--wire", "a:b"], "linked twice"),
    (["--wire", "a"], "bad --wire"),
    (["--channels", "2", "--class", "crypto"], "are for --class packet"),
    (["--queues", "3"], "is odd"),
])
def test_serve_link_errors(region_dir: pathlib.Path, args: list[str], msg: str) -> None:
    cmd = [sys.executable, "-m", "libvirt_synth.cli", "serve", "--class", "packet", "--dir", str(region_dir),
           "-d", "a", "-d", "b", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and msg in r.stderr
    assert list(region_dir.iterdir()) == []


def test_restarted_backend_gives_posted_buffers_back(region_dir: pathlib.Path, worker: Worker) -> None:
    """Buffers the old backend held come back with RETRY (their cookies from the vault); the guest
    library posts them again and they carry frames for the new backend."""
    spec = HostDeviceSpec(path=str(region_dir / "b"), dev_class=DevClass.PACKET, queues=2,
                      vault=str(region_dir / "b.vault"))
    b = HostDevice.from_spec(spec)
    worker.add(b)
    with Device.open(b.path) as gb:
        ch = PacketChannel(gb, 0, rx_bufs=8)
        raw = RawRegion(b.path)
        sq = raw.queue(1)[0]
        until(lambda: sq.cons == 8, what="the backend to take the 8 buffers")
        raw.close()
        b.destroy(unlink=False)  # the backend goes away; the region and the vault stay
        b = HostDevice.from_spec(spec, attach=True)
        try:
            host_packet.wire(b, 0, b, 0)
            worker.add(b)
            until(lambda: ch.are_there_packets() == 0 and ch.stats()["rx_dropped"] == 8, what="8 RETRY completions")
            assert b.stats().retried == 8
            assert exchange(ch, ch, [frame(i) for i in range(8)]) == [frame(i) for i in range(8)]
        finally:
            b.destroy()
