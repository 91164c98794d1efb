# SPDX-License-Identifier: Apache-2.0
"""The command line, run as a user would: separate processes, real signals."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from test_guest_api import catalog_backend

from libvirt_synth.guest import Device

from test_hostile import check_still_serves

CLI = [sys.executable, "-m", "libvirt_synth.cli"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=check)


@pytest.mark.parametrize("cmd", [[], ["serve"], ["devices"], ["demo"]])
def test_help(cmd: list[str]) -> None:
    out = run(*cmd, "--help").stdout
    assert "usage: virt-synth" in out
    if cmd == ["serve"]:
        assert "(default: 4194304)" in out and "examples:" in out


def test_serve_devices_and_sigterm(region_dir: pathlib.Path) -> None:
    proc = subprocess.Popen([*CLI, "serve", "--json", "--dir", str(region_dir), "-d", "a", "-d", "b",
                             "--queues", "2", "--size", "1M"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready" and [d["name"] for d in ready["devices"]] == ["a", "b"]
        with Device.open(str(region_dir / "a")) as g:
            check_still_serves(g.queue(1))
            listing = json.loads(run("devices", "--regions", "--json", "--dir", str(region_dir)).stdout)
            by_name = {d["name"]: d for d in listing}
            assert set(by_name) == {"a", "b"}
            assert by_name["a"]["driver_attached"] and not by_name["b"]["driver_attached"]
            assert by_name["a"]["size"] == 1 << 20 and by_name["a"]["queues"] == 2
            assert by_name["a"]["backend"] == catalog_backend() and by_name["a"]["heartbeat_age_s"] < 5
        text = run("devices", "--regions", "--dir", str(region_dir)).stdout
        assert "NAME" in text and "openssl" in text
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        stopped = json.loads(out.strip().splitlines()[-1])
        assert stopped["event"] == "stopped"
        assert stopped["stats"]["devices"][str(region_dir / "a")]["ops"] >= 3
        assert os.listdir(region_dir) == [], "regions are removed on exit"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_errors_are_one_clear_line(region_dir: pathlib.Path) -> None:
    r = run("serve", "--dir", str(region_dir), check=False)
    assert r.returncode == 1 and "give at least one --device" in r.stderr
    r = run("serve", "--dir", str(region_dir), "-d", "x", "--size", "3M", check=False)
    assert r.returncode == 1 and "power of two" in r.stderr and "Traceback" not in r.stderr
    r = run("serve", "--dir", str(region_dir / "nope"), "-d", "x", check=False)
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = run("devices", str(region_dir / "nope"), check=False)
    assert r.returncode == 1 and "no region file" in r.stderr


def test_demo_json() -> None:
    r = run("demo", "--json")
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    algs = [s for s in doc["steps"] if "algorithm" in s]
    assert {s["algorithm"] for s in algs} == {"aes-256-gcm", "aes-128-gcm", "chacha20-poly1305"}
    assert all(s["matches_openssl"] and s["decrypts_back"] for s in algs)
    # Not the demo's verdict: its inputs and the device's output, checked here with cryptography.
    aead = {"aes-256-gcm": AESGCM, "aes-128-gcm": AESGCM, "chacha20-poly1305": ChaCha20Poly1305}
    for s in algs:
        key, iv, aad, pt = (bytes.fromhex(s[k]) for k in ("key", "iv", "aad", "plaintext"))
        assert len(key) == (16 if s["algorithm"] == "aes-128-gcm" else 32) and len(pt) == 64
        ref = aead[s["algorithm"]](key).encrypt(iv, pt, aad)
        assert bytes.fromhex(s["ciphertext"]) + bytes.fromhex(s["tag"]) == ref, s["algorithm"]
