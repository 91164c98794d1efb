# SPDX-License-Identifier: Apache-2.0
"""Unmodified TLS programs on the synthetic crypto device, through the OpenSSL provider synth.

In a real VM (TCG, started by libvirtd): Debian's ``openssl s_server``/``s_client`` and
``guest/tls_echo.py`` (Python's ``ssl``, nothing of ours in it) exchange a file over 127.0.0.1 with
TLS 1.3 (AES-256-GCM, ChaCha20-Poly1305) and TLS 1.2 (ECDHE-RSA-AES256-GCM-SHA384); the guest
image's openssl.cnf alone puts their record crypto on the provider. Each server runs on the VM's
first crypto device and each client on its second. Checked here: every file arrived intact, each
program's provider did its work on its device with no software fallback, and virt-synthd counted
the operations and bytes on the same two devices.

The test plays the hook's part (``domain.create`` from the domain's metadata, as the hook's
prepare does), so that the devices outlive the VM and their counters can be read after it powered
off (the hook's release would destroy them). The host-side tests run the same programs on the
host against devices served here, in a second. The VM part takes about a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from libvirt_synth.abi import DevClass
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.testbed import image as guestimage
from libvirt_synth.testbed import userland

import libvirtctl
import vmbed
from tlsbed import SUMMARY, Summary
from tlsbed import summary as last_summary
from vmbed import Booted

why_not = libvirtctl.available()

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAME, UUID = "synth-tls", "7e15c0de-0b1c-4a2d-9e3f-4a5b6c7d8e9f"
P = "synth-tls7e15c0de"
CAPS = "aes-128-gcm+aes-256-gcm+chacha20-poly1305"
DEVICES = [f"crypto:name={P}-0,caps={CAPS}", f"crypto:name={P}-1,caps={CAPS}"]
REGIONS = [f"{P}-0", f"{P}-1"]
LINES = 60000  # the file: `seq 1 LINES`
EXCHANGES = {  # name -> (version, cipher), in the order guest/tls-check.sh runs them
    "openssl-tls13-aes256gcm": ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    "openssl-tls13-chacha20": ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    "openssl-tls12-aes256gcm": ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"),
    "python-tls13-aes256gcm": ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    "python-tls13-chacha20": ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    "python-tls12-aes256gcm": ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"),
}


def seq(n: int) -> bytes:
    """What busybox ``seq 1 n`` writes."""
    return "".join(f"{i}\n" for i in range(1, n + 1)).encode()


def summary(lines: list[str]) -> Summary:
    """The provider's one summary line among its stderr lines."""
    found = [line for line in lines if SUMMARY.search(line)]
    assert len(found) == 1, lines
    return last_summary(found[0])


def provider() -> pathlib.Path:
    subprocess.run(["make", "-s", "-C", str(ROOT), "provider"], check=True)
    return guestimage.PROVIDER


# ---- no VM: the same programs on the host, on devices served here ----


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("tls")
    cert, key = userland.tls_material()
    (d / "cert.pem").write_bytes(cert)
    (d / "key.pem").write_bytes(key)
    (d / "data").write_bytes(seq(LINES))
    return d


def test_the_key_material_is_the_same_every_time_and_verifies(material: pathlib.Path) -> None:
    assert userland.tls_material() == ((material / "cert.pem").read_bytes(), (material / "key.pem").read_bytes())
    assert userland.tls_material(userland.TLS_SEED + 1)[1] != (material / "key.pem").read_bytes()
    r = subprocess.run(["openssl", "verify", "-CAfile", "cert.pem", "-verify_hostname", "localhost", "cert.pem"],
                       cwd=material, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "cert.pem: OK", r.stderr
    r = subprocess.run(["openssl", "rsa", "-in", "key.pem", "-check", "-noout"], cwd=material, capture_output=True,
                       text=True)
    assert r.returncode == 0 and "RSA key ok" in r.stdout, r.stderr


def test_the_guests_openssl_cnf_turns_on_synth_and_prefers_it() -> None:
    text = userland.cnf()
    assert f"module = {userland.PROVIDER}" in text and "default_properties = ?provider=synth" in text
    assert "device = auto" in text and "log = stderr" in text and "default = default_sect" in text
    plain = userland.cnf(provider=False)
    assert "synth" not in plain.split("\n", 2)[2] and "activate = 1" in plain
    assert "Ciphersuites = TLS_CHACHA20_POLY1305_SHA256" in userland.cnf(True, "TLS_CHACHA20_POLY1305_SHA256")


def run_pair(server: list[str], client: list[str], env: dict[str, str], devices: list[str], port: int,
             cwd: pathlib.Path) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """Server and client, each on its device; the server's stdout is a file (a full pipe would stall
    it) and its stdin stays open until it ended by itself (s_server ends a connection at stdin's end)."""
    with open(cwd / "server.out", "w+") as out, open(cwd / "server.err", "w+") as err:
        srv = subprocess.Popen(server, cwd=cwd, env=env | {"LIBVIRT_SYNTH_OSSL_DEVICE": devices[0]},
                               stdin=subprocess.PIPE, stdout=out, stderr=err, text=True)
        try:
            deadline = time.monotonic() + 20
            while f":{port:04X} 00000000:0000 0A" not in pathlib.Path("/proc/net/tcp").read_text():
                assert time.monotonic() < deadline and srv.poll() is None, "the server does not listen"
                time.sleep(0.05)
            cli = subprocess.run(client, cwd=cwd, env=env | {"LIBVIRT_SYNTH_OSSL_DEVICE": devices[1]},
                                 capture_output=True, text=True, timeout=60)
            srv.wait(timeout=30)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
            assert srv.stdin is not None
            srv.stdin.close()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(server, srv.returncode, out.read(), err.read()), cli


@pytest.mark.parametrize("tool", ["openssl", "python"])
def test_unmodified_programs_run_their_records_on_the_device(tool: str, material: pathlib.Path,
                                                            region_dir: pathlib.Path, worker: Worker) -> None:
    """tls_echo.py and openssl s_server/s_client on the host, the provider configured by an
    openssl.cnf like the guest's (module from the build tree, device a region path)."""
    devs = [HostDevice.create(str(region_dir / f"c{i}"), DevClass.CRYPTO, size=4 << 20, queues=2) for i in range(2)]
    for d in devs:
        worker.add(d)
    try:
        cnf = material / "synth.cnf"
        cnf.write_text(userland.cnf().replace(userland.PROVIDER, str(provider())))
        env = dict(os.environ, OPENSSL_CONF=str(cnf))
        port = 24430 + (tool == "python")
        if tool == "openssl":
            server = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", "cert.pem", "-key", "key.pem",
                      "-naccept", "1", "-quiet", "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"]
            client = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", "cert.pem",
                      "-verify_return_error", "-brief", "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"]
            client = ["sh", "-c", " ".join(client) + " < data"]
        else:
            echo = str(ROOT / "guest/tls_echo.py")
            server = ["/usr/bin/python3", echo, "server", "--port", str(port), "--cert", "cert.pem", "--key", "key.pem"]
            client = ["/usr/bin/python3", echo, "client", "--port", str(port), "--ca", "cert.pem", "--data", "data",
                      "--out", "back"]
        srv, cli = run_pair(server, client, env, [d.path for d in devs], port, material)
        assert srv.returncode == 0 and cli.returncode == 0, (srv.stderr, cli.stderr)
        got = srv.stdout.encode() if tool == "openssl" else (material / "back").read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256(seq(LINES)).digest()
        for proc, dev in ((srv, devs[0]), (cli, devs[1])):
            s = summary(proc.stderr.splitlines())
            assert (s.device, s.fallbacks) == (dev.path, 0) and s.ops > 0, proc.stderr
            host = dev.stats()
            assert host.ops >= s.ops and host.as_dict()["bytes_in"] >= len(seq(LINES))
    finally:
        for d in devs:
            d.destroy()


# ---- the VM ----


@pytest.fixture(scope="module")
def tls_vm() -> Iterator[Booted]:
    subprocess.run(["make", "-s", "-C", str(ROOT), "guest-inputs"], check=True)
    provider()
    with vmbed.boot(guestimage.build(), name=NAME, uuid=UUID, prefix="synth-tls-",
                    cmdline=f"synth.cmd=probe,tls,provider-kat synth.tls_lines={LINES}", devices=DEVICES,
                    regions=REGIONS, timeout=240) as booted:
        yield booted


vm = pytest.mark.skipif(why_not is not None, reason=why_not or "")


def tls_records(t: Booted) -> list[dict[str, Any]]:
    assert t.run.done, t.console[-3000:]
    st = t.run.step("tls")
    recs = st.of("tls")
    assert [r["name"] for r in recs] == list(EXCHANGES), "\n".join(st.text)
    return recs


@vm
@pytest.mark.slow
def test_known_answers_and_the_differential_pass_on_the_pci_device(tls_vm: Booted) -> None:
    """provider-kat in the guest, through EVP on the first free crypto device (device = auto in
    the image's openssl.cnf): every NIST GCM and RFC 8439 vector and 300 random conversations give
    the default provider's bytes, and each operation of the device's shape was the device's."""
    st = tls_vm.run.step("provider-kat")
    summary = [r for r in st.records if r.get("event") == "summary"]
    assert st.rc == 0 and summary and summary[0]["result"] == "pass", "\n".join(st.text)[-3000:]
    s = summary[0]
    assert s["device"].startswith("0000:") and s["kat"]["cases"] > 200 and s["differential"]["ops"] > 0, s
    assert s["counters"]["synth-ops"] >= s["device_served"] > 0 and s["failures"] == 0, s


@pytest.mark.slow  # the first build downloads the kernel package
def test_the_image_carries_openssl_python_and_the_provider_with_their_hashes() -> None:
    provider()
    built = guestimage.build()
    files = built.manifest["userland_files"]["files"]
    pkgs = {p.split(":")[0].split("=")[0] for p in built.manifest["userland_files"]["packages"]}
    assert {"openssl", "libssl3", "libc6", "python3.11-minimal", "libpython3.11-minimal"} <= pkgs
    for path in (userland.OPENSSL, userland.PYTHON, "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                 "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"):
        assert files[path]["sha256"] == hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest(), path
    assert files[userland.PROVIDER]["sha256"] == hashlib.sha256(guestimage.PROVIDER.read_bytes()).hexdigest()
    assert built.manifest["userland"]["provider"] is True
    # Lean: the standard library's modules that the program and start-up need, nothing else.
    stdlib = [p for p in files if p.startswith(userland.STDLIB)]
    assert f"{userland.STDLIB}ssl.py" in stdlib and f"{userland.STDLIB}encodings/__init__.py" in stdlib
    assert f"{userland.STDLIB}asyncio/__init__.py" not in files and len(stdlib) < 60


@vm
@pytest.mark.slow
def test_every_exchange_delivers_the_file_intact(tls_vm: Booted) -> None:
    want = hashlib.sha256(seq(LINES)).hexdigest()
    for r in tls_records(tls_vm):
        version, cipher = EXCHANGES[r["name"]]
        assert (r["version"], r["cipher"]) == (version, cipher)
        assert (r["negotiated_version"], r["negotiated_cipher"]) == (version, cipher), r
        assert (r["bytes"], r["sha256"]) == (len(seq(LINES)), want), "the guest made the host's file"
        assert (r["received_bytes"], r["received_sha256"]) == (len(seq(LINES)), want), r
        assert (r["server_rc"], r["client_rc"], r["result"]) == (0, 0, "pass"), r
    assert tls_vm.run.step("tls").rc == 0


@vm
@pytest.mark.slow
def test_each_program_ran_its_records_on_its_own_device_without_fallback(tls_vm: Booted) -> None:
    devs = [d for d in tls_vm.run.step("probe").of("device") if d["class"] == "crypto"]
    assert [d["name"] for d in devs] == REGIONS
    pci = [d["dev"] for d in devs]
    for r in tls_records(tls_vm):
        assert (r["server_device"], r["client_device"]) == tuple(pci)
        for side, dev in (("server", pci[0]), ("client", pci[1])):
            s = summary(r[f"{side}_synth"])
            assert s.device == dev and s.ops > 0, (r["name"], side, r[f"{side}_synth"])
            assert s.fallbacks == 0 and not any(s.reasons.values()), (r["name"], side, r[f"{side}_synth"])


@vm
@pytest.mark.slow
def test_the_host_counted_the_operations_and_bytes_on_both_devices(tls_vm: Booted) -> None:
    recs = tls_records(tls_vm)
    size = len(seq(LINES))
    for side, region in (("server", REGIONS[0]), ("client", REGIONS[1])):
        host = tls_vm.stats["devices"][region]
        guest_ops = sum(summary(r[f"{side}_synth"]).ops for r in recs)
        # The guest's ops are AEAD records; the host also counts each session's set-up and tear-down.
        assert host["ops"] >= guest_ops > 0, json.dumps(host)
        # auth_failed: the decrypt failures provider-kat asks for, on the device it ran on.
        assert set(host["by_status"]) <= {"ok", "auth_failed"} and host["ring_errors"] == 0, json.dumps(host)
        # Each file crossed each device once, and once more back from the echo servers.
        crossings = sum(2 if r["tool"] == "python" else 1 for r in recs)
        assert host["bytes_in"] >= crossings * size, json.dumps(host)
