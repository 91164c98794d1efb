# SPDX-License-Identifier: Apache-2.0
"""The TAP link against the real kernel. The test makes a network namespace, runs the backend in
it (`ip netns exec NS virt-synth serve --tap ...`, which creates the TAP there), and checks frames
both ways with an AF_PACKET socket on the kernel side, inside the namespace: what the guest sends
appears on the interface, what the kernel sends on the interface reaches the guest. Needs root
(CAP_NET_ADMIN), /dev/net/tun and iproute2; the namespace is removed even on failure."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from libvirt_synth.guest import Device
from libvirt_synth.guest.packet import PacketChannel
from libvirt_synth.host.backend import PARK_AFTER_MS

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or shutil.which("ip") is None,
    reason="needs root, /dev/net/tun and iproute2 (ip)",
)

ETHERTYPE = 0x88B5
IFNAME = "stap0"
CLONE_NEWNET = 0x40000000


def frame(seq: int, size: int) -> bytes:
    head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x09" + ETHERTYPE.to_bytes(2, "big") + seq.to_bytes(4, "big")
    return (head + bytes((seq * 3 + i) & 0xFF for i in range(size)))[:size]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"synth-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)  # left from a crash
    ip("netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run the block with this thread in network namespace ns (sockets made there stay there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
        try:
            yield
        finally:
            if libc.setns(here, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(here)
        os.close(there)


@pytest.fixture
def tap_backend(netns: str, region_dir: pathlib.Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    cmd = ["ip", "netns", "exec", netns, sys.executable, "-m", "libvirt_synth.cli", "serve", "--json", "--class",
           "packet", "--dir", str(region_dir), "-d", "tapdev", "--tap", f"tapdev={IFNAME}", "--size", "8M"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the backend did not start: {proc.communicate(timeout=10)[1]}")
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def settle(ch: PacketChannel, sent: int) -> dict[str, int]:
    deadline = time.monotonic() + 5
    while True:
        ch.reclaim()
        st = ch.stats()
        if st["tx_ok"] + st["tx_dropped"] == sent or time.monotonic() > deadline:
            return st
        time.sleep(0.001)


def test_tap_frames_both_ways(netns: str, tap_backend: tuple[subprocess.Popen[str], dict[str, Any]],
                              region_dir: pathlib.Path) -> None:
    proc, ready = tap_backend
    assert ready["devices"][0]["links"] == [{"link": "tap", "ifname": IFNAME}]
    with Device.open(str(region_dir / "tapdev")) as g:
        ch = PacketChannel(g, 0)
        # The interface is down: the kernel refuses the frame, and the drop is counted.
        assert ch.send_packets([frame(0, 60)]) == 1
        assert settle(ch, 1)["tx_dropped"] == 1

        ip("netns", "exec", netns, "sysctl", "-qw", f"net.ipv6.conf.{IFNAME}.disable_ipv6=1")
        ip("-n", netns, "link", "set", IFNAME, "mtu", "9000", "up")
        with inside(netns):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
        with s:
            s.bind((IFNAME, 0))
            s.settimeout(5)
            sizes = [60, 64, 1514, 4000, 9014]

            # Guest -> kernel: each frame appears on the interface, in order, unchanged.
            out = [frame(1 + i, sizes[i % len(sizes)]) for i in range(40)]
            sent = 0
            while sent < len(out):
                sent += ch.send_packets(out[sent:])
            seen = [s.recv(65536) for _ in out]
            assert seen == out
            assert settle(ch, 41)["tx_ok"] == 40

            # Kernel -> guest: frames written on the interface reach the guest's buffers, in order,
            # after an idle spell past the backend's PARK_AFTER_MS too: no ring shows what the
            # kernel sends, so a worker serving a TAP must not park.
            time.sleep(PARK_AFTER_MS / 1000 + 0.5)
            back = [frame(100 + i, sizes[-1 - i % len(sizes)]) for i in range(40)]
            for f in back:
                assert s.send(f) == len(f)
            got: list[bytes] = []
            deadline = time.monotonic() + 10
            while len(got) < len(back) and time.monotonic() < deadline:
                ch.wait(5)
                got += [f for f in ch.give_me_packets(64) if f[12:14] == ETHERTYPE.to_bytes(2, "big")]
            assert got == back

            # A frame longer than max_frame from the kernel is dropped and counted, never truncated.
            ip("-n", netns, "link", "set", IFNAME, "mtu", "12000")
            s.send(frame(999, 12014))
            s.send(frame(1000, 100))
            ch.wait(5)
            assert [f for f in ch.give_me_packets(8) if f[12:14] == ETHERTYPE.to_bytes(2, "big")] == [frame(1000, 100)]
        counters = ch.counters()
        assert counters["tx_frames"] == 40 and counters["tx_drops"] == 1 and counters["links"] == ["tap"]
        assert counters["rx_frames"] >= 41 and counters["rx_drops"] >= 1
    proc.send_signal(signal.SIGTERM)
    out_text, _ = proc.communicate(timeout=10)
    st = json.loads(out_text.strip().splitlines()[-1])["stats"]["devices"][str(region_dir / "tapdev")]["packet"]
    assert st["tx_frames"] == 40 and st["tx_tap_error"] == 1 and st["rx_bad_frame"] == 1
    assert st["rx_bytes"] >= sum(map(len, back)) + 100
