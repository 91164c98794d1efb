# SPDX-License-Identifier: Apache-2.0
"""The ipsec-mb plugin serves AES-GCM and ChaCha20-Poly1305 with the same bytes as the openssl
plugin and as in-process `cryptography`: random sizes, AAD and tag lengths, in place and out of
place, ChaCha ops through the job API and (longer than a job) through the direct calls; failed tags
zero the output; bursts mixing algorithms, sessions and directions give every op its own result."""

from __future__ import annotations

import pathlib
import random
from collections.abc import Iterator
from typing import Any

import pytest
from test_crypto_interop import reference_seal

from libvirt_synth import errors
from libvirt_synth.abi import ALG_INFO, Alg, DevClass, Op, Status
from libvirt_synth.guest import CryptoSession, Device, Queue, raise_for_status
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.host.plugins import catalog

SERVED = [Alg.AES128_GCM, Alg.AES256_GCM, Alg.CHACHA20_POLY1305]


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
    return rng.randbytes({Alg.AES128_GCM: 16}.get(alg, 32))


def random_size(rng: random.Random) -> int:
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


@pytest.mark.parametrize("alg", SERVED, ids=lambda a: a.label)
def test_random_ops_match_openssl_and_cryptography(pair: tuple[Device, Device], alg: Alg) -> None:
    mb, ossl = pair
    qm, qo = mb.queue(0), ossl.queue(0)
    rng = random.Random(4000 + int(alg))
    for i in range(40):
        key = random_key(alg, rng)
        tag_len = rng.choice(ALG_INFO[alg].tag_sizes)
        data = rng.randbytes(random_size(rng))
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
        data = rng.randbytes(max(16, random_size(rng)))
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
    for i in range(8):
        alg = SERVED[i % len(SERVED)]
        key, tag_len = random_key(alg, rng), rng.choice(ALG_INFO[alg].tag_sizes)
        sessions.append((q.session(alg, key, tag_len=tag_len), alg, key))
    items: list[dict[str, Any]] = []
    expect: list[tuple[int, bytes, bytes | None]] = []
    bufs = []
    try:
        for i in range(150):
            s, alg, key = sessions[rng.randrange(len(sessions))]
            data = rng.randbytes(rng.randint(0, 1600))
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
