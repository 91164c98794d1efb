# SPDX-License-Identifier: Apache-2.0
"""DPDK's own verifier inside a real VM: the guest image's step ``dpdk`` runs Debian's
``dpdk-test-crypto-perf --ptest verify`` on the crypto_synth PMD, which drives the VM's synthetic
crypto device by its PCI address (``--vdev crypto_synth0,pci=BDF``), for AES-128-GCM, AES-256-GCM
and ChaCha20-Poly1305, encrypting and decrypting the known answers of tests/data/dpdk (written
from tests/data/vectors by test_dpdk_crypto's vector_file). The image also carries one vector
whose tag is wrong, so that the verdicts are seen to fail where they must.

The test plays the hook's part (``domain.create`` from the domain's metadata) as
test_provider_vm does, so that the device outlives the VM and its counters can be read after the
guest powered off. One boot serves every check; it takes about a minute under TCG.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from libvirt_synth.testbed import dpdk as guestdpdk
from libvirt_synth.testbed import image as guestimage
from libvirt_synth.testbed import userland
from libvirt_synth.testbed import vm as guestvm

import libvirtctl
import vmbed
from test_dpdk_crypto import VECTORS, vector_file
from vectors import AeadVector
from vmbed import Booted

why_not = libvirtctl.available()

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAME, UUID = "synth-dpdk", "d4d4c0de-5e1f-4c2b-8a7d-0c1d2e3f4a5b"
REGION = "synth-dpdkd4d4c0de-0"
DEVICES = [f"crypto:name={REGION},queues=2,caps=aes-128-gcm+aes-256-gcm+chacha20-poly1305"]
OPS = 64  # per run (synth.dpdk_ops)
BAD = "aes-256-gcm-wrong-tag"
LIBDIR = "/usr/lib/x86_64-linux-gnu"
MEMORY_MIB = 256  # the testbed domain's default: EAL's --no-huge -m 256 fits in it

# The PMD itself is built by the fixture (make guest-inputs), so only DPDK's absence skips.
skip_no_dpdk = pytest.mark.skipif(shutil.which("dpdk-test-crypto-perf") is None,
                                  reason="dpdk-test-crypto-perf is not installed (Debian: dpdk-dev)")
vm = pytest.mark.skipif(why_not is not None, reason=why_not or "")


def wrong_tag(v: AeadVector) -> AeadVector:
    return AeadVector(v.name, v.key, v.iv, v.aad, v.pt, v.ct, bytes([v.tag[0] ^ 1]) + v.tag[1:], False)


# ---- no VM ----


@pytest.mark.parametrize("name", list(VECTORS))
def test_the_shipped_vectors_are_the_known_answers(name: str, tmp_path: pathlib.Path) -> None:
    """tests/data/dpdk/<name>.data is what vector_file writes for the vector test_dpdk_crypto picks."""
    want = vector_file(tmp_path / "v.data", VECTORS[name][1]()).read_text()
    assert (guestimage.DPDK_VECTORS / f"{name}.data").read_text() == want, \
        f"regenerate tests/data/dpdk/{name}.data with test_dpdk_crypto.vector_file"


@skip_no_dpdk
@pytest.mark.slow  # the first build downloads the kernel package
def test_the_image_carries_crypto_perf_its_libraries_the_pmd_and_vectors_but_no_driver_directory() -> None:
    subprocess.run(["make", "-s", "-C", str(ROOT), "guest-inputs"], check=True)  # a fresh clone has none yet
    built = guestimage.build()
    man = built.manifest["userland_files"]
    files = man["files"]
    assert built.manifest["userland"]["dpdk"] is True
    assert files[guestdpdk.PERF]["from"].startswith("dpdk-dev=")
    assert files[guestdpdk.PMD]["sha256"] == guestimage.sha256(guestimage.DPDK_PMD.read_bytes())
    for name in VECTORS:
        assert f"{guestdpdk.VECTORS}/{name}.data" in files
    # Every library the program, the mempool driver and the PMD load, at a path the loader
    # searches without DPDK's driver directory, with the host's bytes.
    libs = {pathlib.PurePosixPath(p).name for p in files}
    for elf in (guestdpdk.PERF, guestdpdk.mempool_driver(), str(guestimage.DPDK_PMD)):
        for lib in userland.needed_libraries(elf):
            assert pathlib.PurePosixPath(lib).name in libs, (elf, lib)
    assert not [p for p in files if guestdpdk.PMDS_MARK in p]
    def one(prefix: str) -> pathlib.PurePosixPath:
        found = [pathlib.PurePosixPath(p) for p in files if pathlib.PurePosixPath(p).name.startswith(prefix)]
        assert len(found) == 1, (prefix, found)
        return found[0]

    eal = one("librte_eal.so.")
    assert str(eal.parent) == LIBDIR
    assert files[str(eal)]["sha256"] == guestimage.sha256(pathlib.Path(eal).read_bytes())
    # ldd finds these two in the driver directory; the image has them at their packages' links.
    for lib, pkg in (("librte_bus_vdev.so.", "librte-bus-vdev"), ("librte_mempool_ring.so.", "librte-mempool-ring")):
        assert str(one(lib).parent) == LIBDIR and files[str(one(lib))]["from"].startswith(pkg)
    # Lean: DPDK's own packages only, not every driver.
    rte = [p for p in files if pathlib.PurePosixPath(p).name.startswith("librte_")]
    assert len(rte) < 20, rte


# ---- the VM ----


@pytest.fixture(scope="module")
def dpdk_vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    subprocess.run(["make", "-s", "-C", str(ROOT), "guest-inputs"], check=True)  # the PMD among them
    bad = vector_file(tmp_path_factory.mktemp("dpdk") / f"{BAD}.data", wrong_tag(VECTORS["aes-256-gcm"][1]()))
    built = guestimage.build({guestimage.VECTOR_INPUT + BAD: bad})
    with vmbed.boot(built, name=NAME, uuid=UUID, prefix="synth-dpdk-",
                    cmdline=f"synth.cmd=probe,dpdk synth.dpdk_ops={OPS}", devices=DEVICES, regions=[REGION],
                    timeout=400, memory_mib=MEMORY_MIB, cpu_model=guestvm.CPU_DPDK) as booted:
        yield booted


def runs(t: Booted) -> dict[str, dict[str, Any]]:
    assert t.run.done, t.console[-3000:]
    return {r["name"]: r for r in t.run.step("dpdk").of("dpdk")}


@skip_no_dpdk
@vm
@pytest.mark.slow
def test_crypto_perf_verifies_every_known_answer_on_the_pci_device(dpdk_vm: Booted) -> None:
    st = dpdk_vm.run.step("dpdk")
    got = runs(dpdk_vm)
    want = {f"{n}-{op}" for n in VECTORS for op in ("encrypt", "decrypt")}
    assert want <= set(got), "\n".join(st.text)[-3000:]
    pci = [d["dev"] for d in dpdk_vm.run.step("probe").of("device") if d["class"] == "crypto"]
    assert len(pci) == 1 and pci[0].startswith("0000:"), pci
    for name in want:
        r = got[name]
        assert (r["rc"], r["enqueued"], r["dequeued"], r["failed_ops"]) == (0, OPS, OPS, 0), (r, st.text[-30:])
        assert r["result"] == "pass" and r["device"] == pci[0], r
        assert r["pmd"].startswith(f"crypto_synth: crypto_synth0: {pci[0]},"), r  # opened by its PCI address
        assert (r["key_sz"], r["iv_sz"], r["digest_sz"]) == (16 if "128" in name else 32, 12, 16), r


@skip_no_dpdk
@vm
@pytest.mark.slow
def test_a_wrong_tag_fails_every_op_and_the_step(dpdk_vm: Booted) -> None:
    """The verdicts can fail: the vector whose tag is off by one bit fails every op both ways
    (decrypting: the device's AUTH_FAILED; encrypting: the digest differs), and the step says so."""
    got = runs(dpdk_vm)
    for op in ("encrypt", "decrypt"):
        r = got[f"{BAD}-{op}"]
        assert (r["enqueued"], r["dequeued"], r["failed_ops"], r["result"]) == (OPS, OPS, OPS, "fail"), r
    st = dpdk_vm.run.step("dpdk")
    summary = st.of("summary")
    assert summary and (summary[0]["runs"], summary[0]["failed"], summary[0]["result"]) == (
        2 * (len(VECTORS) + 1), 2, "fail"), summary
    assert st.rc == 1


@skip_no_dpdk
@vm
@pytest.mark.slow
def test_the_host_device_counted_every_op(dpdk_vm: Booted) -> None:
    """virt-synthd's counters for the device: each run's ops on the queue pair's queue (0) and its
    session's create and destroy on the control queue (1); the wrong tag's decrypts as auth_failed;
    the data in and out of every op it served."""
    got = runs(dpdk_vm)
    n = len(got)
    host = dpdk_vm.stats["devices"][REGION]
    assert host["ops"] == n * (OPS + 2) and host["ring_errors"] == 0, json.dumps(host)
    q = {x["queue"]: x for x in host["queues"]}
    assert (q[0]["ops"], q[0]["by_status"]) == (n * OPS, {"ok": (n - 1) * OPS, "auth_failed": OPS}), json.dumps(q)
    assert (q[1]["ops"], q[1]["by_status"]) == (2 * n, {"ok": 2 * n}), json.dumps(q)
    # Bytes of the ops it served: all but the decrypts whose tag failed.
    served = sum(r["buffer_sz"] * r["total_ops"] for name, r in got.items() if name != f"{BAD}-decrypt")
    assert (host["bytes_in"], host["bytes_out"]) == (served, served), json.dumps(host)
