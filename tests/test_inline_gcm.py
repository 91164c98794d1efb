# SPDX-License-Identifier: Apache-2.0
"""The inline plugin's AES-GCM (native/inline/gcm_aesni.c, issue 21's first CPU level: AES-NI and
PCLMULQDQ), as the freestanding object an image will carry, driven by native/tests/inline_gcm_test.c:
NIST's GCM vectors (every tag length, and the decryptions that must fail), random sizes, AAD and tag
lengths byte-identical to OpenSSL (through the cryptography package), tampering refused with
nothing written, bad parameters refused, and the object itself importing nothing."""

from __future__ import annotations

import pathlib
import random
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libvirt_synth.inventory import cpu

from tlsbed import make
from vectors import nist_gcm

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "native/build/inline-gcm-test"
OBJECT = ROOT / "native/build/inline/gcm-aesni.o"

pytestmark = pytest.mark.skipif(not {"aes", "pclmulqdq", "sse4_1"} <= set(cpu.read().flags),
                                reason="this CPU lacks AES-NI, PCLMULQDQ or SSE4.1: the level cannot run here")


def h(b: bytes) -> str:
    return b.hex() or "-"


@pytest.fixture(scope="module")
def program() -> str:
    make("inline-gcm-test")
    return str(PROGRAM)


def run(program: str, lines: list[str]) -> list[str]:
    r = subprocess.run([program], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120,
                       check=True)
    out = r.stdout.splitlines()
    assert len(out) == len(lines), r.stdout[-2000:]
    return out


def test_the_object_imports_nothing_and_has_no_data_of_its_own(program: str) -> None:
    undefined = subprocess.run(["nm", "-u", str(OBJECT)], capture_output=True, text=True, check=True).stdout
    assert undefined.strip() == "", f"the freestanding object needs {undefined.split()}"
    sections = subprocess.run(["size", "-A", str(OBJECT)], capture_output=True, text=True, check=True).stdout
    sizes = {p[0]: int(p[1]) for p in (line.split() for line in sections.splitlines()) if len(p) >= 2 and
             p[1].isdigit()}
    assert sizes.get(".data", 0) == 0 and sizes.get(".bss", 0) == 0, sizes
    relocs = subprocess.run(["readelf", "-rW", str(OBJECT)], capture_output=True, text=True, check=True).stdout
    text_relocs = relocs.split("'.rela.text'")[1].split("Relocation section")[0] if "'.rela.text'" in relocs else ""
    for line in text_relocs.splitlines()[2:]:
        if line.strip():
            assert "R_X86_64_PC32" in line and (".LC" in line or ".rodata" in line), line  # its own constants


@pytest.mark.parametrize("bits", [128, 256])
def test_nist_vectors(program: str, bits: int) -> None:
    enc = nist_gcm(f"nist-gcm-encrypt-{bits}.rsp")
    dec = nist_gcm(f"nist-gcm-decrypt-{bits}.rsp")
    assert len(enc) == 350 and len(dec) == 700
    out = run(program, [f"seal {h(v.key)} {h(v.iv)} {h(v.aad)} {h(v.pt)} {len(v.tag)}" for v in enc])
    assert out == [f"ok {h(v.ct)} {h(v.tag)}" for v in enc]
    out = run(program, [f"open {h(v.key)} {h(v.iv)} {h(v.aad)} {h(v.ct)} {h(v.tag)}" for v in dec])
    assert out == [f"ok {h(v.pt)}" if v.ok else "fail" for v in dec]
    assert sum(not v.ok for v in dec) > 300 and {len(v.tag) for v in dec} == {4, 8, 12, 13, 14, 15, 16}


def test_random_cases_match_openssl_and_tampering_is_refused(program: str) -> None:
    rng = random.Random(21)
    seals, want, opens, verdicts = [], [], [], []
    for _ in range(600):
        key = rng.randbytes(rng.choice((16, 32)))
        iv = rng.randbytes(12)
        aad = rng.randbytes(rng.choice((0, 0, 8, 12, 16, 20, rng.randrange(0, 300))))
        n = rng.choice((0, 1, 15, 16, 17, 63, 64, 65, 1500, rng.randrange(0, 2048), rng.randrange(0, 70000)))
        pt = rng.randbytes(n)
        tag_len = rng.choice((4, 8, 12, 13, 14, 15, 16))
        sealed = AESGCM(key).encrypt(iv, pt, aad or None)
        ct, tag = sealed[:-16], sealed[-16:-16 + tag_len or None]
        seals.append(f"seal {h(key)} {h(iv)} {h(aad)} {h(pt)} {tag_len}")
        want.append(f"ok {h(ct)} {h(tag)}")
        what = rng.choice(("none", "none", "ct", "aad", "tag", "iv"))
        if what == "ct" and ct:
            j = rng.randrange(len(ct))
            ct = ct[:j] + bytes([ct[j] ^ (1 << rng.randrange(8))]) + ct[j + 1:]
        elif what == "aad" and aad:
            j = rng.randrange(len(aad))
            aad = aad[:j] + bytes([aad[j] ^ 0x80]) + aad[j + 1:]
        elif what == "tag":
            j = rng.randrange(len(tag))
            tag = tag[:j] + bytes([tag[j] ^ 1]) + tag[j + 1:]
        elif what == "iv":
            iv = bytes([iv[0] ^ 2]) + iv[1:]
        else:
            what = "none"
        opens.append(f"open {h(key)} {h(iv)} {h(aad)} {h(ct)} {h(tag)}")
        verdicts.append(f"ok {h(pt)}" if what == "none" else "fail")
    assert run(program, seals) == want
    assert run(program, opens) == verdicts
    assert 150 < verdicts.count("fail") < 450  # both verdicts, many times


def test_bad_parameters_are_refused(program: str) -> None:
    key, iv = bytes(range(32)), bytes(12)
    out = run(program, [f"seal {h(key[:24])} {h(iv)} - 00 16",  # AES-192: not an inline algorithm
                        f"seal {h(key)} {h(iv)} - 00 5", f"seal {h(key)} {h(iv)} - 00 17",
                        f"seal {h(key)} {h(iv)} - 00 0", f"open {h(key)} {h(iv)} - 00 {h(bytes(3))}"])
    assert out == ["error -22"] * 5
