# SPDX-License-Identifier: Apache-2.0
"""The crypto_synth DPDK PMD (native/dpdk/, docs/dpdk.md) under DPDK's own dpdk-test-crypto-perf:
its verify test runs known-answer vectors from tests/data/vectors through the PMD and a crypto device
served by a real worker, and checks every output and digest."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import pathlib
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from libvirt_synth.abi import DevClass
from libvirt_synth.host.device import HostDevice, Worker

import dpdkbed
from vectors import AeadVector, nist_gcm, rfc8439

CHECK = dpdkbed.BUILD / "check-crypto-synth"
PERF = shutil.which("dpdk-test-crypto-perf")
pytestmark = dpdkbed.needs(PERF, "dpdk-test-crypto-perf")
pmd = dpdkbed.pmd_fixture("librte_crypto_synth", CHECK)


def serve(region_dir: pathlib.Path, worker: Worker, **kw: object) -> contextlib.AbstractContextManager[HostDevice]:
    return dpdkbed.served(region_dir, worker, "crypto0", DevClass.CRYPTO, **kw)


@pytest.fixture
def device(region_dir: pathlib.Path, worker: Worker) -> Iterator[HostDevice]:
    """Two queues: one for the PMD's queue pair, one for its sessions."""
    with serve(region_dir, worker, size=4 << 20, queues=2) as dev:
        yield dev


def pick(vecs: list[AeadVector]) -> AeadVector:
    """The longest passing vector with a 96-bit IV, a 16-byte tag and some AAD: one op exercises
    every field the PMD copies."""
    ok = [v for v in vecs if v.ok and len(v.iv) == 12 and len(v.tag) == 16 and v.pt and v.aad]
    return max(ok, key=lambda v: (len(v.pt), len(v.aad), v.name))


VECTORS: dict[str, tuple[str, Callable[[], AeadVector]]] = {
    "aes-128-gcm": ("aes-gcm", lambda: pick(nist_gcm("nist-gcm-encrypt-128.rsp"))),
    "aes-256-gcm": ("aes-gcm", lambda: pick(nist_gcm("nist-gcm-encrypt-256.rsp"))),
    "chacha20-poly1305": ("chacha20-poly1305", lambda: pick(rfc8439())),
}


CASE = "vector"  # the section that holds the digest (crypto-perf reads digests only from a named case)


def hexlist(b: bytes) -> str:
    return ", ".join(f"0x{x:02x}" for x in b)


def vector_file(path: pathlib.Path, v: AeadVector) -> pathlib.Path:
    """A dpdk-test-crypto-perf test-vector file (the format of app/test-crypto-perf/data/*.data)."""
    fields = {"plaintext": v.pt, "ciphertext": v.ct, "aead_key": v.key, "aead_iv": v.iv, "aad": v.aad}
    path.write_text(f"# {v.name}\n" + "".join(f"{k} =\n{hexlist(b)}\n" for k, b in fields.items())
                    + f"[{CASE}]\ndigest =\n{hexlist(v.tag)}\n")
    return path


def perf(pmd: pathlib.Path, dev: HostDevice, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    # crypto-perf needs a main lcore and a worker lcore.
    cmd = [str(PERF), *dpdkbed.device_eal(pmd, "crypto_synth", dev, "0,1"), "--", "--devtype", "crypto_synth", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def verify_args(algo: str, v: AeadVector, vf: pathlib.Path, op: str, total: int, burst: int) -> list[str]:
    return ["--ptest", "verify", "--optype", "aead", "--aead-algo", algo, "--aead-op", op,
            "--aead-key-sz", str(len(v.key)), "--aead-iv-sz", "12", "--aead-aad-sz", str(len(v.aad)),
            "--digest-sz", "16", "--buffer-sz", str(len(v.pt)), "--total-ops", str(total),
            "--burst-sz", str(burst), "--test-file", str(vf), "--test-name", CASE]


def verified(r: subprocess.CompletedProcess[str]) -> tuple[int, int, int]:
    """(enqueued, dequeued, failed) from the verify test's result row: failed counts the ops whose
    status was not SUCCESS or whose output or digest differed from the vector's."""
    out = r.stdout.splitlines()
    for i, line in enumerate(out):
        if "Failed Ops" in line:
            row = next(x for x in out[i + 1:] if x.strip()).split()
            enq, deq, failed = int(row[3]), int(row[4]), int(row[7])
            return enq, deq, failed
    raise AssertionError(f"no verify result in crypto-perf's output:\n{r.stdout}\n{r.stderr}")


@pytest.mark.parametrize("name", list(VECTORS))
@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
def test_crypto_perf_verifies_known_answers(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path,
                                            name: str, op: str) -> None:
    algo, get = VECTORS[name]
    v = get()
    total = 256
    r = perf(pmd, device, *verify_args(algo, v, vector_file(tmp_path / "v.data", v), op, total, 32))
    assert r.returncode == 0, r.stdout + r.stderr
    assert verified(r) == (total, total, 0)
    # Every op went through the device: the data ops on the queue pair's queue, the session's
    # create and destroy on the control queue.
    q = device.stats().queues
    assert (q[0]["ops"], q[0]["by_status"]) == (total, {"ok": total})
    assert q[1]["ops"] == 2


def cbc_hmac(key: bytes, hkey: bytes, iv: bytes, plain: bytes, aad: bytes = b"") -> tuple[bytes, bytes]:
    """AES-256-CBC, then HMAC-SHA-256 over aad || ciphertext, computed in process: what a DPDK
    cipher-then-auth chain gives when its auth range is aad followed by the cipher range."""
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(plain) + enc.finalize()
    return ct, hmac.new(hkey, aad + ct, hashlib.sha256).digest()


def chain_vector_file(path: pathlib.Path, size: int, digest_len: int, hkey_len: int, seed: int,
                      spoil: bool = False) -> pathlib.Path:
    """A crypto-perf vector for the chain: random plaintext, keys and IV (fixed seed), the
    ciphertext and digest from `cryptography`, an implementation independent of the device's.
    spoil: the digest's last bit flipped."""
    rng = random.Random(seed)
    key, hkey, iv, pt = rng.randbytes(32), rng.randbytes(hkey_len), rng.randbytes(16), rng.randbytes(size)
    ct, mac = cbc_hmac(key, hkey, iv, pt)
    if spoil:
        mac = mac[:digest_len - 1] + bytes([mac[digest_len - 1] ^ 1])
    fields = {"plaintext": pt, "ciphertext": ct, "cipher_key": key, "cipher_iv": iv, "auth_key": hkey}
    path.write_text("# AES-256-CBC + HMAC-SHA-256\n" + "".join(f"{k} =\n{hexlist(b)}\n" for k, b in fields.items())
                    + f"[{CASE}]\ndigest =\n{hexlist(mac[:digest_len])}\n")
    return path


def chain_perf(pmd: pathlib.Path, dev: HostDevice, vf: pathlib.Path, op: str, size: int, digest_len: int,
               hkey_len: int, total: int) -> subprocess.CompletedProcess[str]:
    enc = op == "encrypt"
    return perf(pmd, dev, "--ptest", "verify", "--optype", "cipher-then-auth" if enc else "auth-then-cipher",
                "--cipher-algo", "aes-cbc", "--cipher-op", op, "--cipher-key-sz", "32", "--cipher-iv-sz", "16",
                "--auth-algo", "sha2-256-hmac", "--auth-op", "generate" if enc else "verify",
                "--auth-key-sz", str(hkey_len), "--digest-sz", str(digest_len), "--buffer-sz", str(size),
                "--total-ops", str(total), "--burst-sz", "32", "--test-file", str(vf), "--test-name", CASE)


@pytest.mark.parametrize("size, digest_len, hkey_len", [(64, 16, 32), (1504, 32, 64), (16, 12, 20)])
@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
def test_crypto_perf_verifies_the_cbc_hmac_chain(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path,
                                                 size: int, digest_len: int, hkey_len: int, op: str) -> None:
    """AES-256-CBC + SHA256-HMAC as DPDK chains it: cipher-then-auth to encrypt (the digest over the
    ciphertext), auth-then-cipher to decrypt (verify, then decrypt)."""
    vf = chain_vector_file(tmp_path / "v.data", size, digest_len, hkey_len, seed=size)
    r = chain_perf(pmd, device, vf, op, size, digest_len, hkey_len, 256)
    assert r.returncode == 0, r.stdout + r.stderr
    assert verified(r) == (256, 256, 0)
    q = device.stats().queues
    assert (q[0]["ops"], q[0]["by_status"]) == (256, {"ok": 256})


@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
def test_a_wrong_chain_digest_fails_every_op(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path,
                                             op: str) -> None:
    """The check above can fail: with one bit of the vector's digest off, encrypt's digests differ
    from it and decrypt's verify fails on the device."""
    vf = chain_vector_file(tmp_path / "v.data", 256, 16, 32, seed=7, spoil=True)
    r = chain_perf(pmd, device, vf, op, 256, 16, 32, 64)
    assert verified(r) == (64, 64, 64), r.stdout
    want = {"ok": 64} if op == "encrypt" else {"auth_failed": 64}
    assert device.stats().queues[0]["by_status"] == want


def test_the_chain_authenticates_the_header_before_the_cipher_range(pmd: pathlib.Path, device: HostDevice) -> None:
    """An ESP-like layout, which crypto-perf does not make: the auth range is a 24-byte header
    followed by the cipher range. The device's tag is HMAC(header || ciphertext), the header is
    left as it was, verify + decrypt gives the packet back, a changed header fails, and ranges the
    device cannot express are refused per op (INVALID_ARGS), not by crashing."""
    r = subprocess.run(check_cmd(pmd, device, "chain"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = dict(line.split() for line in r.stdout.splitlines())
    key = bytes(range(0x40, 0x80))[:32]  # check-crypto-synth's key: 0x40, 0x41, ...; the HMAC key is the same
    packet = bytes(range(24 + 64))
    ct, mac = cbc_hmac(key, key, b"\xa5" * 16, packet[24:], packet[:24])
    assert got["encrypt"] == "success"
    assert bytes.fromhex(got["packet"]) == packet[:24] + ct
    assert bytes.fromhex(got["digest"]) == mac[:16]
    assert (got["decrypt"], bytes.fromhex(got["plain"])) == ("success", packet)
    assert got["header-changed"] == "auth_failed"
    for bad in ("cipher-not-blocks", "auth-ends-early", "auth-starts-late", "past-the-mbuf"):
        assert got[bad] == "invalid_args", bad


@pytest.mark.parametrize("extra", [["--out-of-place", "--segment-sz", "2048"], ["--segment-sz", "17"]],
                         ids=["out-of-place", "chained-mbufs"])
@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
def test_out_of_place_and_chained_mbufs(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path,
                                        extra: list[str], op: str) -> None:
    """Output into another mbuf (crypto-perf does that with unsegmented buffers only), and data
    spread over segments of a chain (17 bytes: the 51-byte vector fills three exactly, which is
    where crypto-perf's verify looks for the digest)."""
    algo, get = VECTORS["aes-256-gcm"]
    v = get()
    r = perf(pmd, device, *verify_args(algo, v, vector_file(tmp_path / "v.data", v), op, 128, 32), *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    assert verified(r) == (128, 128, 0), device.stats().queues[0]["by_status"]
    assert device.stats().queues[0]["by_status"] == {"ok": 128}


def test_a_one_queue_device_shares_its_queue_with_sessions(pmd: pathlib.Path, region_dir: pathlib.Path,
                                                           worker: Worker, tmp_path: pathlib.Path) -> None:
    """With a single device queue, the queue pair and the sessions use the same queue."""
    with serve(region_dir, worker, size=4 << 20, queues=1) as dev:
        algo, get = VECTORS["chacha20-poly1305"]
        v = get()
        r = perf(pmd, dev, *verify_args(algo, v, vector_file(tmp_path / "v.data", v), "decrypt", 256, 32))
        assert r.returncode == 0, r.stdout + r.stderr
        assert verified(r) == (256, 256, 0)
        assert dev.stats().queues[0]["ops"] == 256 + 2


def test_a_burst_larger_than_the_ring(pmd: pathlib.Path, region_dir: pathlib.Path, worker: Worker,
                                      tmp_path: pathlib.Path) -> None:
    """A 16-entry ring under bursts of 128: enqueue takes what fits, the rest is offered again."""
    with serve(region_dir, worker, size=4 << 20, queues=2, ring_entries=16) as dev:
        algo, get = VECTORS["aes-256-gcm"]
        v = get()
        total = 1000
        r = perf(pmd, dev, *verify_args(algo, v, vector_file(tmp_path / "v.data", v), "encrypt", total, 128))
        assert r.returncode == 0, r.stdout + r.stderr
        assert verified(r) == (total, total, 0)
        assert dev.stats().queues[0]["ops"] == total


def test_a_wrong_tag_fails_authentication(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path) -> None:
    """Decrypting with a corrupted digest: the device says AUTH_FAILED, and every op comes back failed."""
    algo, get = VECTORS["aes-128-gcm"]
    v = get()
    bad = AeadVector(v.name, v.key, v.iv, v.aad, v.pt, v.ct, bytes([v.tag[0] ^ 1]) + v.tag[1:], False)
    r = perf(pmd, device, *verify_args(algo, bad, vector_file(tmp_path / "v.data", bad), "decrypt", 64, 32))
    assert verified(r) == (64, 64, 64), r.stdout
    assert device.stats().by_status.get("auth_failed", 0) == 64, device.stats().by_status


def test_the_verify_test_sees_a_wrong_answer(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path) -> None:
    """The check above can fail: a vector whose expected ciphertext is off by one bit fails every op."""
    algo, get = VECTORS["chacha20-poly1305"]
    v = get()
    bad = AeadVector(v.name, v.key, v.iv, v.aad, v.pt, bytes([v.ct[0] ^ 0x80]) + v.ct[1:], v.tag, True)
    r = perf(pmd, device, *verify_args(algo, bad, vector_file(tmp_path / "v.data", bad), "encrypt", 32, 32))
    assert verified(r) == (32, 32, 32), r.stdout


@pytest.mark.parametrize("args, reason", [
    (["--aead-algo", "aes-ccm", "--aead-key-sz", "16"], "unsupported algorithm"),
    (["--aead-algo", "aes-gcm", "--aead-key-sz", "24"], "AES-192 is not served"),
    (["--aead-algo", "chacha20-poly1305", "--aead-key-sz", "16"], "ChaCha20 takes 32-byte keys"),
])
def test_bad_parameters_are_refused(pmd: pathlib.Path, device: HostDevice, args: list[str], reason: str) -> None:
    r = perf(pmd, device, "--ptest", "throughput", "--optype", "aead", "--aead-op", "encrypt", "--aead-iv-sz", "12",
             "--aead-aad-sz", "16", "--digest-sz", "16", "--buffer-sz", "64", "--total-ops", "64", *args)
    assert r.returncode > 0, reason  # refused with an error, not killed by a signal
    # The PMD's capabilities (from the device's alg_mask) do not list it, so no session is asked for.
    assert "does not support capabilities requested" in r.stdout + r.stderr, reason
    assert device.stats().ops == 0, reason


@pytest.mark.parametrize("devargs, message", dpdkbed.BAD_DEVARGS)
def test_bad_devargs_are_a_clear_error(pmd: pathlib.Path, region_dir: pathlib.Path, devargs: str,
                                       message: str) -> None:
    vdev = dpdkbed.bad_vdev("crypto_synth", devargs, region_dir)
    cmd = [str(PERF), *dpdkbed.eal(pmd, vdev, region_dir.name, "0,1"), "--", "--devtype", "crypto_synth",
           "--ptest", "throughput", "--optype", "aead", "--aead-algo", "aes-gcm"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode > 0
    assert message in r.stdout + r.stderr


def check_cmd(pmd: pathlib.Path, dev: HostDevice, mode: str) -> list[str]:
    return [str(CHECK), *dpdkbed.device_eal(pmd, "crypto_synth", dev, "0"), "--", mode]


def test_sessions_the_device_cannot_serve_are_refused(pmd: pathlib.Path, device: HostDevice) -> None:
    """Through the public API, past the capability check: each bad transform gets its errno from
    session create, and none reaches the device."""
    r = subprocess.run(check_cmd(pmd, device, "sessions"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = dict(line.split() for line in r.stdout.splitlines())
    assert got == {
        "aes-256-gcm": "ok", "aes-128-gcm-tag12": "ok",
        "aes-192-gcm": "EINVAL", "chacha-key16": "EINVAL", "chacha-tag12": "EINVAL", "gcm-iv16": "EINVAL",
        "gcm-tag10": "EINVAL", "aes-ccm": "ENOTSUP", "cipher-only": "ENOTSUP",
        "cbc-hmac": "ok", "hmac-cbc-verify": "ok", "cbc-key16": "EINVAL", "cbc-iv12": "EINVAL",
        "hmac-digest8": "EINVAL", "encrypt-then-verify": "ENOTSUP", "cbc-sha1": "ENOTSUP",
    }
    # The four good sessions: created and destroyed on the control queue; nothing else reached it.
    q = device.stats().queues
    assert (q[0]["ops"], q[1]["ops"]) == (0, 8)


@pytest.mark.parametrize("in_flight", [False, True])
def test_a_device_that_needs_a_reset_fails_ops_and_recovers_on_start(
        pmd: pathlib.Path, device: HostDevice, worker: Worker, in_flight: bool) -> None:
    """The host marks the device NEEDS_RESET, between bursts or with a burst in flight (the backend
    not serving): every op of the burst comes back with an error status, none is lost and nothing
    crashes; a stop/start resets the device, the session is created again, and ops pass again."""
    assert dpdkbed.check_reset(check_cmd(pmd, device, "reset"), device, worker, in_flight) == []
    # In flight, the burst was in the ring when the test wrote NEEDS_RESET behind the backend's back,
    # so the backend may have served some or all of it (it takes bursts of 32) before the reset; the
    # PMD had failed it already.
    ops = device.stats().queues[0]["ops"]
    assert (128 <= ops <= 192) if in_flight else ops == 128


def test_a_device_another_process_holds_is_refused(pmd: pathlib.Path, device: HostDevice) -> None:
    """The claim the OpenSSL provider takes (a lock on the region's first byte) keeps the PMD off."""
    with dpdkbed.held(device):
        r = perf(pmd, device, "--ptest", "throughput", "--optype", "aead", "--aead-algo", "aes-gcm")
        assert r.returncode > 0
        assert "held by another process" in r.stdout + r.stderr
    # Once it is let go, the device is the PMD's.
    r = perf(pmd, device, "--ptest", "throughput", "--optype", "aead", "--aead-algo", "aes-gcm", "--aead-op",
             "encrypt", "--aead-key-sz", "16", "--aead-iv-sz", "12", "--aead-aad-sz", "16", "--digest-sz", "16",
             "--buffer-sz", "64", "--total-ops", "64")
    assert r.returncode == 0, r.stdout + r.stderr
    assert device.stats().queues[0]["ops"] >= 64
