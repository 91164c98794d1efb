# SPDX-License-Identifier: Apache-2.0
"""External plugins: built here as shared objects, loaded by a real daemon from its plugin
directory; good ones serve devices, bad ones are refused with a reason and harm nothing."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from libvirt_synth.abi import Alg
from libvirt_synth.guest import Device

from daemonctl import Daemon
from vectors import nist_gcm

ROOT = pathlib.Path(__file__).resolve().parent.parent
UUID = "7c9e1a3b-5d2f-4e6a-8b0c-1d3f5a7b9c2e"


def build(src: str, out: pathlib.Path, *defines: str) -> None:
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", f"-I{ROOT}/native/include", *defines,
                    str(ROOT / "tests" / "plugins" / src), "-lcrypto", "-o", str(out)], check=True)


@pytest.fixture
def plugin_dir() -> Iterator[pathlib.Path]:
    d = pathlib.Path(tempfile.mkdtemp(prefix="synth-plugins-"))
    build("ext_gcm.c", d / "ext-gcm.so", "-DPLUGIN_ABI=SYNTH_PLUGIN_ABI_VERSION", '-DPLUGIN_NAME="ext-gcm"')
    build("ext_gcm.c", d / "bad-abi.so", "-DPLUGIN_ABI=99", '-DPLUGIN_NAME="bad-abi"')
    build("ext_gcm.c", d / "dup-name.so", "-DPLUGIN_ABI=SYNTH_PLUGIN_ABI_VERSION", '-DPLUGIN_NAME="openssl"')
    (d / "garbage.so").write_bytes(b"not an ELF file")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_daemon_loads_good_plugins_and_refuses_bad_ones(plugin_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    base = pathlib.Path(tempfile.mkdtemp(prefix="synth-ext-", dir="/dev/shm"))
    d = Daemon(base, "--plugin-dir", str(plugin_dir)).start()
    try:
        doc = d.call("plugins")
        report = {pathlib.Path(r["path"]).name: r for r in doc["loaded"]}
        assert report["ext-gcm.so"]["ok"]
        assert not report["bad-abi.so"]["ok"] and "ABI version" in report["bad-abi.so"]["message"]
        assert not report["dup-name.so"]["ok"] and "already loaded" in report["dup-name.so"]["message"]
        assert not report["garbage.so"]["ok"] and "dlopen" in report["garbage.so"]["message"]
        assert doc["choices"]["aes-128-gcm"]["plugin"] == "ext-gcm"
        # what ext-gcm does not serve stays with the built-ins, the highest priority first
        assert doc["choices"]["chacha20-poly1305"]["plugin"] == "ipsec-mb"
        r = d.call("domain.create", uuid=UUID, name="ext", devices=[{"name": "ext-crypto", "class": "crypto"}])
        assert r["devices"][0]["plugin"].startswith("ext-gcm")
        with Device.open(str(d.regions / "ext-crypto")) as g:
            q = g.queue(0)
            for v in nist_gcm("nist-gcm-encrypt-128.rsp")[:100]:
                with q.session(Alg.AES128_GCM, v.key, tag_len=len(v.tag)) as s:
                    assert s.encrypt(v.pt, v.iv, v.aad) == (v.ct, v.tag)
            key, iv, aad, data = bytes(range(32)), bytes(range(100, 112)), b"aad", b"still served by a built-in " * 9
            with q.session(Alg.CHACHA20_POLY1305, key) as s:  # still served, by a built-in
                ct, tag = s.encrypt(data, iv, aad)
            assert ct + tag == ChaCha20Poly1305(key).encrypt(iv, data, aad)
        d.call("domain.destroy", uuid=UUID)
    finally:
        d.stop()
        shutil.rmtree(base, ignore_errors=True)
