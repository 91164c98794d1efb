# SPDX-License-Identifier: Apache-2.0
"""The examples in examples/ and the README compile, link statically against libsynth.a, and
produce results that match in-process OpenSSL."""

from __future__ import annotations

import pathlib
import subprocess

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libvirt_synth.host.device import HostDevice

ROOT = pathlib.Path(__file__).resolve().parent.parent


def build_example(tmp_path: pathlib.Path, name: str) -> pathlib.Path:
    subprocess.run(["make", "-s", "-C", str(ROOT), "libsynth"], check=True)
    exe = tmp_path / name
    subprocess.run(["cc", "-O2", "-static", f"-I{ROOT}/native/include", str(ROOT / "examples" / f"{name}.c"),
                    str(ROOT / "native/build/libsynth.a"), "-o", str(exe)], check=True)
    return exe


def test_guest_crypto_example_static_binary(tmp_path: pathlib.Path, served: HostDevice) -> None:
    exe = build_example(tmp_path, "guest-crypto")
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr, "the guest binary needs no shared libraries"
    out = subprocess.run([str(exe), served.path], capture_output=True, text=True, timeout=30, check=True).stdout
    fields = dict(line.split("=", 1) for line in out.split())
    payload = b"synthetic devices keep VNFs portable"
    want = AESGCM(bytes(range(32))).encrypt(b"\x42" * 12, payload, bytes.fromhex("0000100100000007"))
    assert bytes.fromhex(fields["ciphertext"]) + bytes.fromhex(fields["tag"]) == want
    assert served.stats().sessions == 0


def test_guest_crypto_example_reports_errors(tmp_path: pathlib.Path) -> None:
    exe = build_example(tmp_path, "guest-crypto")
    r = subprocess.run([str(exe), str(tmp_path / "missing")], capture_output=True, text=True)
    assert r.returncode == 1 and "No such file" in r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr
