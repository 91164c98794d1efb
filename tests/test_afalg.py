# SPDX-License-Identifier: Apache-2.0
"""The AF_ALG plugin: on a kernel without AF_ALG (this project's test hosts) it says so and the
catalog falls back; its known-answer test program builds statically from the plugin's own
source (it runs for real inside the end-to-end test VM, whose kernel has algif_aead)."""

from __future__ import annotations

import pathlib
import socket
import subprocess

import pytest

from libvirt_synth.host.plugins import catalog, choices

ROOT = pathlib.Path(__file__).resolve().parent.parent


def kernel_has_af_alg() -> bool:
    try:
        socket.socket(38, socket.SOCK_SEQPACKET).close()  # AF_ALG
        return True
    except OSError:
        return False


def test_catalog_reports_af_alg_and_falls_back() -> None:
    info = {p.name: p for p in catalog()}["af-alg"]
    if kernel_has_af_alg():
        pytest.skip("this kernel has AF_ALG")
    assert not info.available and "no AF_ALG" in info.detail and "Address family not supported" in info.detail
    assert choices()["aes-256-gcm"]["plugin"] != "af-alg"


def test_known_answer_program_builds_static_and_runs() -> None:
    subprocess.run(["make", "-s", "-C", str(ROOT), "afalg-kat"], check=True)
    exe = ROOT / "native" / "build" / "afalg-kat"
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    if kernel_has_af_alg():
        assert r.returncode == 0, r.stdout
        assert "PASS" in r.stdout and "FAIL" not in r.stdout
    else:
        assert r.returncode == 77 and "unavailable: the kernel has no AF_ALG" in r.stdout
