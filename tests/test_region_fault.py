# SPDX-License-Identifier: Apache-2.0
"""A region file belongs to its VM's QEMU, which can truncate it under the backend. The next access
to the lost pages raises SIGBUS in the worker: that must abandon the one device, never take the
process (and with it every other device) down."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

from waiting import until as wait_for

from libvirt_synth._native import lib
from libvirt_synth.abi import DEV_ERRORS, DevClass
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, Worker

from test_hostile import check_still_serves

# A guest in its own process: opens the device, does real work, then truncates the region file as
# a hostile QEMU could, and keeps its (now dead) mapping until told to go.
# With a length that keeps the header and the start of the submission ring, it then submits one more
# encrypt whose buffers lay past the cut, so that the fault comes from the data path.
GUEST = textwrap.dedent("""
    import os, sys
    from libvirt_synth.abi import Alg, Op
    from libvirt_synth.guest import Device
    path, length = sys.argv[1], int(sys.argv[2])
    g = Device.open(path)
    q = g.queue(0)
    s = q.session(Alg.AES256_GCM, bytes(32))
    for _ in range(50):
        s.encrypt(b"x" * 300, bytes(12))
    src, iv, tag = q.alloc(300), q.alloc(12), q.alloc(16)
    d = q.descs([{"opcode": Op.ENCRYPT, "session": s.id, "src_off": src.offset, "src_len": 300,
                  "dst_off": src.offset, "dst_len": 300, "iv_off": iv.offset, "tag_off": tag.offset}])
    os.truncate(path, length)
    if length:
        assert q.submit(d) == 1
    print("truncated", flush=True)
    sys.stdin.read()
    os._exit(0)
""")


def run_truncation(region_dir: pathlib.Path, worker: Worker, length: int) -> None:
    victim = HostDevice.create(str(region_dir / "victim"), DevClass.CRYPTO, size=1 << 20)
    other = HostDevice.create(str(region_dir / "other"), DevClass.CRYPTO, size=1 << 20)
    worker.add(victim)
    worker.add(other)
    try:
        with Device.open(other.path) as g:
            check_still_serves(g.queue(0))
            peer = subprocess.Popen([sys.executable, "-c", GUEST, victim.path, str(length)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert peer.stdout is not None and peer.stdout.readline().strip() == "truncated"
                # The worker touches the victim's header on its next pass at the latest.
                wait_for(lambda: worker.stats()["region_faults"] == 1)
                st = victim.stats()
                assert st.dev_error == lib.SYNTH_DEVERR_REGION and not st.active
                assert "truncated" in DEV_ERRORS[st.dev_error]
                # The neighbour on the same worker thread goes on, again and again.
                for _ in range(3):
                    check_still_serves(g.queue(0))
                assert worker.stats()["region_faults"] == 1 and other.stats().dev_error == 0
            finally:
                peer.communicate("", timeout=10)
        # Nothing of the victim is touched on the way out: no header write, just unmap and unlink.
        victim.destroy()
        assert not os.path.exists(victim.path)
        with Device.open(other.path) as g:
            check_still_serves(g.queue(0))
    finally:
        other.destroy()


def test_truncated_to_nothing_costs_that_device_only(region_dir: pathlib.Path, worker: Worker) -> None:
    run_truncation(region_dir, worker, 0)


def test_truncated_below_its_arena_costs_that_device_only(region_dir: pathlib.Path, worker: Worker) -> None:
    """The header survives, the rings and arena do not: the fault comes from the data path."""
    run_truncation(region_dir, worker, 8192)


# The receiving guest of a wire, in its own process: opens channel 0 (its receive buffers are
# posted), then cuts the region file at the given length and waits.
RECEIVER = textwrap.dedent("""
    import os, sys
    from libvirt_synth.guest import Device
    from libvirt_synth.guest.packet import PacketChannel
    path, length = sys.argv[1], int(sys.argv[2])
    g = Device.open(path)
    ch = PacketChannel(g, 0)
    print("open", flush=True)
    sys.stdin.readline()
    os.truncate(path, length)
    print("truncated", flush=True)
    sys.stdin.read()
    os._exit(0)
""")


def test_a_fault_while_delivering_over_a_wire_releases_the_wire(region_dir: pathlib.Path, worker: Worker) -> None:
    """The receiver's arena goes while its header and rings stay: the fault comes while the worker
    delivers a frame over the wire, with the wire's lock held. The lock must be given back, or the
    sender's next burst and the teardown of either end would wait for it for ever."""
    from libvirt_synth.guest.packet import PacketChannel
    from libvirt_synth.host import packet as host_packet

    from rawregion import RawRegion

    a = HostDevice.create(str(region_dir / "a"), DevClass.PACKET, queues=2)
    b = HostDevice.create(str(region_dir / "b"), DevClass.PACKET, queues=2)
    other = HostDevice.create(str(region_dir / "other"), DevClass.CRYPTO, size=1 << 20)
    host_packet.wire(a, 0, b, 0)
    for d in (a, b, other):
        worker.add(d)
    raw = RawRegion(b.path)
    cut = min(raw.queue(q)[4] for q in range(2))  # keep header and rings, drop both arenas
    raw.close()
    peer = subprocess.Popen([sys.executable, "-c", RECEIVER, b.path, str(cut)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "open"
        with Device.open(a.path) as ga:
            tx = PacketChannel(ga, 0)
            assert tx.send_packets([b"\xff" * 64] * 4) == 4
            wait_for(lambda: host_packet.stats(b)["rx_frames"] == 4)
            assert peer.stdin is not None
            peer.stdin.write("go\n")
            peer.stdin.flush()
            assert peer.stdout.readline().strip() == "truncated"
            sent = 4 + tx.send_packets([b"\xff" * 64] * 4)
            wait_for(lambda: worker.stats()["region_faults"] == 1)
            assert b.stats().dev_error == lib.SYNTH_DEVERR_REGION
            # The sender goes on: its frames now complete as drops, nothing waits.
            sent += tx.send_packets([b"\xff" * 64] * 4)
            wait_for(lambda: (tx.reclaim(), tx.stats())[1]["tx_ok"] + tx.stats()["tx_dropped"] == sent)
            assert tx.stats()["tx_dropped"] >= 4
            with Device.open(other.path) as g:
                check_still_serves(g.queue(0))
    finally:
        peer.communicate("", timeout=10)
    b.destroy()  # takes the wire's lock: it must be free
    a.destroy()
    other.destroy()
    assert worker.stats()["region_faults"] == 1


def test_a_neighbour_truncated_during_a_slow_burst_costs_the_neighbour_only(region_dir: pathlib.Path,
                                                                           worker: Worker) -> None:
    """A compression burst of seconds refreshes every heartbeat of its worker as it goes; when one
    of those devices' regions is cut meanwhile, that device is abandoned and the burst finishes."""
    import random

    from compress_ref import served_device

    from libvirt_synth.abi import CAlg, CompOp, Status

    from rawregion import RawRegion

    rng = random.Random(9)
    text = b"".join(rng.choice([b"alpha ", b"beta ", b"gamma\n"]) + rng.randbytes(3) for _ in range(120_000))[:1 << 20]
    victim = HostDevice.create(str(region_dir / "victim"), DevClass.CRYPTO, size=1 << 20)
    worker.add(victim)
    with served_device(worker=worker) as comp, Device.open(comp.path) as g:
        q = g.queue(0)
        with q.scratch(len(text), *[len(text) + 20000] * 4) as (src, *dsts):
            src.write(text)
            descs = [{"opcode": CompOp.COMPRESS, "src_off": src.offset, "src_len": len(text), "dst_off": b.offset,
                      "dst_len": b.size, "arg": [int(CAlg.ZSTD), 19, 0], "cookie": i} for i, b in enumerate(dsts)]
            assert q.submit(q.descs(descs)) == 4
            # Host side: the worker took all four in one burst (it writes the submission ring's
            # consumer index when it takes them, and the completions only when the burst is done).
            raw = RawRegion(comp.path)
            sq, _, cq, _, _ = raw.queue(0)
            wait_for(lambda: sq.cons == 4)
            os.truncate(victim.path, 0)
            wait_for(lambda: worker.stats()["region_faults"] == 1, timeout=60)
            # The fault was handled while the burst still ran: none of its ops completed yet.
            assert (cq.prod, comp.stats().ops) == (0, 0), "the burst was over before the neighbour was cut"
            got = q.drain(4, timeout=60)
            assert cq.prod == 4
            raw.close()
    assert sorted(c.cookie for c in got) == [0, 1, 2, 3] and all(c.status == Status.OK for c in got)
    assert worker.stats()["region_faults"] == 1 and victim.stats().dev_error == lib.SYNTH_DEVERR_REGION
    victim.destroy()


def test_a_pass_cut_short_by_a_peers_fault_completes_its_descriptors_as_retry(region_dir: pathlib.Path,
                                                                              worker: Worker) -> None:
    """The receiver's arena goes while the worker delivers the sender's frames to it: the sender's
    pass is cut short by a fault that is not its own, and the descriptors it had in hand come back
    RETRY (the guest sends them again), never lost and never OK."""
    from libvirt_synth.abi import Status
    from libvirt_synth.guest.packet import PacketChannel
    from libvirt_synth.host import packet as host_packet

    from rawregion import RawRegion

    a = HostDevice.create(str(region_dir / "a"), DevClass.PACKET, queues=2)
    b = HostDevice.create(str(region_dir / "b"), DevClass.PACKET, queues=2)
    host_packet.wire(a, 0, b, 0)
    worker.add(a)
    worker.add(b)
    raw = RawRegion(b.path)
    cut = min(raw.queue(q)[4] for q in range(2))
    raw.close()
    peer = subprocess.Popen([sys.executable, "-c", RECEIVER, b.path, str(cut)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout is not None and peer.stdin is not None
        assert peer.stdout.readline().strip() == "open"
        with Device.open(a.path) as ga:
            tx = PacketChannel(ga, 0)
            peer.stdin.write("go\n")
            peer.stdin.flush()
            assert peer.stdout.readline().strip() == "truncated"
            assert a.stats().by_status.get("retry", 0) == 0
            sent = tx.send_packets([b"\xee" * 64] * 4)
            assert sent == 4
            wait_for(lambda: worker.stats()["region_faults"] == 1)
            assert b.stats().dev_error == lib.SYNTH_DEVERR_REGION and a.stats().dev_error == 0
            wait_for(lambda: (tx.reclaim(), tx.stats())[1]["tx_ok"] + tx.stats()["tx_dropped"] == sent)
            # What the guest finds in its completion rings, read raw: a RETRY for every descriptor
            # the cut pass had in hand (at least the one whose delivery faulted), none OK.
            raw_a = RawRegion(a.path)
            statuses = []
            for qi in range(2):
                _, _, cq, cqe, _ = raw_a.queue(qi)
                statuses += [int(cqe[i].status) for i in range(cq.prod)]
            raw_a.close()
            retried = statuses.count(Status.RETRY)
            assert len(statuses) == sent and retried >= 1, statuses
            assert Status.OK not in statuses, statuses
            assert a.stats().by_status["retry"] == retried
            assert tx.stats()["tx_ok"] == 0
    finally:
        peer.communicate("", timeout=10)
    b.destroy()
    a.destroy()
