# SPDX-License-Identifier: Apache-2.0
"""The AF_ALG plugin: where the kernel has AF_ALG it is in the catalog and its results equal
OpenSSL's (the `cryptography` package); where it has not (or with AF_ALG refused to the process,
which every host can do) it says why and the catalog falls back to another plugin. Its known-answer
test program builds statically from the plugin's own source (and runs inside the end-to-end test
VM, whose kernel has algif_aead)."""

from __future__ import annotations

import json
import os
import pathlib
import random
import socket
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from libvirt_synth import errors
from libvirt_synth.abi import Alg, DevClass
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.host.plugins import catalog, choices

ROOT = pathlib.Path(__file__).resolve().parent.parent
AF_ALG = 38


def kernel_has_af_alg() -> bool:
    try:
        socket.socket(AF_ALG, socket.SOCK_SEQPACKET).close()
        return True
    except OSError:
        return False


needs_af_alg = pytest.mark.skipif(not kernel_has_af_alg(),
                                  reason="this kernel has no AF_ALG (socket(AF_ALG) fails): the plugin cannot run")

# Preloaded into a child process: socket(AF_ALG) fails there as on a kernel without AF_ALG, and
# says so on stderr (so the test knows the plugin's probe really went through it).
NO_AF_ALG_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
    static int (*real)(int, int, int);
    if (domain == 38) {
        fputs("no-af-alg: socket(AF_ALG) refused\n", stderr);
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "socket");
    return real(domain, type, protocol);
}
"""

CATALOG_AND_CHOICES = """
import json
import os
from libvirt_synth.host.plugins import catalog, choices
print(json.dumps({"catalog": [p.as_dict() for p in catalog()], "choices": choices()}))
"""


def test_catalog_reports_af_alg_and_falls_back(tmp_path: pathlib.Path) -> None:
    """On every host: with AF_ALG refused to the process, af-alg is unavailable with the kernel's
    reason, and each algorithm it would serve goes to an available plugin that serves it."""
    src, shim = tmp_path / "no_af_alg.c", tmp_path / "no_af_alg.so"
    src.write_text(NO_AF_ALG_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(src), "-o", str(shim), "-ldl"], check=True)
    r = subprocess.run([sys.executable, "-c", CATALOG_AND_CHOICES], capture_output=True, text=True, timeout=60,
                       env=os.environ | {"LD_PRELOAD": str(shim)})
    assert r.returncode == 0, r.stderr
    assert "no-af-alg: socket(AF_ALG) refused" in r.stderr, "the plugin's probe went through the shim"
    doc = json.loads(r.stdout)
    plugins = {p["name"]: p for p in doc["catalog"]}
    info = plugins["af-alg"]
    assert not info["available"] and info["algorithms"] == []
    assert info["detail"] == "the kernel has no AF_ALG: socket(AF_ALG) failed: Address family not supported by protocol"
    for alg in ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"):
        chosen = doc["choices"][alg]
        assert chosen["plugin"] != "af-alg" and "af-alg" not in chosen["candidates"]
        assert plugins[chosen["plugin"]]["available"] and alg in plugins[chosen["plugin"]]["algorithms"]


@needs_af_alg
def test_af_alg_is_in_the_catalog_where_the_kernel_has_it() -> None:
    info = {p.name: p for p in catalog()}["af-alg"]
    assert info.available and info.detail == "kernel crypto API (AF_ALG aead)", info.detail
    assert info.algorithms and set(info.algorithms) <= {"aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"}
    picks = choices()
    assert all("af-alg" in picks[alg]["candidates"] for alg in info.algorithms)


REFERENCES: dict[Alg, tuple[int, type[AESGCM] | type[ChaCha20Poly1305]]] = {
    Alg.AES128_GCM: (16, AESGCM), Alg.AES256_GCM: (32, AESGCM), Alg.CHACHA20_POLY1305: (32, ChaCha20Poly1305)}


@needs_af_alg
def test_af_alg_results_equal_openssl(region_dir: pathlib.Path, worker: Worker) -> None:
    """Every algorithm the plugin serves, through a device pinned to it: random sizes, AAD and keys
    against `cryptography`; a wrong tag is refused."""
    served = {p.name: p for p in catalog()}["af-alg"].algorithms
    dev = HostDevice.create(str(region_dir / "afalg"), DevClass.CRYPTO, plugin="af-alg")
    worker.add(dev)
    rng = random.Random(38)
    try:
        with Device.open(dev.path) as g:
            assert g.info().backend == "af-alg"
            q = g.queue(0)
            for alg, (key_len, ref) in REFERENCES.items():
                if alg.label not in served:
                    continue
                for _ in range(50):
                    key, iv = rng.randbytes(key_len), rng.randbytes(12)
                    data = rng.randbytes(rng.choice([0, 1, 15, 16, 64, 1500, 9000]))
                    aad = rng.randbytes(rng.choice([0, 8, 12, 20]))
                    with q.session(alg, key) as s:
                        ct, tag = s.encrypt(data, iv, aad)
                        assert ct + tag == ref(key).encrypt(iv, data, aad), alg.label
                        assert s.decrypt(ct, tag, iv, aad) == data
                        with pytest.raises(errors.AuthenticationError):
                            s.decrypt(ct, bytes(len(tag)), iv, aad)
    finally:
        dev.destroy()


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
