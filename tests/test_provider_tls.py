# SPDX-License-Identifier: Apache-2.0
"""Unmodified TLS applications on the synthetic crypto device, on the host against served regions:
openssl s_server and s_client exchange a file over TLS 1.3 (AES-256-GCM, ChaCha20-Poly1305) and
TLS 1.2 (ECDHE-RSA-AES256-GCM-SHA384) with the provider turned on only by examples/openssl.cnf;
the provider's summary and the host's own counters show that the records went through the device.
Then each fallback: no device, a device that needs a reset mid-stream, and a full ring."""

from __future__ import annotations

import json
import pathlib
import random
import subprocess
import time
from collections.abc import Iterator

import pytest

from libvirt_synth.abi import DevClass
from libvirt_synth.host.device import HostDevice, Worker

from rawregion import RawRegion
from tlsbed import (
    ROOT,
    SUITES,
    body,
    client,
    env_for,
    finish,
    free_port,
    listening,
    make,
    make_cert,
    openssl_conf,
    serve,
    summary,
)

RECORD = 16384
# Larger than what the sockets between server and client can hold (loopback TCP buffers grow to
# several MiB): the server is always well short of the end when the client has read a few MiB.
BIG = 32 << 20
PYTHON = "/usr/bin/python3"  # the system's, whose ssl module is the system's OpenSSL


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    make("provider")
    d = tmp_path_factory.mktemp("tls")
    make_cert(d)
    rnd = random.Random(18)
    (d / "payload").write_bytes(rnd.randbytes(1 << 20))
    (d / "big").write_bytes(rnd.randbytes(BIG))
    return d


@pytest.fixture
def devices(region_dir: pathlib.Path, worker: Worker) -> Iterator[tuple[HostDevice, HostDevice]]:
    """The server's device and the client's."""
    pair = tuple(HostDevice.create(str(region_dir / n), DevClass.CRYPTO, size=4 << 20, queues=2) for n in ("s", "c"))
    for d in pair:
        worker.add(d)
    try:
        yield pair  # type: ignore[misc]
    finally:
        for d in pair:
            d.destroy()


@pytest.mark.parametrize("suite", SUITES, ids=[s[0] for s in SUITES])
def test_s_server_and_s_client_exchange_a_file_through_the_devices(
        tls_dir: pathlib.Path, devices: tuple[HostDevice, HostDevice], tmp_path: pathlib.Path,
        suite: tuple[str, list[str], list[str]]) -> None:
    _, sflags, cflags = suite
    conf = openssl_conf(tmp_path)
    sdev, cdev = devices
    before = [d.stats().ops for d in devices]
    with serve(tls_dir, tls_dir / "cert.pem", tls_dir / "key.pem", env_for(conf, sdev.path), sflags) as srv:
        c = client(srv.port, "payload", env_for(conf, cdev.path), cflags)
        out, cerr = finish(c)
        serr = srv.finish()
    assert body(out) == (tls_dir / "payload").read_bytes()
    records = (1 << 20) // RECORD
    for err, dev, served in ((serr, sdev, records), (cerr, cdev, records)):
        s = summary(err)
        assert s.device == dev.path and s.fallbacks == 0, s
        assert s.ops >= served, s
    after = [d.stats().ops for d in devices]
    assert after[0] - before[0] >= records and after[1] - before[1] >= records, (before, after)


@pytest.mark.parametrize("tls,ciphers", [("1.3", None), ("1.2", "ECDHE-RSA-AES256-GCM-SHA384")],
                         ids=["tls1.3", "tls1.2"])
def test_an_unmodified_python_program_goes_through_the_devices(
        tls_dir: pathlib.Path, devices: tuple[HostDevice, HostDevice], tmp_path: pathlib.Path, tls: str,
        ciphers: str | None) -> None:
    """guest/tls_echo.py, on the system Python's ssl module and nothing else: the client sends the
    payload, the server echoes it; both sides' records go through their devices."""
    conf = openssl_conf(tmp_path)
    sdev, cdev = devices
    port = free_port()
    common = ["--port", str(port), "--tls", tls, *(["--ciphers", ciphers] if ciphers else [])]
    prog = [PYTHON, str(ROOT / "guest/tls_echo.py")]
    srv = subprocess.Popen([*prog, "server", "--cert", str(tls_dir / "cert.pem"), "--key", str(tls_dir / "key.pem"),
                            *common], env=env_for(conf, sdev.path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        t0 = time.monotonic()
        while not listening(port):
            assert srv.poll() is None and time.monotonic() - t0 < 20, srv.stderr.read() if srv.stderr else ""
            time.sleep(0.02)
        c = subprocess.run([*prog, "client", "--ca", str(tls_dir / "cert.pem"), "--data", str(tls_dir / "payload"),
                            "--out", str(tmp_path / "back"), *common], env=env_for(conf, cdev.path),
                           capture_output=True, text=True, timeout=120)
        sout, serr = srv.communicate(timeout=60)
    finally:
        if srv.poll() is None:
            srv.kill()
    assert c.returncode == 0 and srv.returncode == 0, c.stderr + serr
    assert (tmp_path / "back").read_bytes() == (tls_dir / "payload").read_bytes()
    assert json.loads(c.stdout)["version"] == f"TLSv{tls}"
    if ciphers:
        assert json.loads(c.stdout)["cipher"] == ciphers
    for err, dev in ((serr, sdev), (c.stderr, cdev)):
        s = summary(err)
        assert s.device == dev.path and s.fallbacks == 0 and s.ops >= 2 * (1 << 20) // RECORD, s


def test_without_a_device_every_record_still_goes_through(tls_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    conf = openssl_conf(tmp_path)
    missing = str(tmp_path / "no-such-region")
    _, sflags, cflags = SUITES[0]
    with serve(tls_dir, tls_dir / "cert.pem", tls_dir / "key.pem", env_for(conf, missing), sflags) as srv:
        c = client(srv.port, "payload", env_for(conf, missing), cflags)
        out, cerr = finish(c)
        serr = srv.finish()
    assert body(out) == (tls_dir / "payload").read_bytes()
    for err in (serr, cerr):
        s = summary(err)
        assert s.ops == 0 and s.reasons["no-device"] >= (1 << 20) // RECORD and s.fallbacks == s.reasons["no-device"]
        assert "no crypto device" in err


def slow_transfer(tls_dir: pathlib.Path, conf: pathlib.Path, sdev: HostDevice, cdev: HostDevice,
                  events: dict[int, object]) -> tuple[bytes, str]:
    """The client reads `big` (BIG bytes) 64 KiB at a time, slowly enough that the server's records
    are sent over seconds; events[n]() runs once n bytes have arrived. Returns (body, server
    stderr)."""
    _, sflags, cflags = SUITES[0]
    got = bytearray()
    todo = sorted(events)
    with serve(tls_dir, tls_dir / "cert.pem", tls_dir / "key.pem", env_for(conf, sdev.path), sflags) as srv:
        c = client(srv.port, "big", env_for(conf, cdev.path), cflags)
        assert c.stdout is not None
        while chunk := c.stdout.read1(65536):
            got += chunk
            while todo and len(got) >= todo[0]:
                events.pop(todo.pop(0))()  # type: ignore[operator]
            time.sleep(0.002)
        c.wait(timeout=60)
        serr = srv.finish()
    return body(bytes(got)), serr


def test_a_device_that_needs_a_reset_mid_stream_is_reset_and_used_again(
        tls_dir: pathlib.Path, devices: tuple[HostDevice, HostDevice], tmp_path: pathlib.Path) -> None:
    """The device's header says NEEDS_RESET (as the host writes it when it finds a ring broken):
    the record in hand goes to software, the provider resets the device, and the next records are
    the device's again."""
    from libvirt_synth._native import lib

    sdev, cdev = devices
    conf = openssl_conf(tmp_path)
    marks: dict[str, int] = {}

    def needs_reset() -> None:
        raw = RawRegion(sdev.path)
        raw.hdr.dev_status = lib.SYNTH_DEV_READY | lib.SYNTH_DEV_NEEDS_RESET
        raw.close()
        marks["at_reset"] = sdev.stats().ops

    data, serr = slow_transfer(tls_dir, conf, sdev, cdev, {1 << 20: needs_reset})
    assert data == (tls_dir / "big").read_bytes()
    s = summary(serr)
    assert s.reasons["reset"] >= 1 and s.fallbacks == s.reasons["reset"], s
    assert "reset (ok)" in serr
    # The server runs ahead of the client by what the sockets hold, but far from the end: every
    # record after the one in hand went through the device again.
    records = BIG // RECORD
    assert marks["at_reset"] < records // 2
    assert sdev.stats().ops - marks["at_reset"] >= records - marks["at_reset"] - 2
    assert sdev.stats().resets >= 1


def test_a_full_ring_falls_back_at_once_and_the_device_comes_back(
        tls_dir: pathlib.Path, devices: tuple[HostDevice, HostDevice], worker: Worker, tmp_path: pathlib.Path) -> None:
    """The backend stops serving the server's device for a while: the first record waits
    timeout_ms, the next ones are queued without waiting until the ring (or the arena) is full, and
    from then on each goes to software at once. When the backend serves again, it completes the
    backlog, and the records are the device's again. Nothing is lost or reordered."""
    sdev, cdev = devices
    conf = openssl_conf(tmp_path, timeout_ms="200")
    marks: dict[str, int] = {}

    def stop() -> None:
        worker.remove(sdev)

    def resume() -> None:
        worker.add(sdev)
        marks["resumed"] = sdev.stats().ops

    data, serr = slow_transfer(tls_dir, conf, sdev, cdev, {64 << 10: stop, 4 << 20: resume})
    assert data == (tls_dir / "big").read_bytes()
    s = summary(serr)
    assert s.reasons["timeout"] >= 1 and s.reasons["ring-full"] >= 1, s
    assert s.fallbacks == s.reasons["timeout"] + s.reasons["ring-full"], s
    # While stopped, the server sent at least what the client read meanwhile (4 MiB: 256 records,
    # more than the arena holds); after, at least what the sockets could not hold before.
    assert sdev.stats().ops - marks["resumed"] >= (8 << 20) // RECORD, "the device was not used again"


def test_two_processes_never_share_a_device(tls_dir: pathlib.Path, devices: tuple[HostDevice, HostDevice],
                                            tmp_path: pathlib.Path) -> None:
    """Both parties are configured with the same device: whichever opens it first holds it, the
    other is told it is held (a second driver would take the device over) and works in software."""
    conf = openssl_conf(tmp_path)
    sdev, _ = devices
    _, sflags, cflags = SUITES[0]
    with serve(tls_dir, tls_dir / "cert.pem", tls_dir / "key.pem", env_for(conf, sdev.path), sflags) as srv:
        c = client(srv.port, "payload", env_for(conf, sdev.path), cflags)
        out, cerr = finish(c)
        serr = srv.finish()
    assert body(out) == (tls_dir / "payload").read_bytes()
    holder, other = sorted((summary(serr), summary(cerr)), key=lambda s: -s.ops)
    assert holder.ops >= (1 << 20) // RECORD and holder.fallbacks == 0, holder
    assert other.ops == 0 and other.fallbacks == other.reasons["no-device"] > 0, other
    assert "held by another process" in serr + cerr
