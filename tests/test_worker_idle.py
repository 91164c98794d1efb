# SPDX-License-Identifier: Apache-2.0
"""What an idle worker costs. A worker that sleeps costs a wake-up per sleep and one pass over its
devices per wake-up, however many devices it serves: bench/scale found each wake-up polling every
device 64 times (the spin phase's clock-reading stride carried on after the first sleep), so the
idle cost grew with devices x 64. A worker told to park when idle (every worker of a backend)
costs nothing at all once parked: the watcher thread looks at its rings instead and wakes it on
work, no later than its deep sleep would have ended; a device removed, destroyed or truncated under
a parked worker costs that device only."""

from __future__ import annotations

import os
import pathlib
import random
import subprocess
import sys
import textwrap
import time

import pytest
from test_packet import frame
from waiting import until as wait_for

from libvirt_synth._native import lib
from libvirt_synth.abi import DevClass
from libvirt_synth.guest import Device
from libvirt_synth.guest.compress import Compressor
from libvirt_synth.guest.packet import PacketChannel
from libvirt_synth.host import packet as host_packet
from libvirt_synth.host import region
from libvirt_synth.host.backend import Backend
from libvirt_synth.host.device import HostDevice, HostDeviceSpec, Worker

DEEP_US = 10000  # the default deep_sleep_us: how long a first op after a long idle may wait today
MARGIN_S = 0.015  # a small op, two threads to schedule (on a machine other work shares)
LOST_S = 0.25  # beyond any scheduling delay: a wake-up lost (the guest would wait 5 s for it)


def check_latencies(took: list[float], bound: float) -> None:
    """Three quarters of the ops within bound, and none waiting for a wake-up that never came."""
    took = sorted(took)
    ms = [round(t * 1e3, 1) for t in took]
    assert took[len(took) * 3 // 4] < bound, f"ops after a park took {ms} ms; expected < {bound * 1e3:.0f}"
    assert took[-1] < LOST_S, f"ops after a park took {ms} ms"


def test_an_idle_worker_does_one_pass_per_wake_up(region_dir: pathlib.Path) -> None:
    w = Worker(spin_us=50, max_sleep_us=1000, deep_sleep_us=2000)
    devs = [HostDevice.create(str(region_dir / f"c{i}"), DevClass.CRYPTO, size=1 << 20) for i in range(16)]
    guests: list[Device] = []
    try:
        for d in devs:
            w.add(d)
        guests = [Device.open(d.path) for d in devs]  # attached, as a VNF's would be, then idle
        time.sleep(0.3)  # past the spin window and into the back-off
        a = w.stats()
        time.sleep(1.0)
        b = w.stats()
        sleeps, passes = b["sleeps"] - a["sleeps"], b["passes"] - a["passes"]
        assert b["busy_passes"] == a["busy_passes"], "nothing to do: no pass found work"
        assert sleeps >= 100, (sleeps, passes)  # 1-2 ms naps over a second
        # One pass per wake-up (the pass before each sleep), not 64.
        assert passes <= sleeps + 2, (sleeps, passes)
    finally:
        for g in guests:
            g.close()
        for d in devs:
            w.remove(d)
            d.destroy()
        w.stop()


def worker_threads() -> set[int]:
    """This process's threads named as the C workers name theirs (the watcher included)."""
    out = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            if pathlib.Path(f"/proc/self/task/{tid}/comm").read_text().strip() in ("synth-worker", "synth-watcher"):
                out.add(int(tid))
        except OSError:
            continue
    return out


def times_run(tid: int) -> int:
    """How many times the kernel has run the thread (schedstat's third field)."""
    return int(pathlib.Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[2])


def parked(w: Worker) -> bool:
    return w.parked


def new_worker(**kw: int) -> tuple[Worker, int]:
    """A worker and its thread's id."""
    before = worker_threads()
    w = Worker(**kw)
    tids = wait_for(lambda: worker_threads() - before, "the worker thread to name itself")
    assert len(tids) == 1, tids
    return w, tids.pop()


def payload(rng: random.Random, n: int) -> bytes:
    words = [bytes(rng.choice(b"abcdefgh") for _ in range(6)) for _ in range(32)]
    return b" ".join(rng.choice(words) for _ in range(n // 7))


def test_a_parked_worker_makes_no_wake_ups_and_wakes_for_work(region_dir: pathlib.Path) -> None:
    rng = random.Random(7)
    w, tid = new_worker(deep_sleep_us=DEEP_US)
    dev = HostDevice.create(str(region_dir / "z"), DevClass.COMPRESS, size=1 << 20)
    try:
        w.add(dev)
        w.park_when_idle(200)
        with Device.open(dev.path) as g:
            z = Compressor(g.queue(0))
            data = payload(rng, 4096)
            assert z.decompress(z.compress(data, "zstd", level=3), "zstd") == data
            wait_for(lambda: parked(w), "the worker to park", timeout=5)
            a, ran = w.stats(), times_run(tid)
            time.sleep(1.0)
            b = w.stats()
            assert parked(w)
            # Not run once, no pass, no sleep counted: a deep-sleeping worker wakes ~100 times here.
            assert times_run(tid) - ran <= 1, times_run(tid) - ran
            assert (b["passes"], b["sleeps"]) == (a["passes"], a["sleeps"]), (a, b)
            # Its device still looks served: the watcher refreshes the heartbeat meanwhile.
            age = region.read_header(dev.path).heartbeat_age_s
            assert age is not None and age < 0.5, age
            # A first op after the idle spell completes about as soon as a deep sleep would end.
            took = []
            for _ in range(12):
                wait_for(lambda: parked(w), "the worker to park again", timeout=5)
                time.sleep(rng.uniform(0, 0.02))
                small = payload(rng, 512)
                t0 = time.monotonic()
                out = z.compress(small, "lz4")
                took.append(time.monotonic() - t0)
                assert z.decompress(out, "lz4") == small
            check_latencies(took, DEEP_US / 1e6 + MARGIN_S)
            assert w.stats()["ops"] >= 2 + 24
    finally:
        w.remove(dev)
        dev.destroy()
        w.stop()


def test_work_posted_as_the_worker_parks_is_not_lost(region_dir: pathlib.Path) -> None:
    """Parking after 2 ms idle, the watcher looking every 1.75 ms: ops posted at random moments
    fall on every step of parking and waking; each must complete in time."""
    rng = random.Random(11)
    w = Worker(deep_sleep_us=2000)
    dev = HostDevice.create(str(region_dir / "z"), DevClass.COMPRESS, size=1 << 20)
    try:
        w.add(dev)
        w.park_when_idle(2)
        with Device.open(dev.path) as g:
            z = Compressor(g.queue(0))
            data = payload(rng, 256)
            was_parked, took = 0, []
            for _ in range(300):
                time.sleep(rng.choice([0.0, rng.uniform(0.001, 0.003), rng.uniform(0.002, 0.008)]))
                was_parked += parked(w)
                t0 = time.monotonic()
                out = z.compress(data, "lz4")
                took.append(time.monotonic() - t0)
                assert len(out) > 0
            check_latencies(took, 0.002 + MARGIN_S)
            # The ops did meet a parked worker (else this would test nothing).
            assert was_parked >= 30, was_parked
    finally:
        w.remove(dev)
        dev.destroy()
        w.stop()


def test_devices_removed_destroyed_and_workers_stopped_while_parked(region_dir: pathlib.Path) -> None:
    """The watcher looks at a parked worker's devices every 44 us: take them away under it in
    every way the control plane does, again and again. A use of a freed device or an unmapped
    region would crash the process (and is what the sanitizer builds look for)."""
    fast = {"max_sleep_us": 50, "deep_sleep_us": 50}
    keep = HostDevice.create(str(region_dir / "keep"), DevClass.COMPRESS, size=1 << 20)
    kw = Worker(**fast)
    kw.add(keep)
    kw.park_when_idle(1)
    try:
        for i in range(40):
            w = Worker(**fast)
            w.park_when_idle(1)
            devs = [HostDevice.create(str(region_dir / f"z{i}-{j}"), DevClass.COMPRESS, size=1 << 20)
                    for j in range(8)]
            for d in devs:
                w.add(d)
            with Device.open(devs[0].path) as g:  # one with a driver, whose rings the watcher reads
                Compressor(g.queue(0)).compress(b"x" * 100, "lz4")
                wait_for(lambda w=w: parked(w), "the worker to park", timeout=5)
            wait_for(lambda w=w: parked(w), "the worker to park", timeout=5)
            for d in devs[1:4]:
                d.destroy()  # destroy takes it off its worker first
            for d in devs[4:]:
                w.remove(d)
                d.destroy()
            if i % 2:
                w.stop()  # parked, with a device still added
                devs[0].destroy()
            else:
                devs[0].destroy()
                w.stop()
        with Device.open(keep.path) as g:  # the watcher still serves the other parked worker
            wait_for(lambda: parked(kw), "the worker to park", timeout=5)
            data = b"keep " * 100
            assert Compressor(g.queue(0)).decompress(Compressor(g.queue(0)).compress(data, "zstd"), "zstd") == data
        assert kw.stats()["region_faults"] == 0
    finally:
        kw.remove(keep)
        keep.destroy()
        kw.stop()


# A guest in its own process: opens the device, does an op, then on "go" truncates the region file
# as a hostile QEMU could, and keeps its (now dead) mapping until told to go.
GUEST = textwrap.dedent("""
    import os, sys
    from libvirt_synth.guest import Device
    from libvirt_synth.guest.compress import Compressor
    path = sys.argv[1]
    g = Device.open(path)
    Compressor(g.queue(0)).compress(b"y" * 1000, "lz4")
    print("ready", flush=True)
    sys.stdin.readline()
    os.truncate(path, 0)
    print("truncated", flush=True)
    sys.stdin.read()
    os._exit(0)
""")


def test_a_region_truncated_under_a_parked_worker_costs_that_device_only(region_dir: pathlib.Path) -> None:
    victim = HostDevice.create(str(region_dir / "victim"), DevClass.COMPRESS, size=1 << 20)
    other = HostDevice.create(str(region_dir / "other"), DevClass.COMPRESS, size=1 << 20)
    w, tid = new_worker(deep_sleep_us=DEEP_US)
    ow = Worker(deep_sleep_us=DEEP_US)
    try:
        w.add(victim)
        ow.add(other)
        w.park_when_idle(100)
        ow.park_when_idle(100)
        peer = subprocess.Popen([sys.executable, "-c", GUEST, victim.path], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
            wait_for(lambda: parked(w) and parked(ow), "both workers to park", timeout=5)
            passes, ran = w.stats()["passes"], times_run(tid)
            assert peer.stdin is not None
            peer.stdin.write("go\n")
            peer.stdin.flush()
            assert peer.stdout.readline().strip() == "truncated"
            # The watcher's next look at the victim faults: the device is abandoned, as in a pass.
            wait_for(lambda: w.stats()["region_faults"] == 1, "the fault to be counted", timeout=5)
            st = victim.stats()
            assert st.dev_error == lib.SYNTH_DEVERR_REGION and not st.active
            # It was the watcher's look, not a pass of the worker, which stays parked.
            assert parked(w) and w.stats()["passes"] == passes and times_run(tid) - ran <= 1
            time.sleep(0.1)
            assert w.stats()["region_faults"] == 1  # never touched again
            with Device.open(other.path) as g:
                data = b"other " * 200
                z = Compressor(g.queue(0))
                assert z.decompress(z.compress(data, "zstd"), "zstd") == data
            assert ow.stats()["region_faults"] == 0 and other.stats().dev_error == 0
        finally:
            peer.communicate("", timeout=10)
        w.remove(victim)
        victim.destroy()  # only unmaps: nothing of the region is touched
        assert not os.path.exists(victim.path)
    finally:
        for wk, d in ((w, victim), (ow, other)):
            wk.stop()
            d.destroy()


def test_a_worker_with_wired_packet_devices_parks_and_wakes_for_frames(region_dir: pathlib.Path) -> None:
    """A wire's work shows in rings: a frame is a SEND on its sender's TX ring, a buffer a RECV on the
    receiver's RX ring, and both ends share a worker. What no ring shows, the other end going away,
    the class's pending hook does: the survivor's driver reads its link as gone without waiting for
    a pass that a parked worker would never make."""
    rng = random.Random(5)
    w, tid = new_worker(deep_sleep_us=DEEP_US)
    a = HostDevice.create(str(region_dir / "a"), DevClass.PACKET, size=1 << 20, queues=2)
    b = HostDevice.create(str(region_dir / "b"), DevClass.PACKET, size=1 << 20, queues=2)
    try:
        host_packet.wire(a, 0, b, 0)
        w.add(a)
        w.add(b)
        w.park_when_idle(100)
        with Device.open(a.path) as ga, Device.open(b.path) as gb:
            ca, cb = PacketChannel(ga, 0), PacketChannel(gb, 0)
            wait_for(lambda: parked(w), "the worker to park", timeout=5)
            ran = times_run(tid)
            time.sleep(0.5)
            assert parked(w) and times_run(tid) - ran <= 1, times_run(tid) - ran
            took = []
            for i in range(12):
                wait_for(lambda: parked(w), "the worker to park again", timeout=5)
                time.sleep(rng.uniform(0, 0.02))
                t0 = time.monotonic()
                assert ca.send_packets([frame(i)]) == 1
                got = cb.receive(1)
                took.append(time.monotonic() - t0)
                assert got == [frame(i)]
            check_latencies(took, DEEP_US / 1e6 + MARGIN_S)
            assert ca.counters()["links"] == ["wire"]
            wait_for(lambda: parked(w), "the worker to park", timeout=5)
            b.destroy()  # off the worker, its end of the wire dropped: a's link is gone
            wait_for(lambda: ca.counters()["links"] == ["none"], "a's driver to see its link gone", timeout=0.5)
    finally:
        w.stop()
        for d in (a, b):
            d.destroy()


@pytest.mark.parametrize("dedicated", [True, False])
def test_the_backend_parks_every_idle_worker(region_dir: pathlib.Path, dedicated: bool) -> None:
    with Backend(workers=1, dedicated=(DevClass.COMPRESS,) if dedicated else (), deep_sleep_us=DEEP_US) as b:
        dev = b.add(HostDeviceSpec(path=str(region_dir / "z"), dev_class=DevClass.COMPRESS, size=1 << 20))
        assert dev.worker is not None and (dev.worker is b.workers[0]) != dedicated
        wait_for(lambda: parked(b.workers[0]) and parked(dev.worker), "every worker to park", timeout=5)


# A process of its own, so that the watcher thread is started by this backend's first worker of
# its own (in pytest's process another test may have started it already).
NICE_AND_CPUS = textwrap.dedent("""
    import os, pathlib, sys, time
    from libvirt_synth._native import lib
    from libvirt_synth.abi import DevClass
    from libvirt_synth.host.backend import Backend
    from libvirt_synth.host.device import HostDeviceSpec
    cpus = [int(c) for c in sys.argv[2].split(",")]
    with Backend(workers=1, cpus=cpus) as b:
        dev = b.add(HostDeviceSpec(path=sys.argv[1], dev_class=DevClass.COMPRESS, size=1 << 20))
        time.sleep(1.5)
        assert dev.worker.parked and b.workers[0].parked
        for tid in os.listdir("/proc/self/task"):
            task = pathlib.Path(f"/proc/self/task/{tid}")
            if (task / "comm").read_text().strip() not in ("synth-worker", "synth-watcher"):
                continue
            stat = (task / "stat").read_text()
            nice = int(stat[stat.rindex(")") + 2:].split()[16])
            allowed = [ln.split(":", 1)[1].strip() for ln in (task / "status").read_text().splitlines()
                       if ln.startswith("Cpus_allowed_list:")][0]
            print(nice, allowed)
""")


def test_the_parked_worker_and_its_watcher_keep_its_nice_value_and_cpu(region_dir: pathlib.Path) -> None:
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        pytest.skip("one CPU only: a pinned thread cannot be told from an unpinned one")
    shared, own = mine[0], mine[-1]
    r = subprocess.run([sys.executable, "-c", NICE_AND_CPUS, str(region_dir / "z"), f"{shared},{own}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    threads = sorted(tuple(line.split()) for line in r.stdout.splitlines())
    # The shared worker and the watcher (started by the shared worker, which asks to park first) at
    # nice 0 on the shared worker's CPU; the compression device's own worker at DEDICATED_NICE on its own.
    assert threads == [("0", str(shared)), ("0", str(shared)), ("10", str(own))], threads


class RawQueue:
    """Queue 1 of a device, driven raw (the guest library never touches it after its open): NOPs
    published, completions counted by the CQ's prod, CQ slots freed by its cons."""

    def __init__(self, path: str, index: int = 1) -> None:
        from rawregion import RawRegion

        self.raw = RawRegion(path)
        self.sq, self.sqe, self.cq, _, _ = self.raw.queue(index)
        self.entries = self.raw.hdr.ring_entries
        self.next = 0

    def publish(self, n: int = 1) -> None:
        for _ in range(n):
            e = self.sqe[self.next & (self.entries - 1)]
            e.opcode, e.cookie = 0, self.next + 1  # NOP
            e.seq = (self.next + 1) & 0xFFFFFFFF or 1  # synth_ring_seq()
            self.next += 1
        self.sq.prod = self.next

    def done(self) -> int:
        return int(self.cq.prod)

    def free_completions(self) -> None:
        self.cq.cons = self.cq.prod

    def close(self) -> None:
        del self.sq, self.sqe, self.cq
        self.raw.close()


def test_a_parked_worker_wakes_for_entries_that_waited_for_cq_room(region_dir: pathlib.Path) -> None:
    """An SQ entry published while the CQ is full is not taken; the worker parks with it there, and
    the driver freeing CQ slots (its only write) must be enough to have it served, as soon as an
    entry published to a parked worker would be."""
    deep_us = 2000
    w = Worker(deep_sleep_us=deep_us)
    dev = HostDevice.create(str(region_dir / "c"), DevClass.CRYPTO, size=1 << 20, queues=2)
    try:
        w.add(dev)
        w.park_when_idle(20)
        with Device.open(dev.path) as g:
            g.queue(0).nop()
            raw = RawQueue(dev.path)
            try:
                wait_for(lambda: parked(w), "the worker to park", timeout=5)
                t0 = time.monotonic()
                raw.publish()
                wait_for(lambda: raw.done() == 1, "a NOP published to a parked worker", timeout=5)
                first = time.monotonic() - t0
                raw.free_completions()
                raw.publish(raw.entries)
                wait_for(lambda: raw.done() == 1 + raw.entries, "a full CQ", timeout=5)
                raw.publish(raw.entries)
                wait_for(lambda: parked(w), "the worker to park with entries it has no CQ room for", timeout=5)
                time.sleep(0.02)
                assert raw.done() == 1 + raw.entries
                t0 = time.monotonic()
                raw.free_completions()
                wait_for(lambda: raw.done() == 1 + 2 * raw.entries, "the rest to complete", timeout=5)
                took = time.monotonic() - t0
                assert max(first, took) < deep_us / 1e6 + MARGIN_S + 0.05, (first, took)
                g.queue(0).nop()  # and the library's own queue is served as ever
            finally:
                raw.close()
    finally:
        w.remove(dev)
        dev.destroy()
        w.stop()
