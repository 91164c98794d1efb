# SPDX-License-Identifier: Apache-2.0
"""Device results are byte-identical to in-process OpenSSL (the `cryptography` package) for every
algorithm, over random sizes, arena offsets and AAD lengths, in place and out of place."""

from __future__ import annotations

import hashlib
import hmac
import os
import random

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libvirt_synth import errors
from libvirt_synth._native import lib
from libvirt_synth.abi import ALG_INFO, Alg, Op, Status
from libvirt_synth.guest import CryptoSession, Device, Queue, raise_for_status

AEADS = [Alg.AES128_GCM, Alg.AES256_GCM, Alg.CHACHA20_POLY1305, Alg.AES256_CBC_HMAC_SHA256]


def reference_seal(alg: Alg, key: bytes, iv: bytes, data: bytes, aad: bytes, tag_len: int, *,
                   mac_no_iv: bool = False) -> tuple[bytes, bytes]:
    """(ciphertext, tag) computed in process."""
    if alg in (Alg.AES128_GCM, Alg.AES256_GCM):
        if tag_len == 16:
            out = AESGCM(key).encrypt(iv, data, aad)
            return out[:-16], out[-16:]
        enc = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
        enc.authenticate_additional_data(aad)
        ct = enc.update(data) + enc.finalize()
        return ct, enc.tag[:tag_len]
    if alg == Alg.CHACHA20_POLY1305:
        out = ChaCha20Poly1305(key).encrypt(iv, data, aad)
        return out[:-16], out[-16:]
    if alg == Alg.AES256_CBC_HMAC_SHA256:
        enc = Cipher(algorithms.AES(key[:32]), modes.CBC(iv)).encryptor()
        ct = enc.update(data) + enc.finalize()
        mac = hmac.new(key[32:], aad + (b"" if mac_no_iv else iv) + ct, hashlib.sha256).digest()
        return ct, mac[:tag_len]
    raise AssertionError(alg)


def key_for(alg: Alg, rng: random.Random) -> bytes:
    n = {Alg.AES128_GCM: 16, Alg.AES256_GCM: 32, Alg.CHACHA20_POLY1305: 32,
         Alg.AES256_CBC_HMAC_SHA256: 32 + 32}[alg]
    return rng.randbytes(n)


def device_op(q: Queue, s: CryptoSession, data: bytes, aad: bytes, iv: bytes, *, in_place: bool,
              pads: tuple[int, int, int]) -> tuple[bytes, bytes]:
    """Encrypt on buffers placed at odd arena offsets (src, dst and AAD each `pad` bytes into
    their buffer); returns (output, tag)."""
    src_pad, dst_pad, aad_pad = pads
    with q.scratch(len(data) + src_pad, len(data) + dst_pad, len(aad) + aad_pad, len(iv) or 1, s.tag_len) as (
        src, dst, abuf, ivbuf, tbuf
    ):
        src.write(data, at=src_pad)
        abuf.write(aad, at=aad_pad)
        ivbuf.write(iv)
        target, target_pad = (src, src_pad) if in_place else (dst, dst_pad)
        c = q.exec({"opcode": Op.ENCRYPT, "session": s.id, "src_off": src.offset + src_pad,
                    "src_len": len(data), "dst_off": target.offset + target_pad, "dst_len": len(data),
                    "aad_off": abuf.offset + aad_pad, "aad_len": len(aad), "iv_off": ivbuf.offset,
                    "tag_off": tbuf.offset})
        raise_for_status(c.status, c.result, "encrypt")
        assert c.result == len(data)
        return target.read(len(data), at=target_pad), tbuf.read(s.tag_len)


@pytest.mark.parametrize("alg", AEADS, ids=lambda a: a.label)
def test_random_sizes_offsets_aad_match_openssl(guest: Device, alg: Alg) -> None:
    rng = random.Random(int(alg) * 7919)
    q = guest.queue(0)
    info = ALG_INFO[alg]
    for i in range(60):
        key = key_for(alg, rng)
        tag_len = rng.choice(info.tag_sizes) if alg != Alg.CHACHA20_POLY1305 else 16
        blocks = rng.choice([0, 1, 2, 4, 93, 1024])
        size = blocks * 16 if info.block == 16 else rng.choice([0, 1, 15, 16, 17, 64, 1500, 9000, 65536 + 7])
        data = rng.randbytes(size)
        aad = rng.randbytes(rng.choice([0, 1, 8, 12, 13, 300]))
        iv = rng.randbytes(info.iv_len)
        in_place = bool(i % 2)
        want_ct, want_tag = reference_seal(alg, key, iv, data, aad, tag_len)
        with q.session(alg, key, tag_len=tag_len) as s:
            ct, tag = s.encrypt(data, iv, aad)
            assert (ct, tag) == (want_ct, want_tag), (alg.label, size, len(aad), tag_len)
            assert s.decrypt(ct, tag, iv, aad) == data
            pads = (rng.randrange(64), rng.randrange(64), rng.randrange(64))
            assert device_op(q, s, data, aad, iv, in_place=in_place, pads=pads) == (want_ct, want_tag)
            bad = bytearray(tag)
            bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
            with pytest.raises(errors.AuthenticationError):
                s.decrypt(ct, bytes(bad), iv, aad)
            if ct:
                flipped = bytearray(ct)
                flipped[rng.randrange(len(ct))] ^= 0x01
                with pytest.raises(errors.AuthenticationError):
                    s.decrypt(bytes(flipped), tag, iv, aad)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    alg=st.sampled_from(AEADS),
    data=st.binary(max_size=3000),
    aad=st.binary(max_size=64),
    seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis_roundtrip_matches_openssl(guest: Device, alg: Alg, data: bytes, aad: bytes, seed: int) -> None:
    rng = random.Random(seed)
    if ALG_INFO[alg].block == 16:
        data = data[: len(data) - len(data) % 16]
    key = key_for(alg, rng)
    iv = rng.randbytes(ALG_INFO[alg].iv_len)
    with guest.queue(1).session(alg, key) as s:
        ct, tag = s.encrypt(data, iv, aad)
        assert (ct, tag) == reference_seal(alg, key, iv, data, aad, 16)
        assert s.decrypt(ct, tag, iv, aad) == data


def test_cbc_hmac_mac_no_iv_authenticates_aad_and_ciphertext_only(guest: Device) -> None:
    """A MAC_NO_IV session (ABI 1.2) tags AAD || ciphertext: the range a DPDK cipher-then-auth
    chain names. The IV is then not authenticated: a changed IV still verifies (and garbles only
    the first block), while a changed AAD or ciphertext byte does not."""
    rng = random.Random(1202)
    q = guest.queue(0)
    assert guest.info().features_accepted & lib.SYNTH_CRYPTO_F_MAC_NO_IV
    for i in range(40):
        key = rng.randbytes(32 + rng.choice([1, 20, 32, 64, 224]))
        tag_len = rng.choice([12, 16, 24, 32])
        data = rng.randbytes(16 * rng.choice([0, 1, 3, 94, 1024]))
        aad = rng.randbytes(rng.choice([0, 8, 24, 300]))
        iv = rng.randbytes(16)
        want = reference_seal(Alg.AES256_CBC_HMAC_SHA256, key, iv, data, aad, tag_len, mac_no_iv=True)
        assert want != reference_seal(Alg.AES256_CBC_HMAC_SHA256, key, iv, data, aad, tag_len)
        with q.session(Alg.AES256_CBC_HMAC_SHA256, key, tag_len=tag_len, mac_no_iv=True) as s:
            pads = (rng.randrange(64), rng.randrange(64), rng.randrange(64))
            assert device_op(q, s, data, aad, iv, in_place=bool(i % 2), pads=pads) == want
            ct, tag = want
            assert s.decrypt(ct, tag, iv, aad) == data
            if data:
                other_iv = bytes(b ^ 0xFF for b in iv)
                assert s.decrypt(ct, tag, other_iv, aad)[16:] == data[16:]
                flipped = bytearray(ct)
                flipped[rng.randrange(len(ct))] ^= 0x80
                with pytest.raises(errors.AuthenticationError):
                    s.decrypt(bytes(flipped), tag, iv, aad)
            if aad:
                with pytest.raises(errors.AuthenticationError):
                    s.decrypt(ct, tag, iv, aad[:-1] + bytes([aad[-1] ^ 1]))


def test_auth_failure_zeroes_output(guest: Device) -> None:
    q = guest.queue(0)
    key, iv = os.urandom(32), os.urandom(12)
    data = os.urandom(256)
    with q.session(Alg.AES256_GCM, key) as s, q.scratch(256, 256, 12, 16) as (src, dst, ivb, tagb):
        ct, tag = s.encrypt(data, iv)
        src.write(ct)
        dst.write(b"\xaa" * 256)
        ivb.write(iv)
        tagb.write(bytes(16))
        with pytest.raises(errors.AuthenticationError):
            s.op_at(Op.DECRYPT, src, dst, 256, iv=ivb, tag=tagb)
        assert dst.read() == bytes(256), "unauthenticated plaintext must not be released"


def test_full_bursts_back_to_back_match_openssl(guest: Device) -> None:
    """Many ops submitted at once: the backend takes full bursts with the next burst already in the
    ring, runs each in two halves and, in between, fetches the next burst's IV and AAD lines from
    its descriptors as they stand. Every result still matches in-process AES-GCM, including ops
    whose neighbours carry offsets far outside the arena (INVALID for those ops only)."""
    q = guest.queue(0)
    rng = random.Random(7)
    key = rng.randbytes(32)
    s = q.session(Alg.AES256_GCM, key)
    n, bad = 192, {5, 33, 64, 100, 131, 191}
    sizes = [rng.randint(1, 400) for _ in range(n)]
    bufs = [q.alloc(128 + size + 16) for size in sizes]  # IV at 0, AAD at 16, payload at 128, tag after
    try:
        plain, ivs, aads, items = [], [], [], []
        for i, (b, size) in enumerate(zip(bufs, sizes, strict=True)):
            plain.append(rng.randbytes(size))
            ivs.append(rng.randbytes(12))
            aads.append(rng.randbytes(i % 24))
            b.write(ivs[i] + bytes(4) + aads[i] + bytes(128 - 16 - len(aads[i])) + plain[i] + bytes(16))
            items.append({"opcode": Op.ENCRYPT, "session": s.id, "cookie": i,
                          "src_off": b.offset + 128, "src_len": size, "dst_off": b.offset + 128, "dst_len": size,
                          "aad_off": b.offset + 16, "aad_len": len(aads[i]),
                          "iv_off": 0xFFFFFFF0 if i in bad else b.offset, "tag_off": b.offset + 128 + size})
        assert q.submit(q.descs(items)) == n
        got = sorted(q.drain(n), key=lambda c: c.cookie)
        assert [c.cookie for c in got] == list(range(n))
        for i, c in enumerate(got):
            raw = bufs[i].read()
            if i in bad:
                assert c.status == Status.INVALID, i
                assert raw[128:128 + sizes[i]] == plain[i], "a refused op leaves its buffer alone"
                continue
            assert c.status == Status.OK, (i, Status(c.status))
            assert raw[128:128 + sizes[i] + 16] == AESGCM(key).encrypt(ivs[i], plain[i], aads[i]), i
    finally:
        for b in bufs:
            q.free(b)
