# SPDX-License-Identifier: Apache-2.0
"""A real VM moves with its synthetic devices between two libvirtd "hosts" (the two-host
testbed: own mount namespaces, own /dev/shm, own virt-synthd), whose daemons serve AES-GCM with
different plugins: ipsec-mb on a, openssl on b. The guest runs the soak workload all along
(AES-256-GCM with device-chosen IVs, ChaCha20-Poly1305, a zstd compression stream), each created
once. It live-migrates a -> b -> a, then is saved on a and restored on b, all with `virt-synth
migrate / save / restore`. The host then checks every result the guest printed against its own
computation: no failed op, no lost op, the same session and stream ids throughout, no IV used
twice, and the stream's output, across every move, one zstd frame that decodes to what the guest
fed it.

And the failures: with the destination daemon down, or libvirt refusing, nothing moves; a
migration aborted part-way (domjobabort) leaves the source serving and nothing at the
destination; plain `virsh migrate` is refused by the hook. Root only; about two minutes."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import twohostbed
from twohostbed import Bed
from waiting import until

from libvirt_synth.testbed import soak
from libvirt_synth.testbed import vm as guestvm
from libvirt_synth.testbed.hosts import Host

why_not = twohostbed.why_not()
pytestmark = [pytest.mark.skipif(why_not is not None, reason=why_not or ""), pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "libvirt_synth.cli"]
PINS = ("ipsec-mb", "openssl")  # AES-GCM on host a, on host b
SEED = 20261203
VNF = ("synth-mig-vnf", "3d0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c30")
REGION = "synth-mig-vnf-0"
ZREGION = "synth-mig-vnf-1"


def pin(plugin: str) -> str:
    return f'[plugins.pin]\n"aes-256-gcm" = "{plugin}"\n'


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    with twohostbed.bed("synth-mig-", pin(PINS[0]), pin(PINS[1])) as b:
        yield b


def start_vnf(bed: Bed, host: Host, compress: bool = False) -> tuple[Any, soak.SerialSink, guestvm.Inputs]:
    name, uuid = VNF
    sink = soak.SerialSink(str(bed.base / f"{name}.console.sock"))
    inputs = guestvm.Inputs.make(SEED, steps=("probe", "soak"))
    cmdline = inputs.cmdline() + " " + soak.cmdline(0, gap_ms=20)
    xml = guestvm.domain_xml(name, uuid, str(bed.image.kernel), str(bed.image.initrd), cmdline,
                             [f"crypto:name={REGION},caps=aes-256-gcm"]
                             + ([f"compress:name={ZREGION},caps=zstd"] if compress else []),
                             str(bed.base / f"{name}.console.log"))
    dom = host.conn.createXML(sink.serial_xml(xml), 0)
    return dom, sink, inputs


def ops(console: soak.SerialSink) -> int:
    return console.text().count('"type":"soak"')


def more_ops(console: soak.SerialSink, n: int = 20, timeout: float = 60) -> None:
    start = ops(console)
    until(lambda: ops(console) >= start + n, f"{n} more soak operations", timeout)


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"virt-synth {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
    return r


def migrate(src: Host, dst: Host, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli("migrate", VNF[0], dst.uri, "--connect", src.uri, "--daemon", src.socket,
               "--dest-daemon", dst.socket, "--migrateuri", dst.migrate_uri(), "--listen-address", "127.0.0.1",
               "--json", *extra, check=check)


def served(host: Host) -> list[str]:
    return sorted(d["name"] for d in host.daemon_call("devices.list") if d["served"])


def gcm_plugin(host: Host) -> str:
    """The plugin serving the guest's AES-GCM session on this host."""
    live = host.daemon_call("device.show", name=REGION)["sessions_live"]
    return str(next(s["plugin"] for s in live if s["alg"] == "aes-256-gcm"))


def running_on(host: Host) -> bool:
    return any(d.name() == VNF[0] and d.isActive() for d in host.conn.listAllDomains())


def test_a_vnf_moves_a_b_a_then_saved_on_a_restored_on_b_and_never_misses_an_operation(bed: Bed) -> None:
    a, b = bed.a, bed.b
    dom, console, inputs = start_vnf(bed, a, compress=True)
    try:
        more_ops(console, 30, 120)
        report = json.loads(migrate(a, b).stdout)
        assert sorted(d["name"] for d in report["devices"]) == [REGION, ZREGION]
        assert gcm_plugin(b) == PINS[1]
        assert running_on(b) and not running_on(a) and served(b) == [REGION, ZREGION] and served(a) == []
        assert REGION in b.shm() and REGION not in a.shm()
        assert a.daemon_call("migrations.list") == [] and b.daemon_call("migrations.list") == []
        more_ops(console)
        migrate(b, a)
        assert gcm_plugin(a) == PINS[0]
        assert running_on(a) and served(a) == [REGION, ZREGION] and served(b) == []
        more_ops(console)
        save = bed.base / "vnf.save"
        cli("save", VNF[0], str(save), "--connect", a.uri, "--daemon", a.socket, "--for-daemon", b.socket, "--json")
        assert not running_on(a) and served(a) == [] and REGION not in a.shm()
        assert (bed.base / "vnf.save.synth").exists()
        cli("restore", str(save), "--connect", b.uri, "--daemon", b.socket, "--json")
        assert running_on(b) and served(b) == [REGION, ZREGION]
        more_ops(console)
    finally:
        for h in (a, b):
            h.destroy_domains()
        log = console.close()
    res = soak.check_inputs(log, inputs, require=("aes-256-gcm", "chacha20-poly1305", "zstd-stream"))
    assert res.ok, "\n".join(res.problems)
    assert res.ops >= 70 and res.failed == 0
    # The guest used one AES-GCM and one ChaCha20-Poly1305 session and one zstd stream from start to end.
    assert len(res.sessions) == 3, res.sessions


def test_a_move_the_destination_daemon_cannot_take_leaves_the_vnf_where_it_was(bed: Bed) -> None:
    a, b = bed.a, bed.b
    dom, console, _ = start_vnf(bed, a)
    try:
        more_ops(console, 5, 120)
        b.stop_daemon()
        try:
            r = migrate(a, b, check=False)
        finally:
            b.start_daemon()
        assert r.returncode == 1 and "nothing moved" in r.stderr, r.stderr
        # libvirt refuses (a destination URI that does not answer): nothing moves either.
        r = cli("migrate", VNF[0], "qemu+unix:///system?socket=/nonexistent", "--connect", a.uri, "--daemon",
                a.socket, "--dest-daemon", b.socket, check=False)
        assert r.returncode == 1, r.stderr
        # A plain virsh migrate is refused by b's hook: the devices' state would not follow.
        with pytest.raises(OSError, match="virt-synth migrate"):
            a.migrate(VNF[0], b, params=a.migrate_params())
        assert running_on(a) and served(a) == [REGION] and served(b) == [] and REGION not in b.shm()
        assert a.daemon_call("migrations.list") == [] and b.daemon_call("migrations.list") == []
        more_ops(console, 5)
    finally:
        for h in (a, b):
            h.destroy_domains()
        console.close()


def test_an_aborted_migration_leaves_the_source_serving_and_nothing_at_the_destination(bed: Bed) -> None:
    a, b = bed.a, bed.b
    dom, console, _ = start_vnf(bed, a)
    try:
        more_ops(console, 5, 120)
        # Slow the copy down so that the abort lands while it runs.
        dom.migrateSetMaxSpeed(1, 0)  # MiB/s

        def abort() -> None:
            until(lambda: dom.jobInfo()[0] != 0, "the migration job to start", 30)
            time.sleep(0.5)
            dom.abortJob()

        t = threading.Thread(target=abort)
        t.start()
        r = migrate(a, b, check=False)
        t.join()
        assert r.returncode == 1 and "nothing moved" in r.stderr, r.stderr
        dom.migrateSetMaxSpeed(0, 0)
        until(lambda: b.daemon_call("migrations.list") == [], "b to drop the expected domain", 20)
        assert running_on(a) and served(a) == [REGION] and served(b) == [] and REGION not in b.shm()
        assert a.daemon_call("migrations.list") == []
        more_ops(console, 5)
    finally:
        for h in (a, b):
            h.destroy_domains()
        console.close()
