# SPDX-License-Identifier: Apache-2.0
"""virt-synthd killed (kill -9), stopped (SIGINT) and asked again: what docs/daemon.md ("Restarts",
the domain.create table) and docs/device-abi.md (sections 4.5, 12.6, 13.5) promise for each device
class. Compression streams do not survive a backend restart (their ids give NO_SESSION); packet
devices are served and wired again, the receive buffers the dead backend held come back RETRY;
a region gone at restart is a lost device; domain.create again adds and drops devices; SIGINT
stops the daemon as SIGTERM does; a destroyed session's key leaves the daemon's memory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import re
import signal
import zlib
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from waiting import until

from libvirt_synth import errors
from libvirt_synth.abi import Alg, CAlg, Flush
from libvirt_synth.daemon import client
from libvirt_synth.guest import Device
from libvirt_synth.guest.compress import Compressor
from libvirt_synth.guest.packet import PacketChannel
from libvirt_synth.host import region as region_mod

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
        health = d.call("health")
        assert health["domains"] == 0 and health["lost_devices"] == [], health  # destroyed: no longer lost
        assert d.cli("health", "--json", check=False).returncode == 0


# ---- domain.create again, with devices added and dropped (daemon.md, domain.create) ----

def test_domain_create_again_adds_and_drops_devices(base: pathlib.Path) -> None:
    with daemon_at(base) as daemons:
        d = daemons[0]
        d.call("domain.create", uuid=UUID, name="vnf", devices=[{"name": "vnf-c", "class": "crypto"},
                                                                {"name": "vnf-z", "class": "compress"}])
        vaults = d.state / "vault"
        assert (vaults / "vnf-z.vault").exists()
        with Device.open(str(d.regions / "vnf-c")) as g, g.queue(0).session(Alg.AES256_GCM, KEY) as s:
            r = d.call("domain.create", uuid=UUID, name="vnf", devices=[{"name": "vnf-c", "class": "crypto"},
                                                                        {"name": "vnf-p", "class": "packet"}])
            assert [x["name"] for x in r["devices"]] == ["vnf-c", "vnf-p"]
            # The kept device was not laid out again: same generation, its session still works.
            assert r["devices"][0]["generation"] == 1 and r["devices"][0]["sessions"] == 1
            ct, tag = s.encrypt(b"kept", bytes(12))
            assert ct + tag == AESGCM(KEY).encrypt(bytes(12), b"kept", None)
        # The dropped one is released: not served, not registered, its region and vault gone.
        assert not (d.regions / "vnf-z").exists() and not (vaults / "vnf-z.vault").exists()
        assert sorted(x["name"] for x in d.call("devices.list")) == ["vnf-c", "vnf-p"]
        assert d.call("domains.list")[0]["devices"] == ["vnf-c", "vnf-p"]
        with pytest.raises(client.RpcError, match="no device 'vnf-z'"):
            d.call("device.show", name="vnf-z")
        assert d.call("health")["devices"] == 2
        # The added one is served: a guest opens it and its channel works (a wire to itself).
        with Device.open(str(d.regions / "vnf-p")) as gp:
            ch = PacketChannel(gp, 0)
            assert ch.send_packets([frame(0)]) == 1
            until(lambda: (ch.reclaim(), ch.stats()["tx_dropped"])[1] == 1, "the unlinked channel to drop it")
            assert d.call("stats", name="vnf-p")["devices"]["vnf-p"]["packet"]["tx_drops"] == 1
        d.call("domain.destroy", uuid=UUID)


# ---- SIGINT (daemon.md: "SIGTERM (or SIGINT) stops it"; DESIGN.md: SIGTERM stops it cleanly) ----

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_stops_the_daemon_as_sigterm_does(base: pathlib.Path, sig: int) -> None:
    d = Daemon(base).start()
    try:
        d.call("domain.create", uuid=UUID, name="stop", devices=[{"name": "stop-c", "class": "crypto"}])
        region = d.regions / "stop-c"
        with Device.open(str(region)) as g, g.queue(0).session(Alg.AES256_GCM, KEY) as s:
            assert d.stop(sig) == 0, d.log.read_text()[-2000:]
            assert not os.path.exists(d.socket), "the daemon removes its socket"
            assert "stopped" in d.log.read_text().splitlines()[-1]
            # The region stays for the VM that maps it, no longer served; the next daemon re-attaches it.
            assert region.exists() and region.stat().st_size == 4 << 20
            header = region_mod.read_header(str(region))
            assert header.status == ["detached"] and header.generation == 1, header  # dev_status 0: released
            assert header.driver_attached, "the guest's driver status is left as it was"
            d.start()
            assert d.call("devices.list")[0]["generation"] == 2
            ct, tag = s.encrypt(b"after the stop", bytes(12))  # the vault kept the session
            assert ct + tag == AESGCM(KEY).encrypt(bytes(12), b"after the stop", None)
        d.call("domain.destroy", uuid=UUID)
    finally:
        d.stop()


# ---- a destroyed session's key leaves the daemon's memory (device-abi.md 8.4) ----

def readable_memory(pid: int) -> Iterator[tuple[str, bytes]]:
    """(mapping, contents) of each readable mapping of a process (root, or ptrace rights)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (r)\S* \S+ \S+ \S+\s*(.*)", line)
            if m is None or m.group(4) in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                yield m.group(4) or "anonymous", mem.read(end - start)
            except (OSError, ValueError):  # a mapping that went away, or a device mapping
                continue


def where_is(pid: int, secret: bytes) -> list[str]:
    return [name for name, data in readable_memory(pid) if secret in data]


def test_a_destroyed_sessions_key_leaves_the_daemons_memory(base: pathlib.Path) -> None:
    """The key reaches the daemon through the region (SESSION_CREATE's parameter block), never the
    JSON-RPC socket; the test's own copies live in this process, and only the daemon's memory is
    scanned. While the session lives, the scan finds the key (in the vault mapping at least): the
    scan sees what a missing wipe would leave."""
    if os.geteuid() != 0:
        pytest.skip("reading another process's memory needs root")
    with daemon_at(base) as daemons:
        d = daemons[0]
        assert d.proc is not None
        d.call("domain.create", uuid=UUID, name="keys", devices=[{"name": "keys-c", "class": "crypto"}])
        with Device.open(str(d.regions / "keys-c")) as g:
            q = g.queue(0)
            s = q.session(Alg.AES256_GCM, KEY)
            ct, tag = s.encrypt(b"with the key", bytes(12))
            assert ct + tag == AESGCM(KEY).encrypt(bytes(12), b"with the key", None)
            live = where_is(d.proc.pid, KEY)
            assert any(name.endswith("keys-c.vault") for name in live), live
            s.destroy()
            until(lambda: d.call("devices.list")[0]["sessions"] == 0, "the session to go")
            assert where_is(d.proc.pid, KEY) == [], "the key of a destroyed session is still in the daemon"
        d.call("domain.destroy", uuid=UUID)
