# SPDX-License-Identifier: Apache-2.0
"""The OpenSSL 3 provider `synth` through EVP, by native/tests/provider_kat.c: NIST GCM and RFC 8439
known answers and a differential run against the default provider, on a device served by each crypto
plugin (the device must do the work: the provider's counters and the host's agree), and with no
device at all (every result still right, all of it in software)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import time
from typing import Any

import pytest

from libvirt_synth.abi import DevClass
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.host.plugins import catalog

from tlsbed import BUILD, make
from vectors import VECTORS, nist_gcm, rfc8439

ROOT = pathlib.Path(__file__).resolve().parent.parent
KAT = BUILD / "provider-kat"
MODULE = BUILD / "ossl-modules" / "synth.so"
HEADER = ROOT / "native" / "tests" / "provider_vectors.h"
RSP = sorted(VECTORS.glob("nist-gcm-*.rsp"))
ALGS = ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305")
CRYPTO_PLUGINS = [p.name for p in catalog() if p.dev_class == "crypto"]


@pytest.fixture(scope="module")
def kat_program() -> pathlib.Path:
    make("provider-kat")
    return KAT


@pytest.fixture(scope="module")
def provider(kat_program: pathlib.Path) -> pathlib.Path:
    make("provider")
    return MODULE


def openssl_cnf(tmp_path: pathlib.Path, device: str | None) -> pathlib.Path:
    """An openssl.cnf activating the default provider, and synth on `device` (None: default only)."""
    names = "default = default_sect\n" + ("synth = synth_sect\n" if device is not None else "")
    text = (f"openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\nconfig_diagnostics = 1\n"
            f"[provider_sect]\n{names}[default_sect]\nactivate = 1\n")
    if device is not None:
        # A long timeout: a loaded test machine must not turn into timeout fallbacks, which
        # --expect-device counts as failures.
        text += (f"[synth_sect]\nmodule = {MODULE}\nactivate = 1\ndevice = {device}\ntimeout_ms = 30000\n"
                 "log = stderr\n")
    cnf = tmp_path / "openssl.cnf"
    cnf.write_text(text)
    return cnf


def run_kat(cnf: pathlib.Path, *args: str, env_device: str | None = None) -> tuple[int, dict[str, Any], str]:
    """provider-kat --json under cnf: (exit status, its summary, what it printed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LIBVIRT_SYNTH_OSSL_DEVICE", "OPENSSL_MODULES")}
    env["OPENSSL_CONF"] = str(cnf)
    if env_device is not None:
        env["LIBVIRT_SYNTH_OSSL_DEVICE"] = env_device
    r = subprocess.run([str(KAT), "--json", *args], capture_output=True, text=True, env=env, timeout=600)
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    summary = events[-1] if events and events[-1]["event"] == "summary" else {}
    return r.returncode, summary, r.stdout + r.stderr


def rsp_args() -> list[str]:
    return [a for f in RSP for a in ("--rsp", str(f))]


def header_vectors() -> list[dict[str, Any]]:
    """The vectors of provider_vectors.h, as written there."""
    text = HEADER.read_text()
    body = text[text.index("pk_vectors[] = {"):]
    out = []
    for m in re.finditer(r'\{"([^"]+)", (PK_\w+),((?:\s*(?:"[0-9a-f]*"\s*)+,){6})\s*([01])\}', body):
        fields = [bytes.fromhex(re.sub(r'["\s]', "", f)) for f in m.group(3).split(",")[:6]]
        out.append({"name": m.group(1), "alg": m.group(2), "fail": m.group(4) == "1",
                    **dict(zip(("key", "iv", "aad", "pt", "ct", "tag"), fields, strict=True))})
    return out


def kat_cases(vectors: list[tuple[bytes, bool]]) -> int:
    """How many cases provider-kat makes of (key, ok) vectors: an encrypt of each passing one,
    and four decrypts of each (tag first, in place, after the AAD, after the data)."""
    return sum(5 if ok else 4 for _, ok in vectors)


def test_embedded_vectors_are_the_shipped_ones() -> None:
    vecs = header_vectors()
    assert len(vecs) == HEADER.read_text().count('    {"'), "a vector of the header was not parsed"
    shipped = {v.name: v for f in RSP for v in nist_gcm(f.name)}
    rfc = {v.name.lower(): v for v in rfc8439() if v.ok}
    tag_lens = set()
    for v in vecs:
        if v["name"].startswith("nist-"):
            s = shipped[v["name"]]
            assert (v["key"], v["iv"], v["aad"], v["pt"], v["ct"], v["tag"], v["fail"]) == \
                   (s.key, s.iv, s.aad, s.pt, s.ct, s.tag, not s.ok), v["name"]
            assert v["alg"] == ("PK_AES128_GCM" if len(s.key) == 16 else "PK_AES256_GCM")
            tag_lens.add((len(s.key), len(s.tag), v["fail"]))
        elif v["name"].startswith("rfc8439-"):
            s = rfc[v["name"].removesuffix("-bad-tag")]
            assert (v["key"], v["iv"], v["aad"], v["pt"], v["ct"]) == (s.key, s.iv, s.aad, s.pt, s.ct)
            assert v["alg"] == "PK_CHACHA20_POLY1305"
            flipped = int.from_bytes(v["tag"], "big") ^ int.from_bytes(s.tag, "big")
            assert bin(flipped).count("1") == (1 if v["fail"] else 0), v["name"]
    # AES-128 and AES-256, every tag length NIST tests, passing and failing
    assert tag_lens == {(k, t, f) for k in (16, 32) for t in (16, 15, 14, 13, 12, 8, 4) for f in (False, True)}


def test_program_checks_itself_on_the_default_provider(kat_program: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Against the default provider alone the vectors hold and the differential agrees with
    itself: what the program asserts of synth is what OpenSSL itself does."""
    rc, summary, out = run_kat(openssl_cnf(tmp_path, None), "--provider", "default", "--threads", "2", *rsp_args())
    assert rc == 0, out
    file_vectors = [(v.key, v.ok) for f in RSP for v in nist_gcm(f.name)]
    assert summary["kat"] == {"cases": kat_cases([(v["key"], not v["fail"]) for v in header_vectors()]) +
                              kat_cases(file_vectors), "failures": 0}
    assert summary["differential"]["ops"] > 2000 and summary["device_rejects"] > 0
    assert summary["counters"] == {}


def test_help(kat_program: pathlib.Path) -> None:
    r = subprocess.run([str(kat_program), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--expect-device" in r.stdout and "--expect-fallback" in r.stdout
    r = subprocess.run([str(kat_program), "--unserved", "rot13"], capture_output=True, text=True)
    assert r.returncode == 2 and "rot13" in r.stderr


def check_device_run(dev: HostDevice, summary: dict[str, Any]) -> None:
    """What a passing --expect-device run shows in both counters: the provider's and the host's."""
    c = summary["counters"]
    assert summary["device"] == dev.path
    assert c["synth-ops"] >= summary["device_served"] > 0
    assert c["synth-fallbacks"] == c["synth-fallback-unsupported"]
    st = dev.stats()
    # every device operation completed on the host (sessions add completions of their own); the
    # tampered ones were rejected there, not in software
    assert st.by_status.get("ok", 0) + st.by_status.get("auth_failed", 0) >= c["synth-ops"]
    assert st.by_status.get("auth_failed", 0) >= summary["device_rejects"] > 0
    # The provider's close detaches the driver; the backend drops the sessions when its worker next
    # sees the detach, which on a loaded machine may come a moment after the program has exited.
    deadline = time.monotonic() + 10
    while dev.stats().sessions and time.monotonic() < deadline:
        time.sleep(0.02)
    assert dev.stats().sessions == 0, "the provider left sessions on the device"


def test_device_does_the_work(provider: pathlib.Path, served: HostDevice, tmp_path: pathlib.Path) -> None:
    rc, summary, out = run_kat(openssl_cnf(tmp_path, served.path), "--expect-device", *rsp_args())
    assert rc == 0, out
    assert summary["failures"] == 0 and summary["kat"]["cases"] > 10000
    check_device_run(served, summary)


def test_threads_share_the_device(provider: pathlib.Path, served: HostDevice, tmp_path: pathlib.Path) -> None:
    rc, summary, out = run_kat(openssl_cnf(tmp_path, served.path), "--expect-device", "--no-kat", "--threads", "4",
                               "--seed", "2")
    assert rc == 0, out
    check_device_run(served, summary)
    assert all(q["ops"] > 0 for q in served.stats().queues), "four threads used one queue of two"


@pytest.mark.parametrize("plugin", CRYPTO_PLUGINS)
def test_each_plugin(provider: pathlib.Path, plugin: str, region_dir: pathlib.Path, worker: Worker,
                     tmp_path: pathlib.Path) -> None:
    info = {p.name: p for p in catalog()}[plugin]
    if not info.available:
        pytest.skip(f"plugin {plugin} cannot run here: {info.detail}")
    served = [a for a in ALGS if a in info.algorithms]
    if not served:
        pytest.skip(f"plugin {plugin} serves none of {', '.join(ALGS)}")
    unserved = [a for a in ALGS if a not in served]
    dev = HostDevice.create(str(region_dir / plugin), DevClass.CRYPTO, size=4 << 20, queues=2, plugin=plugin)
    worker.add(dev)
    try:
        assert dev.plugin == plugin
        args = ["--expect-device", "--seed", "3", *rsp_args()]
        if unserved:
            args += ["--unserved", ",".join(unserved)]
        rc, summary, out = run_kat(openssl_cnf(tmp_path, dev.path), *args)
        assert rc == 0, out
        check_device_run(dev, summary)
    finally:
        dev.destroy()


def test_no_device_falls_back(provider: pathlib.Path, tmp_path: pathlib.Path) -> None:
    rc, summary, out = run_kat(openssl_cnf(tmp_path, str(tmp_path / "no-such-region")), "--expect-fallback")
    assert rc == 0, out
    c = summary["counters"]
    assert summary["device"] == "" and c["synth-ops"] == 0
    assert c["synth-fallback-no-device"] >= summary["device_ops"] > 0


def test_environment_overrides_the_device(provider: pathlib.Path, served: HostDevice, tmp_path: pathlib.Path) -> None:
    """LIBVIRT_SYNTH_OSSL_DEVICE wins over the configuration's device."""
    rc, summary, out = run_kat(openssl_cnf(tmp_path, served.path), "--expect-fallback", "--iterations", "200",
                               env_device=str(tmp_path / "no-such-region"))
    assert rc == 0, out
    assert served.stats().ops == 0


def test_expect_device_fails_without_one(provider: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """The check bites: with no device, --expect-device fails and names the operations."""
    rc, summary, out = run_kat(openssl_cnf(tmp_path, str(tmp_path / "no-such-region")), "--expect-device",
                               "--no-kat", "--iterations", "20")
    assert rc == 1, out
    assert summary["result"] == "fail"
    assert "diff#0.0" in out and "(no-device +1)" in out and "synth-ops is 0" in out


def test_auto_takes_a_crypto_device_and_never_opens_another_class(provider: pathlib.Path, region_dir: pathlib.Path,
                                                                  worker: Worker, tmp_path: pathlib.Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """device = auto on a (fake) PCI bus where compression devices come before the crypto one, and
    one is in use by another program of the VM (the guest library, which claims nothing): the
    provider uses the crypto device and never opens the others, since opening one is a handshake
    that would take it over from its driver (its drv_epoch is unchanged, its driver goes on)."""
    from test_guest_api import make_fake_pci

    from libvirt_synth.guest import Device
    from libvirt_synth.guest.compress import Compressor

    from rawregion import RawRegion

    def epoch(d: HostDevice) -> int:
        raw = RawRegion(d.path)
        try:
            return int(raw.hdr.drv_epoch)
        finally:
            raw.close()

    sysfs = tmp_path / "sys"
    devices = sysfs / "bus" / "pci" / "devices"
    others: list[HostDevice] = []

    def another(n: int) -> None:
        d = HostDevice.create(str(region_dir / f"auto-comp{n}"), DevClass.COMPRESS, size=1 << 20)
        others.append(d)
        make_fake_pci(sysfs, f"0000:00:{n:02x}.0", "0x1af4", "0x1110", pathlib.Path(d.path))

    another(1)
    crypto = HostDevice.create(str(region_dir / "auto-crypto"), DevClass.CRYPTO, size=4 << 20, queues=2)
    make_fake_pci(sysfs, "0000:00:1f.0", "0x1af4", "0x1110", pathlib.Path(crypto.path))
    for n in range(2, 15):  # the scan goes in directory order: make sure another class comes first
        if os.listdir(devices).index("0000:00:1f.0") > 0:
            break
        another(n)
    assert os.listdir(devices)[0] != "0000:00:1f.0"
    for d in (crypto, *others):
        worker.add(d)
    try:
        with Device.open(others[0].path) as g:
            z = Compressor(g.queue(0))
            assert z.decompress(z.compress(b"in use " * 100, "zstd"), "zstd") == b"in use " * 100
            epochs = [epoch(d) for d in others]
            monkeypatch.setenv("LIBVIRT_SYNTH_SYSFS", str(sysfs))
            rc, summary, out = run_kat(openssl_cnf(tmp_path, "auto"), "--expect-device", "--no-kat", "--iterations",
                                       "200")
            assert rc == 0, out
            assert summary["device"] == "0000:00:1f.0" and summary["counters"]["synth-ops"] > 0, summary
            assert [epoch(d) for d in others] == epochs, "auto opened another class"
            assert z.decompress(z.compress(b"still mine " * 100, "zstd"), "zstd") == b"still mine " * 100
    finally:
        for d in (crypto, *others):
            d.destroy()
