# SPDX-License-Identifier: Apache-2.0
"""The devices' hand-over between two daemons, without VMs: the steps a migration takes
(docs/migration.md), driven by hand. Two daemons with their own region and state directories
stand for two hosts; one pins AES-GCM to ipsec-mb, the other to openssl. A guest (the library, in
this process) keeps its sessions across the move. Where QEMU would map the destination's file at
the guest's address, the test maps it over the guest's mapping (MAP_FIXED): the guest's pointers
then see the destination's region, as a migrated guest's RAM does.

What must hold: sessions keep their ids and keys, no IV repeats, the destination serves with its
own plugin, the region QEMU copied stale is replaced by the final one, either daemon may be killed
part-way, and a refused or cancelled move leaves the source serving and nothing at the destination."""

from __future__ import annotations

import base64
import ctypes
import mmap
import os
import pathlib
import shutil
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from libvirt_synth.daemon import client, handover
from libvirt_synth.guest import Device
from libvirt_synth.move import orchestrate

from daemonctl import Daemon, scratch
from rawregion import RawRegion

UUID = "6d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
NAME = "synth-6d1e2f3a4b5c-0"
KEY_GCM = bytes(range(32))
KEY_CHACHA = bytes(range(32, 64))

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]


def remap(old: str, new: str) -> int:
    """Map ``new`` over every mapping of ``old`` in this process, at the same addresses."""
    done = 0
    with open("/proc/self/maps") as f:
        maps = [line.split() for line in f]
    fd = os.open(new, os.O_RDWR)
    try:
        for m in maps:
            if len(m) >= 6 and m[5] == old:
                lo, hi = (int(x, 16) for x in m[0].split("-"))
                got = _libc.mmap(lo, hi - lo, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED | 0x10,  # MAP_FIXED
                                 fd, int(m[2], 16))
                assert got == lo, f"mmap MAP_FIXED failed: errno {ctypes.get_errno()}"
                done += 1
    finally:
        os.close(fd)
    assert done, f"{old} is not mapped here"
    return done


class Host:
    def __init__(self, base: pathlib.Path, pin: str, extra: str = "") -> None:
        base.mkdir()
        (base / "virt-synthd.toml").write_text(f'[plugins.pin]\n"aes-256-gcm" = "{pin}"\n{extra}')
        self.daemon = Daemon(base).start()
        self.ep = orchestrate.Endpoint(self.daemon.socket)

    def region(self, name: str = NAME) -> str:
        return str(self.daemon.regions / name)

    def vault(self, name: str = NAME) -> pathlib.Path:
        return self.daemon.state / "vault" / (name + ".vault")

    def call(self, method: str, **kw: Any) -> Any:
        return self.daemon.call(method, **kw)

    def restart(self, kill: bool = True) -> None:
        if kill:
            self.daemon.kill9()
        else:
            self.daemon.stop()
        self.daemon.start()


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    with scratch("synth-handover-") as base:
        a, b = Host(base / "a", "ipsec-mb"), Host(base / "b", "openssl")
        try:
            yield a, b
        finally:
            for h in (a, b):
                if h.daemon.proc and h.daemon.proc.poll() is None:
                    h.daemon.stop()


class Guest:
    """A VNF's sessions on one device, and every IV it was given."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dev = Device.open(path)
        q = self.dev.queue(0)
        self.gcm = q.session("aes-256-gcm", KEY_GCM, iv_gen=True)
        self.chacha = q.session("chacha20-poly1305", KEY_CHACHA)
        self.ids = (self.gcm.id, self.chacha.id)
        self.ivs: list[bytes] = []
        self.k = 0

    def work(self, n: int = 4) -> None:
        """n rounds of seal (device IV), open, and a ChaCha20-Poly1305 seal, each checked here."""
        for _ in range(n):
            self.k += 1
            msg, aad = f"packet {self.k}".encode() * 7, self.k.to_bytes(8, "big")
            iv, ct, tag = self.gcm.seal(msg, aad)
            assert AESGCM(KEY_GCM).decrypt(iv, ct + tag, aad) == msg, f"op {self.k}: wrong AES-GCM result"
            assert self.gcm.decrypt(ct, tag, iv, aad) == msg
            self.ivs.append(iv)
            nonce = self.k.to_bytes(12, "big")
            ct2, tag2 = self.chacha.encrypt(msg, nonce, aad)
            assert ChaCha20Poly1305(KEY_CHACHA).decrypt(nonce, ct2 + tag2, aad) == msg
        assert len(set(self.ivs)) == len(self.ivs), "an IV was handed out twice"
        assert (self.gcm.id, self.chacha.id) == self.ids

    def moved_to(self, path: str) -> None:
        remap(self.path, path)
        self.path = path


def create(h: Host) -> None:
    h.call("domain.create", uuid=UUID, name="vnf", devices=[{"name": NAME, "class": "crypto", "size": 1 << 20}])


def prepare_move(src: Host, dst: Host) -> None:
    """Steps 1-3 and the libvirt part: begin, expect, the destination's prepare hook, QEMU's copy."""
    key = dst.call("daemon.key")["public_key"]
    begin = src.call("migration.begin", uuid=UUID, peer_key=key)
    dst.call("migration.expect", uuid=UUID, name="vnf", records=begin["records"], sender=begin["sender"])
    res = dst.call("domain.create", uuid=UUID, name="vnf", devices=[{"name": NAME, "class": "crypto",
                                                                    "size": 1 << 20}], existing="replace")
    assert res.get("incoming") and not os.path.exists(dst.vault())
    assert [d for d in dst.call("devices.list") if d["served"]] == []  # a placeholder: nobody serves it
    shutil.copyfile(src.region(), dst.region() + ".copy")  # what QEMU's pre-copy sent, early


def complete_move(src: Host, dst: Host, guest: Guest) -> dict[str, Any]:
    """The source QEMU stops (its stop hook), QEMU's copy lands, then the hand-over proper."""
    res = src.call("domain.destroy", uuid=UUID)
    assert res["deferred"] == [NAME] and os.path.exists(src.region()), "the leaving device was destroyed"
    _copy_into(dst.region() + ".copy", dst.region())
    with open(src.region(), "rb") as f:
        final = f.read()
    report = orchestrate.Report("vnf", UUID)
    out = orchestrate.hand_over(src.ep, dst.ep, UUID, report)
    # Past the header (which the new backend writes: generation, heartbeat), the destination's
    # region is the source's final one, not the copy QEMU sent while the guest ran.
    with open(dst.region(), "rb") as f:
        arrived = f.read()
    rings = RawRegion(src.region())
    start = rings.hdr.queues[0].sq_off
    rings.close()
    assert arrived[start:] == final[start:], "the destination serves the stale copy"
    guest.moved_to(dst.region())
    src.call("migration.finish", uuid=UUID)
    assert not os.path.exists(src.region()) and not src.vault().exists()
    assert src.call("domains.list") == [] and src.call("migrations.list") == []
    return out


def _copy_into(src: str, dst: str) -> None:
    """QEMU's copy, taken earlier into ``src``, lands in the destination's placeholder."""
    _copy_into_from(src, dst)
    os.unlink(src)


def plugin_of(h: Host) -> str:
    """The plugin serving the guest's AES-GCM session."""
    live = h.call("device.show", name=NAME)["sessions_live"]
    return str(next(s["plugin"] for s in live if s["alg"] == "aes-256-gcm"))


def test_sessions_move_there_and_back_with_their_keys_and_iv_counters(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    create(a)
    g = Guest(a.region())
    g.work()
    assert plugin_of(a) == "ipsec-mb"
    gen0 = a.call("device.show", name=NAME)["generation"]
    prepare_move(a, b)
    g.work()  # the guest runs on during the copy: the copy QEMU sent is stale by now
    out = complete_move(a, b, g)
    assert out["imported"] and plugin_of(b) == "openssl"
    assert b.call("device.show", name=NAME)["generation"] > gen0
    g.work()  # the same session ids, keys and IV counter, served by another plugin
    assert b.call("device.show", name=NAME)["sessions"] == 2
    prepare_move(b, a)
    g.work()
    complete_move(b, a, g)
    assert plugin_of(a) == "ipsec-mb"
    g.work()
    assert len(g.ivs) == 20


def test_a_daemon_killed_during_the_hand_over_loses_nothing(hosts: tuple[Host, Host]) -> None:
    """The source killed after its QEMU stopped keeps the devices unserved across its restart and
    hands them over after it; the destination killed after the blob arrived takes it again."""
    a, b = hosts
    create(a)
    g = Guest(a.region())
    g.work()
    prepare_move(a, b)
    assert a.call("domain.destroy", uuid=UUID)["deferred"] == [NAME]
    a.restart()  # kill -9 while the device waits for its hand-over
    health = a.call("health")
    assert health["migrations"] == ["out vnf stopped"] and health["devices"] == 0
    assert os.path.exists(a.region()) and a.vault().exists()
    _copy_into(b.region() + ".copy", b.region())
    a.call("migration.export", uuid=UUID)
    orchestrate.transfer(a.ep, b.ep, UUID)
    b.restart()  # kill -9 with the blob arrived and not imported
    assert b.call("health")["migrations"] == ["in vnf placed"]
    out = orchestrate.hand_over(a.ep, b.ep, UUID, orchestrate.Report("vnf", UUID))
    assert out["imported"]
    g.moved_to(b.region())
    g.work()
    a.call("migration.finish", uuid=UUID)
    # The destination killed once it serves: it re-attaches; a repeated import says it is done.
    b.restart()
    assert b.call("migration.import", uuid=UUID)["served"]
    g.work()
    assert len(set(g.ivs)) == 12


def test_refused_and_cancelled_moves_leave_the_source_serving(hosts: tuple[Host, Host], tmp_path: pathlib.Path) -> None:
    a, b = hosts
    create(a)
    g = Guest(a.region())
    g.work()
    gen = a.call("device.show", name=NAME)["generation"]
    key_b = b.call("daemon.key")["public_key"]
    with pytest.raises(client.RpcError, match="64 hex digits"):
        a.call("migration.begin", uuid=UUID, peer_key="not-a-key")
    with pytest.raises(client.RpcError, match="no domain"):
        a.call("migration.begin", uuid=str(uuidlib.uuid4()), peer_key=key_b)
    begin = a.call("migration.begin", uuid=UUID, peer_key=key_b)
    # A destination that pins its peers refuses a daemon it does not know.
    c = Host(tmp_path / "c", "openssl", '[migration]\npeers = ["' + "ab" * 32 + '"]\n')
    try:
        with pytest.raises(client.RpcError, match="not among this daemon's"):
            c.call("migration.expect", uuid=UUID, name="vnf", records=begin["records"], sender=begin["sender"])
        assert c.call("migrations.list") == []
    finally:
        c.daemon.stop()
    # An unarranged prepare creates real devices; an arranged one placeholders only.
    b.call("migration.expect", uuid=UUID, name="vnf", records=begin["records"], sender=begin["sender"])
    assert b.call("migration.incoming", uuid=UUID)["expected"]
    b.call("domain.create", uuid=UUID, name="vnf", devices=[{"name": NAME, "class": "crypto", "size": 1 << 20}])
    assert os.path.getsize(b.region()) == 1 << 20
    with pytest.raises(client.RpcError, match="not been handed over"):
        a.call("migration.finish", uuid=UUID)
    # libvirt failed (the source QEMU runs on): cancel on both sides.
    assert a.call("migration.cancel", uuid=UUID)["cancelled"]
    assert b.call("migration.cancel", uuid=UUID)["cancelled"]
    assert not os.path.exists(b.region()) and b.call("migrations.list") == [] and b.call("domains.list") == []
    g.work()
    assert a.call("device.show", name=NAME)["generation"] == gen  # never stopped serving
    # After the source QEMU stopped, its state exists only here: cancel needs force.
    prepare_move(a, b)
    a.call("domain.destroy", uuid=UUID)
    with pytest.raises(client.RpcError, match="cancel with force"):
        a.call("migration.cancel", uuid=UUID)
    assert os.path.exists(a.region())
    b.call("domain.destroy", uuid=UUID)  # the incoming side failed: its stop hooks
    assert not os.path.exists(b.region()) and b.call("migrations.list") == []


def test_a_blob_is_opened_only_by_its_daemon_and_only_unchanged(hosts: tuple[Host, Host],
                                                                 tmp_path: pathlib.Path) -> None:
    a, b = hosts
    ka = handover.KeyPair.load_or_create(str(tmp_path))
    (tmp_path / "k2").mkdir()
    kb = handover.KeyPair.load_or_create(str(tmp_path / "k2"))
    blob = handover.seal({"uuid": UUID}, handover.pack({"x.region": b"\1" * 5000 + bytes(9000)}), ka, kb.public)
    head, payload = handover.open_blob(blob, kb, {ka.public})
    assert head["uuid"] == UUID and handover.unpack(payload) == {"x.region": b"\1" * 5000 + bytes(9000)}
    with pytest.raises(handover.HandoverError, match="not this daemon's"):
        handover.open_blob(blob, ka)
    with pytest.raises(handover.HandoverError, match="not among"):
        handover.open_blob(blob, kb, {kb.public})
    bad = bytearray(blob)
    bad[-20] ^= 1
    with pytest.raises(handover.HandoverError, match="does not authenticate"):
        handover.open_blob(bytes(bad), kb)
    forged = blob.replace(b'"uuid": "' + UUID.encode(), b'"uuid": "' + UUID.replace("6", "7").encode())
    with pytest.raises(handover.HandoverError, match="does not authenticate"):
        handover.open_blob(forged, kb)
    # Through the daemons: a blob sealed to another key is refused at import, and the move stays
    # expected (the right blob may still come).
    create(a)
    g = Guest(a.region())
    prepare_move(a, b)
    a.call("domain.destroy", uuid=UUID)
    _copy_into(b.region() + ".copy", b.region())
    wrong = handover.seal({"uuid": UUID}, handover.pack({}), ka, kb.public)
    b.call("migration.write", uuid=UUID, offset=0, data=base64.b64encode(wrong).decode())
    with pytest.raises(client.RpcError, match="not this daemon's"):
        b.call("migration.import", uuid=UUID)
    assert b.call("migration.incoming", uuid=UUID)["expected"]
    assert orchestrate.hand_over(a.ep, b.ep, UUID, orchestrate.Report("vnf", UUID))["imported"]
    g.moved_to(b.region())
    g.work()


ZNAME = "synth-6d1e2f3a4b5c-1"


def text(k: int) -> bytes:
    """Compressible, different per chunk."""
    return b"".join(f"chunk {k} line {i}: the quick brown fox {i * k % 97}\n".encode() for i in range(40))


@pytest.mark.parametrize("alg", ["zstd", "zlib", "gzip", "deflate", "lz4"])
def test_compression_streams_move_and_carry_on(hosts: tuple[Host, Host], alg: str) -> None:
    """A compression stream and a decompression stream, each fed part of their input on a, go on
    at b after the move: the compressed output, whole, decodes to all the input; the decoder's
    output is the rest of the original."""
    import gzip
    import zlib

    import lz4.frame
    import zstandard

    from libvirt_synth.abi import Flush
    from libvirt_synth.guest.compress import Compressor

    a, b = hosts
    a.call("domain.create", uuid=UUID, name="vnf", devices=[{"name": ZNAME, "class": "compress", "size": 4 << 20}])
    dev = Device.open(a.region(ZNAME))
    comp = Compressor(dev.queue(0))
    enc = comp.stream(alg, 3 if alg != "lz4" else 0)
    whole = b"".join(text(k) for k in range(40))
    ref = {"zstd": lambda d: zstandard.ZstdCompressor(level=3).compress(d), "lz4": lz4.frame.compress,
           "zlib": zlib.compress, "gzip": gzip.compress,
           "deflate": lambda d: (lambda c: c.compress(d) + c.flush())(zlib.compressobj(6, zlib.DEFLATED, -15))}[alg]
    blob = ref(whole)
    dec = comp.stream(alg, decompress=True)
    out, plain = [], []
    half = len(blob) // 2
    for k in range(20):
        out.append(enc.feed(text(k), Flush.SYNC))
    plain.append(dec.decompress(blob[:half]))
    key = b.call("daemon.key")["public_key"]
    begin = a.call("migration.begin", uuid=UUID, peer_key=key)
    b.call("migration.expect", uuid=UUID, name="vnf", records=begin["records"], sender=begin["sender"])
    b.call("domain.create", uuid=UUID, name="vnf", devices=[{"name": ZNAME, "class": "compress", "size": 4 << 20}])
    a.call("domain.destroy", uuid=UUID)
    _copy_into_from(a.region(ZNAME), b.region(ZNAME))
    orchestrate.hand_over(a.ep, b.ep, UUID, orchestrate.Report("vnf", UUID))
    remap(a.region(ZNAME), b.region(ZNAME))
    a.call("migration.finish", uuid=UUID)
    for k in range(20, 40):
        out.append(enc.feed(text(k), Flush.SYNC))
    out.append(enc.finish())
    plain.append(dec.decompress(blob[half:], final=True))
    stream = b"".join(out)
    back = {"zstd": lambda d: zstandard.ZstdDecompressor().decompressobj().decompress(d),
            "lz4": lz4.frame.decompress, "zlib": zlib.decompress, "gzip": lambda d: zlib.decompress(d, 31),
            "deflate": lambda d: zlib.decompress(d, -15)}[alg](stream)
    assert back == whole, "the moved compression stream's output does not decode to its input"
    assert b"".join(plain) == whole, "the moved decompression stream lost its place"


def _copy_into_from(src: str, dst: str) -> None:
    """A region's bytes written into another file in place, as QEMU writes the incoming RAM into
    the file it maps."""
    with open(src, "rb") as f:
        data = f.read()
    fd = os.open(dst, os.O_RDWR)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
