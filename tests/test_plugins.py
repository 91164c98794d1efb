# SPDX-License-Identifier: Apache-2.0
"""Every crypto plugin gives the same bytes: NIST vectors and random data through devices served
by each plugin, compared with each other and with in-process OpenSSL."""

from __future__ import annotations

import os
import pathlib
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libvirt_synth import errors
from libvirt_synth.abi import Alg, DevClass, Status
from libvirt_synth.guest import Device
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.host.plugins import catalog, find_plugin

from hostcpu import IPSECMB_ALGS
from vectors import nist_gcm

GCM_PLUGINS = ["openssl", "ipsec-mb"]


@pytest.fixture(params=GCM_PLUGINS)
def plugin_dev(request: pytest.FixtureRequest, region_dir: pathlib.Path, worker: Worker):
    dev = HostDevice.create(str(region_dir / request.param), DevClass.CRYPTO, plugin=request.param)
    worker.add(dev)
    with Device.open(dev.path) as g:
        yield request.param, g
    dev.destroy()


def test_catalog_lists_builtins_with_their_probe() -> None:
    plugins = {p.name: p for p in catalog()}
    assert set(GCM_PLUGINS) <= set(plugins)
    assert plugins["openssl"].available and plugins["openssl"].detail.startswith("OpenSSL 3")
    mb = plugins["ipsec-mb"]
    assert mb.available and "intel-ipsec-mb" in mb.detail and mb.algorithms == IPSECMB_ALGS
    with pytest.raises(errors.NotFoundError, match="available: openssl, ipsec-mb"):
        find_plugin("nonesuch", DevClass.CRYPTO)


@pytest.mark.parametrize("filename", ["nist-gcm-encrypt-128.rsp", "nist-gcm-encrypt-256.rsp",
                                      "nist-gcm-decrypt-128.rsp", "nist-gcm-decrypt-256.rsp"])
def test_nist_gcm_through_each_plugin(plugin_dev, filename: str) -> None:
    name, g = plugin_dev
    assert g.info().backend == name
    q = g.queue(0)
    for v in nist_gcm(filename):
        alg = Alg.AES128_GCM if len(v.key) == 16 else Alg.AES256_GCM
        with q.session(alg, v.key, tag_len=len(v.tag)) as s:
            if "encrypt" in filename:
                assert s.encrypt(v.pt, v.iv, v.aad) == (v.ct, v.tag), v.name
            elif v.ok:
                assert s.decrypt(v.ct, v.tag, v.iv, v.aad) == v.pt, v.name
            else:
                with pytest.raises(errors.AuthenticationError):
                    s.decrypt(v.ct, v.tag, v.iv, v.aad)


def test_random_gcm_matches_openssl(plugin_dev) -> None:
    _, g = plugin_dev
    rng = random.Random(4242)
    q = g.queue(0)
    for _ in range(200):
        key = rng.randbytes(rng.choice([16, 32]))
        alg = Alg.AES128_GCM if len(key) == 16 else Alg.AES256_GCM
        data = rng.randbytes(rng.choice([0, 1, 15, 16, 63, 64, 65, 1500, 9000]))
        aad, iv = rng.randbytes(rng.choice([0, 8, 12, 20])), rng.randbytes(12)
        with q.session(alg, key) as s:
            ct, tag = s.encrypt(data, iv, aad)
            assert ct + tag == AESGCM(key).encrypt(iv, data, aad)
            assert s.decrypt(ct, tag, iv, aad) == data
            with pytest.raises(errors.AuthenticationError):
                s.decrypt(ct, bytes(16), iv, aad)


def test_ipsec_mb_refuses_what_it_does_not_serve(region_dir: pathlib.Path, worker: Worker) -> None:
    dev = HostDevice.create(str(region_dir / "mb"), DevClass.CRYPTO, plugin="ipsec-mb")
    worker.add(dev)
    try:
        with Device.open(dev.path) as g:
            assert g.info().algorithms == IPSECMB_ALGS
            with pytest.raises(errors.OpError) as e:
                g.queue(0).session(Alg.HMAC_SHA256, os.urandom(40), tag_len=32)
            assert e.value.status == Status.NOT_SUPPORTED
    finally:
        dev.destroy()
