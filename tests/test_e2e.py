# SPDX-License-Identifier: Apache-2.0
"""End to end: a real Linux guest (Debian's kernel, busybox, synth-guest: the guest image), started
by the real libvirtd (TCG) from the domain XML our generator writes, finds its synthetic devices on
its PCI bus and gets crypto, compression and packet service from a real virt-synthd, which the
libvirt hook asked to create them. Every result the guest prints is checked against the host's own
computation (OpenSSL through `cryptography`, zlib, zstandard, lz4, the frames' generator).

The same image, unchanged, then boots again against the daemon with crypto pinned to another
plugin (openssl, then ipsec-mb) and must print the same results byte for byte. The AF_ALG plugin's
known-answer program runs in the guest against the guest kernel's crypto API (this host has no
AF_ALG). Root only: installs the hook and restarts libvirtd, both undone afterwards. About 30 s
when the image is cached (the first build downloads the kernel package: ~70 MB, and builds it:
~15 s).

The first tests need no VM: synth-guest on regions served in this process (with the two packet
devices wired, which virt-synthd cannot do yet), and the console parser; they pin down the guest
program and the host's checks that the VM tests rely on."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libvirt_synth._native import lib
from libvirt_synth.abi import DevClass
from libvirt_synth.hook import install as hookinstall
from libvirt_synth.host import packet as host_packet
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.testbed import image as guestimage
from libvirt_synth.testbed import vm as guestvm

import libvirtctl
from daemonctl import Daemon
from hostcpu import IPSECMB_ALGS

why_not = libvirtctl.available()
vm = pytest.mark.skipif(why_not is not None, reason=why_not or "")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHM = pathlib.Path("/dev/shm")
UUID = "e2e0c0de-5a1b-4c3d-8e9f-0a1b2c3d4e5f"
NAME = "synth-e2e"
P = "synth-e2e0c0de5a1b"
DEVICES = [f"crypto:name={P}-0,caps=aes-256-gcm", f"compress:name={P}-1,caps=zstd+lz4+gzip",
           f"packet:name={P}-2,size=4M,opt.link=wire:{P}-3", f"packet:name={P}-3,size=4M,opt.link=wire:{P}-2"]
REGIONS = [d.split("name=")[1].split(",")[0] for d in DEVICES]
SEED = 20240601
PINS = ("openssl", "ipsec-mb")  # the crypto plugin of the first and the second run


def failed(checks: list[guestvm.Check]) -> list[str]:
    return [f"{c.what}: {c.detail}" for c in checks if not c.ok]


# ---- no VM: synth-guest on regions served here, and the host's checks ----


def synth_guest() -> pathlib.Path:
    subprocess.run(["make", "-s", "-C", str(ROOT), "synth-guest"], check=True)
    return ROOT / "native/build/synth-guest"


@pytest.fixture
def host_devices(region_dir: pathlib.Path, worker: Worker) -> Iterator[list[str]]:
    """A crypto, a compression and two wired packet devices, as the VM gets them (in that order)."""
    devs = [HostDevice.create(str(region_dir / "c"), DevClass.CRYPTO, size=4 << 20),
            HostDevice.create(str(region_dir / "z"), DevClass.COMPRESS, size=4 << 20),
            HostDevice.create(str(region_dir / "p0"), DevClass.PACKET, queues=2),
            HostDevice.create(str(region_dir / "p1"), DevClass.PACKET, queues=2)]
    host_packet.wire(devs[2], 0, devs[3], 0)
    for d in devs:
        worker.add(d)
    try:
        yield [d.path for d in devs]
    finally:
        for d in devs:
            d.destroy()


def selftest_on_host(paths: list[str], inputs: guestvm.Inputs, tmp_path: pathlib.Path) -> guestvm.GuestRun:
    """synth-guest selftest on region paths, with the inputs a VM gets on its command line (read
    from a file here), its output framed as the image's init frames it."""
    params = tmp_path / "cmdline"
    params.write_text(inputs.cmdline())
    r = subprocess.run([str(synth_guest()), "--params", str(params), "selftest", *paths], capture_output=True,
                       text=True, timeout=60)
    return guestvm.parse_console(f"\x1b[2J@@SYNTH-BEGIN selftest\r\n{r.stdout}@@SYNTH-END selftest rc={r.returncode}\n"
                                 "[    1.234] some kernel line\n@@SYNTH-DONE\n")


def test_synth_guest_results_match_the_hosts_computation(host_devices: list[str], tmp_path: pathlib.Path) -> None:
    inputs = guestvm.Inputs.make(SEED)
    run = selftest_on_host(host_devices, inputs, tmp_path)
    checks = guestvm.check(run, inputs)  # packets too: these two are wired
    assert not failed(checks)
    st = run.step("selftest")
    assert st.rc == 0 and st.of("summary")[0]["failed"] == 0
    assert len(st.of("crypto")) == 5 and len(st.of("compress")) == 5 and len(st.of("decompress")) == 3
    assert [r["received"] for r in st.of("packet")] == [inputs.frames] * 2
    assert len([c for c in checks if c.what.startswith("packet")]) == 4


def test_the_checks_catch_a_wrong_byte(host_devices: list[str], tmp_path: pathlib.Path) -> None:
    """Each kind of result, changed by one bit, fails its check: the checks compare, not count."""
    inputs = guestvm.Inputs.make(SEED)
    run = selftest_on_host(host_devices, inputs, tmp_path)
    st = run.step("selftest")
    targets = [(st.of("crypto")[1], "ciphertext"), (st.of("crypto")[4], "tag"), (st.of("compress")[3], "output"),
               (st.of("decompress")[0], "output")]
    for rec, key in targets:
        good = rec[key]
        rec[key] = good[:-1] + ("0" if good[-1] != "0" else "1")
        assert len(failed(guestvm.check(run, inputs))) == 1, (rec["type"], key)
        rec[key] = good
    frames = st.of("packet")[0]["frames"]
    frames[3] = frames[3][:40] + ("0" if frames[3][40] != "0" else "1") + frames[3][41:]
    assert len(failed(guestvm.check(run, inputs))) == 1
    st.rc = 1
    assert any("own verdict" in f for f in failed(guestvm.check(run, inputs)))


def test_synth_guest_without_a_link_counts_every_frame_as_dropped(region_dir: pathlib.Path, worker: Worker,
                                                                    tmp_path: pathlib.Path) -> None:
    """What the VM's packet devices do today (virt-synthd does not wire them): each frame sent is
    dropped and counted by the host, and the guest says so."""
    devs = [HostDevice.create(str(region_dir / f"u{i}"), DevClass.PACKET, queues=2) for i in range(2)]
    for d in devs:
        worker.add(d)
    try:
        inputs = guestvm.Inputs.make(SEED)
        recs = selftest_on_host([d.path for d in devs], inputs, tmp_path).step("selftest").of("packet")
        assert [(r["link"], r["tx_dropped"], r["dev_counters"]["tx_drops"], r["result"]) for r in recs] == \
            [("none", 8, 8, "pass")] * 2
        assert [c.ok for c in guestvm.check_packets(recs, inputs)] == [True, False, True, False]
        assert host_packet.stats(devs[0])["tx_no_link"] == 8
    finally:
        for d in devs:
            d.destroy()


def test_the_console_parser() -> None:
    log = ("SeaBIOS\r\n\x1b[?7l\x1b[2J@@SYNTH-IMAGE {\"key\": \"k1\", \"modules\": [\"af_alg\"]}\r\n"
           "@@SYNTH-MODULES loaded=1 failed=2 gcm ctr\r\n@@SYNTH-BEGIN probe\r\n"
           '{"type":"device","dev":"0000:00:03.0"}\r\n[    2.5] kernel: noise\r\n{"type":"trunc\r\n'
           "@@SYNTH-END probe rc=0\r\n@@SYNTH-BEGIN afalg-kat\r\nafalg-kat: x: PASS\r\n@@SYNTH-END afalg-kat rc=77\r\n")
    run = guestvm.parse_console(log)
    assert run.image == {"key": "k1", "modules": ["af_alg"]}
    assert (run.modules_loaded, run.modules_failed) == (1, ["gcm", "ctr"])
    assert run.steps["probe"].records == [{"type": "device", "dev": "0000:00:03.0"}]
    assert run.steps["probe"].text == ["[    2.5] kernel: noise", '{"type":"trunc'] and run.steps["probe"].rc == 0
    assert run.steps["afalg-kat"].rc == 77 and not run.done
    with pytest.raises(FileNotFoundError, match="did not run step 'selftest'"):
        run.step("selftest")


def test_the_command_line_fits_the_kernels_limit() -> None:
    inputs = guestvm.Inputs.make(SEED)
    assert len(inputs.cmdline()) <= guestvm.CMDLINE_MAX and inputs.cmdline() == guestvm.Inputs.make(SEED).cmdline()
    inputs.data = bytes(1000)
    with pytest.raises(ValueError, match="kernel command line would be"):
        inputs.cmdline()


# ---- the VM ----


@dataclass
class Boot:
    pin: str
    console: str
    run: guestvm.GuestRun
    seconds: float


@dataclass
class E2E:
    inputs: guestvm.Inputs
    image: guestimage.GuestImage
    xml: str
    boots: dict[str, Boot]


def boot(conn: Any, xml: str, console_log: pathlib.Path, pin: str) -> Boot:
    t0 = time.monotonic()
    console = guestvm.run_domain(conn, xml, str(console_log), timeout=90)
    (console_log.parent / f"console-{pin}.log").write_text(console)  # kept for a failure's report
    return Boot(pin, console, guestvm.parse_console(console), time.monotonic() - t0)


@pytest.fixture(scope="module")
def e2e() -> Iterator[E2E]:
    from libvirt_synth.xml import connect

    subprocess.run(["make", "-s", "-C", str(ROOT), "guest-inputs"], check=True)
    image = guestimage.build()
    libvirtctl.ensure_running()
    base = pathlib.Path(tempfile.mkdtemp(prefix="synth-e2e-", dir="/var/tmp"))
    base.chmod(0o755)  # QEMU (libvirt-qemu) reads the kernel and initrd from here
    image = guestimage.publish(image, base / "image")
    inputs = guestvm.Inputs.make(SEED)
    console_log = base / "console.log"
    xml = guestvm.domain_xml(NAME, UUID, str(image.kernel), str(image.initrd), inputs.cmdline(), DEVICES,
                             str(console_log))
    (base / "domain.xml").write_text(xml)
    daemon: Daemon | None = None
    conn = connect.open_connection("qemu:///system")
    boots: dict[str, Boot] = {}
    try:
        for i, pin in enumerate(PINS):
            cfg = base / f"virt-synthd-{pin}.toml"
            cfg.write_text(f'[plugins.pin]\ncrypto = "{pin}"\n')
            daemon = Daemon(base, "--qemu-user", "libvirt-qemu", "--config", str(cfg), regions=SHM).start()
            if i == 0:
                hookinstall.install("/", daemon.socket)
                libvirtctl.restart_libvirtd()  # libvirt reads its hooks when it starts
                conn = connect.open_connection("qemu:///system")
            boots[pin] = boot(conn, xml, console_log, pin)
            daemon.stop()
            daemon = None
        yield E2E(inputs, image, xml, boots)
    finally:
        libvirtctl.virsh("destroy", NAME, check=False)
        libvirtctl.virsh("undefine", NAME, check=False)
        hookinstall.remove("/")
        libvirtctl.restart_libvirtd()
        if daemon is not None:
            daemon.stop()
        for n in REGIONS:
            (SHM / n).unlink(missing_ok=True)
        shutil.rmtree(base, ignore_errors=True)


@vm
@pytest.mark.slow
@pytest.mark.parametrize("pin", PINS)
def test_the_guest_finds_its_devices_on_the_pci_bus(e2e: E2E, pin: str) -> None:
    run = e2e.boots[pin].run
    assert run.image["key"] == e2e.image.key and run.done, e2e.boots[pin].console[-3000:]
    probe = run.step("probe")
    devs = probe.of("device")
    assert probe.rc == 0 and [d["name"] for d in devs] == REGIONS
    assert [d["class"] for d in devs] == ["crypto", "compress", "packet", "packet"]
    for d in devs:
        assert (d["pci_vendor"], d["pci_device"], d["abi"]) == ("0x1af4", "0x1110",
                                                               f"{lib.SYNTH_ABI_MAJOR}.{lib.SYNTH_ABI_MINOR}")
        assert d["bar2_size"] == d["region_size"] == 4 << 20 and d["dev_status"] == 1  # READY
        assert int(d["features_accepted"], 16) & 1 and d["dev"].startswith("0000:00:")
    crypto, comp = devs[0], devs[1]
    assert crypto["backend"] == pin  # the plugin the host advertises: what the daemon was pinned to
    want = {"openssl": ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305", "aes-256-cbc-hmac-sha256", "hmac-sha256"],
            "ipsec-mb": IPSECMB_ALGS}[pin]
    assert crypto["algorithms"] == want
    assert comp["algorithms"] == ["deflate", "zlib", "gzip", "zstd", "lz4"]


@vm
@pytest.mark.slow
@pytest.mark.parametrize("pin", PINS)
def test_every_result_matches_the_hosts_own_computation(e2e: E2E, pin: str) -> None:
    run = e2e.boots[pin].run
    checks = guestvm.check(run, e2e.inputs, packets=False)
    assert not failed(checks)
    st = run.step("selftest")
    # What was checked, so that an empty selftest cannot pass: every algorithm of each device.
    algs = {"openssl": 5, "ipsec-mb": len(IPSECMB_ALGS)}[pin]
    assert len(st.of("crypto")) == algs and len(st.of("crypto-burst")) == 1
    assert len(st.of("compress")) == len(st.of("stream")) == 5
    assert [r["alg"] for r in st.of("decompress")] == [a for a, _, _ in e2e.inputs.unz] == ["gzip", "lz4", "zstd"]


@vm
@pytest.mark.slow
def test_the_same_image_gets_identical_results_from_another_crypto_plugin(e2e: E2E) -> None:
    a, b = (e2e.boots[p].run for p in PINS)
    both = set(IPSECMB_ALGS)  # what ipsec-mb serves; openssl serves more
    assert a.portable(both) == b.portable(both)
    assert len([line for line in a.portable(both) if '"type": "crypto"' in line]) == len(both)
    # The devices really were served by different plugins.
    assert [d["backend"] for d in a.step("probe").of("device")][:1] == ["openssl"]
    assert [d["backend"] for d in b.step("probe").of("device")][:1] == ["ipsec-mb"]


@vm
@pytest.mark.slow
def test_the_af_alg_plugin_passes_its_known_answers_in_the_guest_kernel(e2e: E2E) -> None:
    run = e2e.boots[PINS[0]].run
    assert run.modules_failed == [] and run.modules_loaded == len(run.image["modules"]) > 0
    kat = run.step("afalg-kat")
    assert kat.rc == 0, "\n".join(kat.text)
    assert any("plugin af-alg: kernel crypto API" in t for t in kat.text)
    passes = [t for t in kat.text if t.endswith(": PASS")]
    assert len(passes) == 6 + 4 and not [t for t in kat.text if "FAIL" in t or "SKIP" in t]
    # The plugin's limits (native/tests/afalg_kat.c): AAD of 65535 bytes, checked against our own
    # AES-GCM; an op too large for the kernel socket refused at once (the run did not hang); an op
    # of 128 KiB served; sessions stopped at the descriptor budget.
    for name in ("aad-65535", "op-too-big-for-the-socket", "op-of-128-KiB", "descriptor-budget"):
        assert f"afalg-kat: {name}: PASS" in kat.text, name
    tag = next(t for t in kat.text if t.startswith("afalg-kat: aad-65535 tag=")).rpartition("=")[2]
    aad = bytes((i * 7) & 0xFF for i in range(65535))
    sealed = AESGCM(bytes(range(32))).encrypt(b"\x24" * 12, bytes(i & 0xFF for i in range(1000)), aad)
    assert tag == sealed[-16:].hex()


@vm
@pytest.mark.slow
def test_packet_devices_send_and_the_host_counts_every_frame(e2e: E2E) -> None:
    recs = e2e.boots[PINS[0]].run.step("selftest").of("packet")
    assert len(recs) == 2
    for r in recs:
        assert r["open"] == "ok" and r["sent"] == e2e.inputs.frames
        assert r["tx_ok"] + r["tx_dropped"] == r["sent"]
        host = r["dev_counters"]  # the header's counters: written by the host
        assert host["tx_frames"] + host["tx_drops"] == r["sent"]


@vm
@pytest.mark.slow
def test_frames_cross_the_virtual_wire_between_the_two_packet_devices(e2e: E2E) -> None:
    recs = e2e.boots[PINS[0]].run.step("selftest").of("packet")
    assert not failed(guestvm.check_packets(recs, e2e.inputs)), json.dumps(recs)[:2000]


@vm
@pytest.mark.slow
def test_bench_runs_on_every_device(e2e: E2E) -> None:
    bench = e2e.boots[PINS[0]].run.step("bench")
    lines = bench.of("bench")
    assert bench.rc == 0 and [r["class"] for r in lines] == ["crypto", "compress", "packet", "packet"]
    for r in lines:
        assert r["ops"] > 0 and r["errors"] == 0 and r["elapsed_us"] > 0


@vm
@pytest.mark.slow
def test_the_image_build_is_reproducible(e2e: E2E) -> None:
    """The same inputs give the same key and byte-identical files (no timestamps, sorted cpio)."""
    again = guestimage.build(force=True)
    assert again.key == e2e.image.key
    assert again.manifest["sha256"] == e2e.image.manifest["sha256"]
    assert again.initrd.read_bytes() == e2e.image.initrd.read_bytes()
