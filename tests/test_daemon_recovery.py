# SPDX-License-Identifier: Apache-2.0
"""virt-synthd killed (kill -9), stopped (SIGINT) and asked again: what docs/daemon.md ("Restarts",
the domain.create table) and docs/device-abi.md (sections 4.5, 12.6, 13.5) promise for each device
class. Compression streams do not survive a backend restart (their ids give NO_SESSION); packet
devices are served and wired again, the receive buffers the dead backend held come back RETRY;
a region gone at restart is a lost device."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libvirt_synth import errors
from libvirt_synth.abi import Alg, CAlg
from libvirt_synth.compress import Compressor, Flush
from libvirt_synth.guest import Device
from libvirt_synth.packet import PacketChannel

from daemonctl import Daemon, scratch
from rawregion import RawRegion

UUID = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
# Seeded, distinctive data: never the machine's, and a key no other code has.
KEY = hashlib.sha256(b"libvirt-synth test_daemon_recovery: a session key").digest()
TEXT = b"".join(hashlib.sha256(i.to_bytes(4, "big")).hexdigest().encode() + b" line\n" for i in range(2000))


@pytest.fixture
def base() -> Iterator[pathlib.Path]:
    with scratch("synth-recovery-") as d:
        yield d


@contextlib.contextmanager
def daemon_at(base: pathlib.Path) -> Iterator[list[Daemon]]:
    """Daemons started one after another in one directory; whichever still runs is stopped."""
    daemons = [Daemon(base).start()]
    try:
        yield daemons
    finally:
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()


def until(cond: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def in_flight(raw: RawRegion, qi: int) -> int:
    """Descriptors a backend took from queue qi and did not complete (exact once it is dead)."""
    sq, _, cq, _, _ = raw.queue(qi)
    return int((sq.cons - cq.prod) & 0xFFFFFFFF)


def frame(seq: int, size: int = 96) -> bytes:
    head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + seq.to_bytes(4, "big")
    return (head + bytes((seq * 13 + i) & 0xFF for i in range(size)))[:size]


# ---- compression: streams end with the backend (device-abi.md 13.5, compression.md) ----

def test_compression_streams_do_not_survive_a_killed_daemon(base: pathlib.Path) -> None:
    with daemon_at(base) as daemons:
        d = daemons[0]
        d.call("domain.create", uuid=UUID, name="z", devices=[{"name": "z-comp", "class": "compress"}])
        with Device.open(str(d.regions / "z-comp")) as g:
            comp = Compressor(g.queue(0))
            old = comp.stream(CAlg.ZLIB)
            head = old.feed(TEXT[:20000], Flush.SYNC)
            # A sync flush makes all input so far decodable: zlib itself reads it back.
            assert zlib.decompressobj().decompress(head) == TEXT[:20000]
            d.kill9()
            d = Daemon(base).start()
            daemons.append(d)
            # "A backend restart destroys them all; their ids then give NO_SESSION."
            with pytest.raises(errors.UnknownSessionError, match="no session|unknown session"):
                old.feed(TEXT[20000:], Flush.FINISH)
            with pytest.raises(errors.UnknownSessionError, match="no session|unknown session"):
                old.destroy()
            # The device itself is served again, without a reset: one-shot and new streams work.
            assert zlib.decompress(comp.compress(TEXT, CAlg.ZLIB)) == TEXT
            with comp.stream(CAlg.ZLIB) as new:
                assert new.id != old.id
                out = new.feed(TEXT, Flush.FINISH)
                assert new.ended and zlib.decompress(out) == TEXT
        info = d.call("devices.list")[0]
        assert info["served"] and info["generation"] == 2
        d.call("domain.destroy", uuid=UUID)


# ---- packets: served and wired again; held buffers RETRY (daemon.md "Restarts", 12.6) ----

def test_packet_devices_are_served_and_wired_again_after_kill_9(base: pathlib.Path) -> None:
    devs = [{"name": "pk-a", "class": "packet", "options": {"link": "wire:pk-b"}},
            {"name": "pk-b", "class": "packet", "options": {"link": "wire:pk-a"}}]
    with daemon_at(base) as daemons:
        d = daemons[0]
        d.call("domain.create", uuid=UUID, name="pk", devices=devs)
        with Device.open(str(d.regions / "pk-a")) as ga, Device.open(str(d.regions / "pk-b")) as gb:
            ca, cb = PacketChannel(ga, 0), PacketChannel(gb, 0, rx_bufs=8)
            raw = RawRegion(str(d.regions / "pk-b"))
            try:
                # Channel 0 receives on queue pair 1: the backend holds the 8 posted buffers.
                until(lambda: in_flight(raw, 1) == 8, "the backend to take the posted buffers")
                assert ca.send_packets([frame(i) for i in range(4)]) == 4
                assert cb.receive(4) == [frame(i) for i in range(4)]
                until(lambda: in_flight(raw, 1) == 8, "the buffers to be posted again")
                gens = [ga.info().generation, gb.info().generation]
                d.kill9()
                held = in_flight(raw, 1)
                assert held == 8, "the dead backend held the posted buffers"
                d = Daemon(base).start()
                daemons.append(d)
                stats = d.call("stats")["devices"]
                assert stats["pk-b"]["retried"] == held, "each buffer the dead backend held comes back RETRY"
                for me, peer in (("pk-a", "pk-b"), ("pk-b", "pk-a")):
                    link = stats[me]["packet"]["links"][0]
                    assert (link["link"], link["peer"], link["peer_alive"]) == ("wire", peer, True), link
                assert ga.info().generation > gens[0] and gb.info().generation > gens[1]
                # No reset: the library posts the RETRY buffers again, and frames flow, in order.
                assert cb.give_me_packets(8) == []
                until(lambda: in_flight(raw, 1) == 8, "the RETRY buffers to be posted again")
                assert ca.send_packets([frame(i) for i in range(4, 12)]) == 8
                assert cb.receive(8) == [frame(i) for i in range(4, 12)]
                assert d.call("stats", name="pk-b")["devices"]["pk-b"]["packet"]["rx_drops"] == 0
            finally:
                raw.close()
        d.call("domain.destroy", uuid=UUID)


# ---- a region gone at restart (daemon.md "Restarts") ----

def test_a_region_gone_at_restart_is_a_lost_device(base: pathlib.Path) -> None:
    devs = [{"name": "keep-c", "class": "crypto"}, {"name": "gone-c", "class": "crypto"}]
    with daemon_at(base) as daemons:
        d = daemons[0]
        d.call("domain.create", uuid=UUID, name="lost", devices=devs)
        assert d.call("health")["lost_devices"] == []
        with Device.open(str(d.regions / "keep-c")) as g, g.queue(0).session(Alg.AES256_GCM, KEY) as s:
            d.kill9()
            os.unlink(d.regions / "gone-c")  # its VM stopped while no daemon ran
            d = Daemon(base).start()
            daemons.append(d)
            health = d.call("health")
            assert health["lost_devices"] == ["gone-c"] and health["devices"] == 1
            listed = {x["name"]: x["served"] for x in d.call("devices.list")}
            assert listed == {"keep-c": True, "gone-c": False}
            assert not (d.regions / "gone-c").exists(), "a lost device's region is not laid out again"
            r = d.cli("health", "--json", check=False)
            assert r.returncode == 2 and '"gone-c"' in r.stdout, (r.returncode, r.stdout, r.stderr)
            ct, tag = s.encrypt(b"the other device", bytes(12))  # the device that is there is served
            assert ct + tag == AESGCM(KEY).encrypt(bytes(12), b"the other device", None)
        d.call("domain.destroy", uuid=UUID)
        assert d.call("health")["domains"] == 0
