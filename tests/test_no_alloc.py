# SPDX-License-Identifier: Apache-2.0
"""The plugin contract: no heap allocation on the per-operation path. A preloaded counter
(tests/alloc_count.c) counts what the worker thread allocates while it serves a few hundred
operations of each algorithm, after one of each has warmed the path up."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent

CHILD = r"""
import ctypes, os, sys
sys.path.insert(0, sys.argv[1])
from libvirt_synth.abi import Alg, CAlg, DevClass
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.guest.compress import Compressor
from libvirt_synth.guest import Device

counter = ctypes.CDLL(None).synth_test_worker_allocs
counter.restype = ctypes.c_ulong
d = sys.argv[2]
work = {}
with Worker() as w:
    crypto = HostDevice.create(os.path.join(d, "c"), DevClass.CRYPTO, size=4 << 20)
    comp = HostDevice.create(os.path.join(d, "z"), DevClass.COMPRESS, size=16 << 20)
    w.add(crypto)
    w.add(comp)
    with Device.open(crypto.path) as g:
        q = g.queue(0)
        for alg, key in ((Alg.AES256_GCM, bytes(32)), (Alg.CHACHA20_POLY1305, bytes(32)),
                         (Alg.AES256_CBC_HMAC_SHA256, bytes(64)), (Alg.HMAC_SHA256, bytes(40))):
            with q.session(alg, key) as s:
                iv = bytes(16 if alg == Alg.AES256_CBC_HMAC_SHA256 else 0 if alg == Alg.HMAC_SHA256 else 12)
                s.encrypt(bytes(1024), iv, b"aad")  # warm up
                before = counter()
                for _ in range(200):
                    ct, tag = s.encrypt(bytes(1024), iv, b"aad")
                    s.decrypt(ct if alg != Alg.HMAC_SHA256 else bytes(1024), tag, iv, b"aad")
                work[alg.label] = counter() - before
    with Device.open(comp.path) as g:
        c = Compressor(g.queue(0))
        data = (b"synthetic devices keep VNFs portable " * 2000)[:64 << 10]
        for alg, levels in ((CAlg.ZLIB, (1, 6, 9)), (CAlg.GZIP, (-1, 3)), (CAlg.ZSTD, (1, 3, 9)),
                            (CAlg.LZ4, (1, 3, 9))):
            for level in levels:
                c.decompress(c.compress(data, alg, level), alg)  # warm up
                before = counter()
                for _ in range(20):
                    c.decompress(c.compress(data, alg, level), alg)
                work[f"{alg.label} level {level}"] = counter() - before
print(repr(work))
"""


@pytest.mark.skipif(not os.path.exists("/usr/bin/cc"), reason="needs a C compiler")
def test_serving_an_operation_allocates_nothing(tmp_path: pathlib.Path, region_dir: pathlib.Path) -> None:
    so = tmp_path / "alloc_count.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(HERE / "alloc_count.c"), "-o", str(so)], check=True)
    r = subprocess.run([sys.executable, "-c", CHILD, str(HERE.parent), str(region_dir)], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, LD_PRELOAD=str(so)))
    assert r.returncode == 0, r.stderr
    allocs = eval(r.stdout)
    assert len(allocs) == 4 + 11 and all(v == 0 for v in allocs.values()), allocs
