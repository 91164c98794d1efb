# SPDX-License-Identifier: Apache-2.0
"""Hot-plug in a real VM: `virt-synth attach` gives a running TCG guest a crypto device, which
the guest finds on its PCI bus (ACPI hot-plug), opens and uses (its result checked here against
`cryptography`), and closes; `virt-synth detach` takes it away once the guest let go. Afterwards
nothing is left: no device in the daemon, no region, no <shmem> or metadata in the live XML or the
definition. A device that cannot be attached is refused before anything changes. Runs on host a of
the two-host testbed (its own libvirtd, virt-synthd and /dev/shm); about 30 s."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import twohostbed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twohostbed import Bed
from waiting import until

from libvirt_synth.testbed import soak
from libvirt_synth.testbed import vm as guestvm

why_not = twohostbed.why_not()
pytestmark = [pytest.mark.skipif(why_not is not None, reason=why_not or ""), pytest.mark.slow]

CLI = [sys.executable, "-m", "libvirt_synth.cli"]
VM = ("synth-hp-vm", "5e0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c32")
SEED = 20261204


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    with twohostbed.bed("synth-hp-", "", "") as b:
        yield b


def events(sink: soak.SerialSink, kind: str | None = None) -> list[dict[str, Any]]:
    out = []
    for line in sink.text().splitlines():
        line = line.strip()
        if line.startswith('{"type":"watch"'):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if kind is None or r.get("event") == kind:
                out.append(r)
    return out


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"virt-synth {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
    return r


def test_a_device_attached_to_a_running_guest_is_found_used_and_detached_without_a_trace(bed: Bed) -> None:
    a = bed.a
    name, uuid = VM
    sink = soak.SerialSink(str(bed.base / "hp.sock"))
    inputs = guestvm.Inputs.make(SEED, steps=("watch",))
    xml = guestvm.domain_xml(name, uuid, str(bed.image.kernel), str(bed.image.initrd),
                             inputs.cmdline() + " synth.watch_ms=180000", [], str(bed.base / "hp.log"))
    dom = a.conn.defineXML(sink.serial_xml(xml))
    dom.create()
    where = ("--connect", a.uri, "--socket", a.socket)
    try:
        until(lambda: "@@SYNTH-BEGIN watch" in sink.text(), "the guest's watch step", 90)
        r = json.loads(cli("attach", name, "--device", "crypto:caps=aes-256-gcm", "--live", "--config", *where,
                           "--json").stdout)
        dev = r["attached"]["name"]
        assert [d["name"] for d in a.daemon_call("devices.list") if d["served"]] == [dev]
        assert dev in a.shm()
        assert dev in dom.XMLDesc(0) and dev in dom.XMLDesc(2)  # live, and the definition (--config)
        until(lambda: events(sink, "used"), "the guest to find and use the new device", 60)
        used = events(sink, "used")[0]
        assert used["status"] == "ok", used
        want = AESGCM(inputs.key[:32]).encrypt(inputs.iv[:12], inputs.data, inputs.aad)
        assert bytes.fromhex(used["ciphertext"]) + bytes.fromhex(used["tag"]) == want
        # A second device of the same name is refused before anything changes.
        r2 = cli("attach", name, "--device", f"crypto:name={dev}", *where, check=False)
        assert r2.returncode == 1 and dev in r2.stderr, r2.stderr
        assert [d["name"] for d in a.daemon_call("devices.list") if d["served"]] == [dev]
        cli("detach", name, dev, "--live", "--config", *where)
        until(lambda: events(sink, "removed"), "the guest to see the device go", 30)
        assert a.daemon_call("devices.list") == [] and a.daemon_call("domains.list") == []
        assert dev not in a.shm()
        assert dev not in dom.XMLDesc(0) and dev not in dom.XMLDesc(2)
        assert "libvirt-synth.org" not in dom.XMLDesc(0)  # no metadata left
    finally:
        a.destroy_domains()
        sink.close()


def test_the_hot_plug_example_of_docs_libvirt_md_runs_as_written(bed: Bed) -> None:
    """The page's block, against a running gw1 whose uuid gives the names it shows; only the
    libvirt URI is this test host's, and the daemon is found through $LIBVIRT_SYNTH_SOCKET."""
    import os
    import pathlib
    import re

    a = bed.a
    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "libvirt.md").read_text()
    section = text[text.index("## Hot-plug"):]
    code = re.search(r"^```text\n(.*?)^```", section, flags=re.M | re.S).group(1)  # type: ignore[union-attr]
    assert code.count("qemu:///system") == 3
    sink = soak.SerialSink(str(bed.base / "gw1.sock"))
    inputs = guestvm.Inputs.make(SEED, steps=("watch",))
    xml = guestvm.domain_xml("gw1", "5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20", str(bed.image.kernel),
                             str(bed.image.initrd), inputs.cmdline() + " synth.watch_ms=180000", [],
                             str(bed.base / "gw1.log"))
    dom = a.conn.defineXML(sink.serial_xml(xml))
    dom.create()
    try:
        until(lambda: "@@SYNTH-BEGIN watch" in sink.text(), "the guest's watch step", 90)
        env = dict(os.environ, LIBVIRT_SYNTH_SOCKET=a.socket,
                   PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", code.replace("qemu:///system", a.uri)], env=env,
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, f"docs/libvirt.md, hot-plug:\n{code}\n{r.stdout}{r.stderr}"
        assert [d["name"] for d in a.daemon_call("devices.list")] == ["synth-5a1b6c3e0d2f-0"]
        # The guest saw both devices come, used the crypto one, and saw the compression one go.
        until(lambda: len(events(sink, "removed")) == 1, "the guest to see the detached device go", 30)
        assert len(events(sink, "added")) == 2 and [u["status"] for u in events(sink, "used")] == ["ok"]
        assert "synth-5a1b6c3e0d2f-1" not in dom.XMLDesc(0) and "synth-5a1b6c3e0d2f-1" not in dom.XMLDesc(2)
        # The first attach was live only: the running domain has it, the definition never had it.
        assert "synth-5a1b6c3e0d2f-0" in dom.XMLDesc(0) and "synth-5a1b6c3e0d2f-0" not in dom.XMLDesc(2)
    finally:
        a.destroy_domains()
        sink.close()
