# SPDX-License-Identifier: Apache-2.0
"""The ipsec-mb plugin serves AES-GCM, ChaCha20-Poly1305 and (where the CPU has SHA-NI) AES-256-CBC +
HMAC-SHA-256 with the same bytes as the openssl plugin and as in-process `cryptography`: random
sizes, AAD and tag lengths, in place and out of place, ChaCha ops through the job API and (longer
than a job) through the direct calls, CBC ops longer than a job and MAC inputs gathered or not;
failed tags zero the output; bursts mixing algorithms, sessions and directions give every op its
own result."""

from __future__ import annotations

import pathlib
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from test_crypto_interop import reference_seal
from waiting import until as wait_for

from libvirt_synth import errors
from libvirt_synth._native import lib
from libvirt_synth.abi import ALG_INFO, Alg, DevClass, Op, Status
from libvirt_synth.guest import CryptoSession, Device, Queue, raise_for_status
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.host.plugins import catalog

from hostcpu import IPSECMB_ALGS, SHA_NI

HERE = pathlib.Path(__file__).parent
# AES-CBC + HMAC only where the SHA instructions make one job as fast as OpenSSL: without them the
# plugin leaves the algorithm to other plugins.
SERVED = [Alg.parse(a) for a in IPSECMB_ALGS]
needs_shani = pytest.mark.skipif(not SHA_NI, reason="this CPU has no SHA-NI: ipsec-mb leaves AES-CBC + HMAC to others")


@pytest.fixture
def pair(region_dir: pathlib.Path, worker: Worker) -> Iterator[tuple[Device, Device]]:
    """(ipsec-mb device, openssl device), both served, both opened."""
    devs = [HostDevice.create(str(region_dir / name), DevClass.CRYPTO, size=4 << 20, plugin=name)
            for name in ("ipsec-mb", "openssl")]
    for d in devs:
        worker.add(d)
    try:
        with Device.open(devs[0].path) as mb, Device.open(devs[1].path) as ossl:
            assert mb.info().backend == "ipsec-mb" and ossl.info().backend == "openssl"
            yield mb, ossl
    finally:
        for d in devs:
            d.destroy()


def random_key(alg: Alg, rng: random.Random) -> bytes:
    if alg == Alg.AES256_CBC_HMAC_SHA256:  # the AES key, then an HMAC key of any length
        return rng.randbytes(32 + rng.choice([1, 20, 32, 64, 65, 100]))
    return rng.randbytes({Alg.AES128_GCM: 16}.get(alg, 32))


def random_size(rng: random.Random, alg: Alg | None = None) -> int:
    if alg == Alg.AES256_CBC_HMAC_SHA256:  # whole blocks
        return rng.choice([0, 16, 32, 64, 256, 1488, 9008])
    return rng.choice([0, 1, 15, 16, 17, 64, 255, 1500, 9000])


def op_in_arena(q: Queue, s: CryptoSession, opcode: Op, data: bytes, aad: bytes, iv: bytes, tag: bytes, *,
                in_place: bool, aad_before_data: bool = False) -> tuple[int, bytes, bytes]:
    """One op on arena buffers; returns (status, output, tag). With aad_before_data the AAD ends
    where the input (in place: the output too) begins, in one buffer."""
    n = len(data)
    with q.scratch(len(aad) + n, n, len(iv) or 1, s.tag_len) as (buf, out, ivb, tagb):
        buf.write(aad + data if aad_before_data else data + aad)
        src_off, aad_off = (buf.offset + len(aad), buf.offset) if aad_before_data else (buf.offset, buf.offset + n)
        dst_off = src_off if in_place else out.offset
        if not in_place:
            out.write(b"\x5a" * n)
        ivb.write(iv)
        tagb.write(tag)
        c = q.exec({"opcode": opcode, "session": s.id, "src_off": src_off, "src_len": n, "dst_off": dst_off,
                    "dst_len": n, "aad_off": aad_off, "aad_len": len(aad), "iv_off": ivb.offset,
                    "tag_off": tagb.offset})
        got = buf.read(n, at=src_off - buf.offset) if in_place else out.read(n)
        return c.status, got, tagb.read(s.tag_len)


def test_catalog_lists_what_ipsecmb_serves() -> None:
    mb = {p.name: p for p in catalog()}["ipsec-mb"]
    assert mb.available and "intel-ipsec-mb" in mb.detail
    assert mb.algorithms == [a.label for a in SERVED]
    assert ("SHA-NI for AES-CBC + HMAC" in mb.detail) == SHA_NI and ("no SHA-NI" in mb.detail) != SHA_NI


@pytest.mark.parametrize("alg", SERVED, ids=lambda a: a.label)
def test_random_ops_match_openssl_and_cryptography(pair: tuple[Device, Device], alg: Alg) -> None:
    mb, ossl = pair
    qm, qo = mb.queue(0), ossl.queue(0)
    rng = random.Random(4000 + int(alg))
    for i in range(40):
        key = random_key(alg, rng)
        tag_len = rng.choice(ALG_INFO[alg].tag_sizes)
        data = rng.randbytes(random_size(rng, alg))
        aad = rng.randbytes(rng.choice([0, 1, 8, 12, 24, 300]))
        iv = rng.randbytes(ALG_INFO[alg].iv_len)
        in_place, joined = bool(i % 2), bool(i % 4 >= 2)
        want = reference_seal(alg, key, iv, data, aad, tag_len)
        with qm.session(alg, key, tag_len=tag_len) as sm, qo.session(alg, key, tag_len=tag_len) as so:
            case = (alg.label, len(data), len(aad), tag_len, in_place, joined)
            st, ct, tag = op_in_arena(qm, sm, Op.ENCRYPT, data, aad, iv, bytes(tag_len), in_place=in_place,
                                      aad_before_data=joined)
            assert (st, ct, tag) == (Status.OK, *want), case
            assert sm.encrypt(data, iv, aad) == so.encrypt(data, iv, aad) == want, case
            st, pt, _ = op_in_arena(qm, sm, Op.DECRYPT, ct, aad, iv, tag, in_place=not in_place,
                                    aad_before_data=joined)
            assert (st, pt) == (Status.OK, data), case
            assert so.decrypt(ct, tag, iv, aad) == data


@pytest.mark.parametrize("alg", SERVED, ids=lambda a: a.label)
def test_failed_tag_zeroes_the_output(pair: tuple[Device, Device], alg: Alg) -> None:
    mb, _ = pair
    q = mb.queue(0)
    rng = random.Random(77 + int(alg))
    for i in range(12):
        key, tag_len = random_key(alg, rng), rng.choice(ALG_INFO[alg].tag_sizes)
        data = rng.randbytes(max(16, random_size(rng, alg)))
        aad, iv = rng.randbytes(rng.choice([0, 13])), rng.randbytes(ALG_INFO[alg].iv_len)
        with q.session(alg, key, tag_len=tag_len) as s:
            ct, tag = s.encrypt(data, iv, aad)
            what = i % 3
            bad_tag = bytes([tag[0] ^ 1]) + tag[1:] if what == 0 else tag
            bad_ct = bytes([ct[0] ^ 0x80]) + ct[1:] if what == 1 else ct
            bad_aad = aad + b"x" if what == 2 else aad
            st, out, _ = op_in_arena(q, s, Op.DECRYPT, bad_ct, bad_aad, iv, bad_tag, in_place=bool(i % 2))
            assert st == Status.AUTH_FAILED and out == bytes(len(data)), (alg.label, what)
            with pytest.raises(errors.AuthenticationError):
                s.decrypt(bad_ct, bad_tag, iv, bad_aad)


def test_chacha_longer_than_one_job(pair: tuple[Device, Device]) -> None:
    """ChaCha20-Poly1305 ops whose AAD and data exceed what the plugin puts in one job (32 KiB)
    take the direct calls; on either side of the limit, the same bytes as openssl."""
    mb, ossl = pair
    rng = random.Random(1313)
    alg = Alg.CHACHA20_POLY1305
    for size, aad_len in (((32 << 10) - 40, 40), ((32 << 10) - 39, 40), (200 << 10, 0), (96 << 10, 300)):
        key, data, aad, iv = rng.randbytes(32), rng.randbytes(size), rng.randbytes(aad_len), rng.randbytes(12)
        want = reference_seal(alg, key, iv, data, aad, 16)
        with mb.queue(0).session(alg, key) as s, ossl.queue(0).session(alg, key) as so:
            assert s.encrypt(data, iv, aad) == so.encrypt(data, iv, aad) == want, size
            assert s.decrypt(want[0], want[1], iv, aad) == data
            with pytest.raises(errors.AuthenticationError):
                s.decrypt(want[0], bytes(16), iv, aad)


def test_mixed_burst_of_algorithms_sessions_and_directions(pair: tuple[Device, Device]) -> None:
    """One submission of 150 ops over 8 sessions of every algorithm, encrypts and decrypts, some
    with a wrong tag: each op gets its own status and bytes, as in-process references say."""
    mb, _ = pair
    q = mb.queue(0)
    rng = random.Random(2024)
    sessions: list[tuple[CryptoSession, Alg, bytes]] = []
    for i in range(2 * len(SERVED)):
        alg = SERVED[i % len(SERVED)]
        key, tag_len = random_key(alg, rng), rng.choice(ALG_INFO[alg].tag_sizes)
        sessions.append((q.session(alg, key, tag_len=tag_len), alg, key))
    items: list[dict[str, Any]] = []
    expect: list[tuple[int, bytes, bytes | None]] = []
    bufs = []
    try:
        for i in range(150):
            s, alg, key = sessions[rng.randrange(len(sessions))]
            data = rng.randbytes(rng.randint(0, 1600) // (16 if alg == Alg.AES256_CBC_HMAC_SHA256 else 1) *
                                 (16 if alg == Alg.AES256_CBC_HMAC_SHA256 else 1))
            aad, iv = rng.randbytes(rng.randint(0, 40)), rng.randbytes(ALG_INFO[alg].iv_len)
            ct, tag = reference_seal(alg, key, iv, data, aad, s.tag_len)
            dec, bad = i % 2 == 1, i % 7 == 3
            src = ct if dec else data
            tag_in = (bytes([tag[0] ^ 0x40]) + tag[1:] if bad else tag) if dec else bytes(s.tag_len)
            b = q.alloc(len(src) + len(aad) + len(iv) + s.tag_len + 1)
            bufs.append(b)
            b.write(src + aad + iv + tag_in)
            off = b.offset
            items.append({"opcode": Op.DECRYPT if dec else Op.ENCRYPT, "session": s.id, "cookie": i,
                          "src_off": off, "src_len": len(src), "dst_off": off, "dst_len": len(src),
                          "aad_off": off + len(src), "aad_len": len(aad), "iv_off": off + len(src) + len(aad),
                          "tag_off": off + len(src) + len(aad) + len(iv)})
            if dec:
                expect.append((Status.AUTH_FAILED, bytes(len(src)), None) if bad else (Status.OK, data, None))
            else:
                expect.append((Status.OK, ct, tag))
        assert q.submit(q.descs(items)) == len(items)
        got = sorted(q.drain(len(items)), key=lambda c: c.cookie)
        for c, it, (status, out, want_tag), b in zip(got, items, expect, bufs, strict=True):
            assert c.status == status, c.cookie
            assert b.read(it["src_len"]) == out, c.cookie
            if want_tag is not None:
                assert b.read(len(want_tag), at=it["tag_off"] - b.offset) == want_tag, c.cookie
            if status == Status.OK:
                raise_for_status(c.status, c.result, "op")
    finally:
        for b in bufs:
            q.free(b)
        for s, *_ in sessions:
            s.destroy()


# A guest in its own process: ChaCha20-Poly1305 ops through ipsec-mb's job API, then one more whose
# IV and tag lie before a cut of the region file and whose data lies after it, so that the fault
# comes from inside the plugin's job (the worker reads the IV and tag itself, the plugin the data).
CUT_GUEST = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[2])
    from rawregion import RawRegion
    from libvirt_synth.abi import Alg, Op
    from libvirt_synth.guest import Device
    path = sys.argv[1]
    g = Device.open(path)
    q = g.queue(0)
    s = q.session(Alg.CHACHA20_POLY1305, bytes(range(32)))
    for _ in range(20):
        s.encrypt(b"x" * 300, bytes(12), b"aad")
    iv, tag, gap, src = q.alloc(12), q.alloc(16), q.alloc(3 * 4096), q.alloc(8192)
    src.write(b"y" * 8192)
    raw = RawRegion(path)
    arena = raw.queue(0)[4]
    raw.close()
    cut = (arena + tag.offset + 16 + 4095) // 4096 * 4096
    assert cut <= arena + src.offset, (cut, arena + src.offset)
    d = q.descs([{"opcode": Op.ENCRYPT, "session": s.id, "src_off": src.offset, "src_len": 8192,
                  "dst_off": src.offset, "dst_len": 8192, "iv_off": iv.offset, "tag_off": tag.offset}])
    os.truncate(path, cut)
    assert q.submit(d) == 1
    print("cut", flush=True)
    sys.stdin.read()
    os._exit(0)
""")


def test_bursts_cut_short_by_a_region_fault_leave_the_job_path_working(region_dir: pathlib.Path,
                                                                      worker: Worker) -> None:
    """Each round, a guest's region is cut while the plugin runs that guest's ChaCha job, and the
    fault guard jumps out of the burst: the worker thread's job manager is left holding that job.
    More rounds than a small pool of managers would survive; then a neighbour's ChaCha ops on the
    same worker still come back, with the bytes `cryptography` computes (no stale job completes
    into them)."""
    rng = random.Random(515)
    for rnd in range(12):
        victim = HostDevice.create(str(region_dir / f"victim{rnd}"), DevClass.CRYPTO, size=1 << 20,
                                   plugin="ipsec-mb")
        worker.add(victim)
        peer = subprocess.Popen([sys.executable, "-c", CUT_GUEST, victim.path, str(HERE)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert peer.stdout is not None and peer.stdout.readline().strip() == "cut"
            wait_for(lambda: worker.stats()["region_faults"] == rnd + 1, f"fault {rnd + 1}")  # noqa: B023
            assert victim.stats().dev_error == lib.SYNTH_DEVERR_REGION
        finally:
            peer.communicate("", timeout=10)
        victim.destroy()
    other = HostDevice.create(str(region_dir / "other"), DevClass.CRYPTO, size=4 << 20, plugin="ipsec-mb")
    worker.add(other)
    try:
        with Device.open(other.path) as g:
            q = g.queue(0)
            key = rng.randbytes(32)
            with q.session(Alg.CHACHA20_POLY1305, key) as s:
                items, want, bufs = [], [], []
                for i in range(48):
                    data, aad, iv = rng.randbytes(rng.randint(1, 1600)), rng.randbytes(8), rng.randbytes(12)
                    b = q.alloc(len(data) + len(aad) + 12 + 16)
                    b.write(data + aad + iv)
                    bufs.append(b)
                    n, off = len(data), b.offset
                    items.append({"opcode": Op.ENCRYPT, "session": s.id, "cookie": i, "src_off": off,
                                  "src_len": n, "dst_off": off, "dst_len": n, "aad_off": off + n,
                                  "aad_len": len(aad), "iv_off": off + n + len(aad),
                                  "tag_off": off + n + len(aad) + 12})
                    want.append(reference_seal(Alg.CHACHA20_POLY1305, key, iv, data, aad, 16))
                assert q.submit(q.descs(items)) == len(items)
                got = sorted(q.drain(len(items), timeout=20), key=lambda c: c.cookie)
                for c, it, (ct, tag), b in zip(got, items, want, bufs, strict=True):
                    n = it["src_len"]
                    assert (c.status, b.read(n), b.read(16, at=n + 8 + 12)) == (Status.OK, ct, tag), c.cookie
                for b in bufs:
                    q.free(b)
    finally:
        other.destroy()
    assert worker.stats()["region_faults"] == 12


@needs_shani
def test_cbc_hmac_longer_than_a_job_and_macs_that_no_job_takes(pair: tuple[Device, Device]) -> None:
    """CBC over more than one job (pieces chained forwards to encrypt, backwards to decrypt in
    place), MAC inputs gathered into scratch, taken from the arena as they lie (MAC_NO_IV with the
    AAD just before the data), and those no job takes (empty, or longer than a job): the same bytes
    as openssl and as `cryptography`, and a wrong tag still fails."""
    mb, ossl = pair
    rng = random.Random(4242)
    alg = Alg.AES256_CBC_HMAC_SHA256
    cases = [(0, 0, False), (0, 0, True), (0, 5, True), (16, 0, False), ((32 << 10) - 32, 16, False),
             ((32 << 10) - 16, 0, True), (32 << 10, 0, False), ((32 << 10) + 16, 12, True), (200 << 10, 40, False),
             (96 << 10, 0, True)]
    for size, aad_len, no_iv in cases:
        key, data, aad, iv = random_key(alg, rng), rng.randbytes(size), rng.randbytes(aad_len), rng.randbytes(16)
        tag_len = rng.choice([16, 24, 32])
        want = reference_seal(alg, key, iv, data, aad, tag_len, mac_no_iv=no_iv)
        case = (size, aad_len, no_iv, tag_len)
        with mb.queue(0).session(alg, key, tag_len=tag_len, mac_no_iv=no_iv) as s, \
                ossl.queue(0).session(alg, key, tag_len=tag_len, mac_no_iv=no_iv) as so:
            assert s.encrypt(data, iv, aad) == so.encrypt(data, iv, aad) == want, case
            assert s.decrypt(want[0], want[1], iv, aad) == data, case
            for in_place, joined in ((True, True), (False, False), (True, False)):
                st, ct, tag = op_in_arena(mb.queue(0), s, Op.ENCRYPT, data, aad, iv, bytes(tag_len),
                                          in_place=in_place, aad_before_data=joined)
                assert (st, ct, tag) == (Status.OK, *want), (case, in_place, joined)
                st, pt, _ = op_in_arena(mb.queue(0), s, Op.DECRYPT, ct, aad, iv, tag, in_place=in_place,
                                        aad_before_data=joined)
                assert (st, pt) == (Status.OK, data), (case, in_place, joined)
            with pytest.raises(errors.AuthenticationError):
                s.decrypt(want[0], bytes([want[1][0] ^ 1]) + want[1][1:], iv, aad)
