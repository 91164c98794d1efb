# SPDX-License-Identifier: Apache-2.0
"""Official test vectors through a served device: NIST CAVP AES-GCM, RFC 8439 ChaCha20-Poly1305,
RFC 4231 HMAC-SHA-256. Kept under tests/data/vectors/."""

from __future__ import annotations

import pytest

from libvirt_synth import errors
from libvirt_synth.abi import Alg
from libvirt_synth.guest import Device

from vectors import AeadVector, nist_gcm, rfc4231, rfc8439


def _gcm_alg(key: bytes) -> Alg:
    return Alg.AES128_GCM if len(key) == 16 else Alg.AES256_GCM


def _check_encrypt(guest: Device, alg: Alg, v: AeadVector) -> None:
    with guest.queue(0).session(alg, v.key, tag_len=len(v.tag)) as s:
        ct, tag = s.encrypt(v.pt, v.iv, v.aad)
    assert (ct, tag) == (v.ct, v.tag), v.name


def _check_decrypt(guest: Device, alg: Alg, v: AeadVector) -> None:
    with guest.queue(1).session(alg, v.key, tag_len=len(v.tag)) as s:
        if v.ok:
            assert s.decrypt(v.ct, v.tag, v.iv, v.aad) == v.pt, v.name
        else:
            with pytest.raises(errors.AuthenticationError):
                s.decrypt(v.ct, v.tag, v.iv, v.aad)


@pytest.mark.parametrize("filename", ["nist-gcm-encrypt-128.rsp", "nist-gcm-encrypt-256.rsp"])
def test_nist_gcm_encrypt(guest: Device, filename: str) -> None:
    vecs = nist_gcm(filename)
    assert len(vecs) >= 300
    for v in vecs:
        _check_encrypt(guest, _gcm_alg(v.key), v)
        _check_decrypt(guest, _gcm_alg(v.key), v)


@pytest.mark.parametrize("filename", ["nist-gcm-decrypt-128.rsp", "nist-gcm-decrypt-256.rsp"])
def test_nist_gcm_decrypt(guest: Device, filename: str) -> None:
    vecs = nist_gcm(filename)
    assert sum(not v.ok for v in vecs) >= 100 and sum(v.ok for v in vecs) >= 100
    for v in vecs:
        _check_decrypt(guest, _gcm_alg(v.key), v)


def test_rfc8439_chacha20_poly1305(guest: Device) -> None:
    vecs = rfc8439()
    assert [v.ok for v in vecs] == [True, True, False]
    for v in vecs:
        if v.ok:
            _check_encrypt(guest, Alg.CHACHA20_POLY1305, v)
        _check_decrypt(guest, Alg.CHACHA20_POLY1305, v)


def test_rfc4231_hmac_sha256(guest: Device) -> None:
    cases = rfc4231()
    assert len(cases) == 7
    q = guest.queue(0)
    for name, key, data, tag in cases:
        with q.session(Alg.HMAC_SHA256, key, tag_len=len(tag)) as s:
            _, got = s.encrypt(data)
            assert got == tag, f"RFC 4231 case {name}"
            s.decrypt(data, tag)  # verifies
            with pytest.raises(errors.AuthenticationError):
                s.decrypt(data, bytes([tag[0] ^ 0x80]) + tag[1:])
