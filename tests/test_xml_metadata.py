# SPDX-License-Identifier: Apache-2.0
"""libvirt_synth.hook.metadata, the hook's reader of the project's <metadata> element: what the
generator writes comes back as virt-synthd's domain.create device list; it stays light to import;
it rejects what it cannot trust."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from libvirt_synth import errors
from libvirt_synth.daemon.checks import NAME_RE, parse_device
from libvirt_synth.hook import metadata
from libvirt_synth.xml import designer, spec

DATA = pathlib.Path(__file__).parent / "data" / "xml"
MINIMAL = (DATA / "minimal-in.xml").read_text()


def test_round_trip_every_field() -> None:
    specs = [spec.parse_cli("crypto:caps=aes-256-gcm+chacha20-poly1305,kpi.throughput_gbps=12.5,kpi.sessions=10000,"
                            "size=8M,queues=4,ring-entries=1024,plugin=openssl"),
             spec.parse_cli("packet:channels=2,opt.link=wire:peer.0,opt.link.1=tap:vnf1,opt.max_frame=9216"),
             spec.parse_cli("compress:caps=deflate,size=1M")]
    result = designer.inject(MINIMAL, specs)
    uuid, name, devices = metadata.parse_devices(result.xml)
    assert (uuid, name) == ("0f3c2a1e-7b4d-4c8a-9e21-5d6f7a8b9c0d", "minimal")
    prefix = designer.region_prefix(uuid)
    assert devices == [
        {"name": f"{prefix}0", "class": "crypto", "size": 8 << 20, "queues": 4, "ring_entries": 1024,
         "plugin": "openssl", "capabilities": ["aes-256-gcm", "chacha20-poly1305"],
         "kpis": {"throughput_gbps": 12.5, "sessions": 10000}, "options": {}},
        {"name": f"{prefix}1", "class": "packet", "size": 4 << 20, "queues": 4, "ring_entries": 256,
         "capabilities": [], "kpis": {}, "options": {"link": "wire:peer.0", "link.1": "tap:vnf1", "max_frame": "9216"}},
        {"name": f"{prefix}2", "class": "compress", "size": 1 << 20, "queues": 1, "ring_entries": 256,
         "capabilities": ["deflate"], "kpis": {}, "options": {}},
    ]
    assert json.loads(json.dumps(devices)) == devices, "the device list goes over JSON-RPC as it is"


def test_the_daemon_accepts_what_the_hook_reads() -> None:
    result = designer.inject(MINIMAL, [spec.parse_cli("crypto:caps=aes-256-gcm,kpi.throughput_gbps=12"),
                                       spec.parse_cli("packet:opt.link=wire:x")])
    _, _, devices = metadata.parse_devices(result.xml)
    for i, d in enumerate(devices):
        assert NAME_RE.match(d["name"]) and len(d["name"]) <= 31
        parsed = parse_device(d, f"devices[{i}]")
        assert (parsed["class"], parsed["size"], parsed["queues"], parsed["ring_entries"]) == (
            d["class"], d["size"], d["queues"], d["ring_entries"])
        assert parsed["spec"] == {k: d[k] for k in ("capabilities", "kpis", "options")}


def test_names_for_any_uuid_fit_the_daemon() -> None:
    for u in ("00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
              "ffffffffffffffffffffffffffffffff"):
        name = f"{designer.region_prefix(u)}{designer.MAX_QUEUES * 1000}"
        assert NAME_RE.match(name) and len(name) <= 31, name


def test_a_domain_without_our_metadata_has_no_devices() -> None:
    assert metadata.parse_devices(MINIMAL) == ("0f3c2a1e-7b4d-4c8a-9e21-5d6f7a8b9c0d", "minimal", [])
    other = MINIMAL.replace("<memory", "<metadata><x:y xmlns:x='urn:x'/></metadata>\n  <memory")
    assert metadata.parse_devices(other)[2] == []


def good_xml() -> str:
    return designer.inject(MINIMAL, [spec.parse_cli("crypto:caps=aes-256-gcm")]).xml


@pytest.mark.parametrize(("edit", "message"), [
    (('class="crypto"', 'class="gpu"'), "class 'gpu' is not one of crypto, compress, packet"),
    (('size="4194304"', 'size="big"'), "size='big' is not an integer"),
    ((' queues="1"', ""), "attribute 'queues' is missing"),
    (('ring-entries="256"', 'ring-entries="-1"'), "must be positive"),
    (("<synth:capability>aes-256-gcm</synth:capability>", "<synth:capability> </synth:capability>"),
     "empty <synth:capability>"),
    (("<name>minimal</name>", ""), "no <uuid> or no <name>"),
    (("</synth:devices>", "</synth:devices><synth:devices xmlns:synth='https://libvirt-synth.org/xmlns/domain/1'/>"),
     "2 <synth:devices> elements"),
    (("<metadata>", "<metadata><s2:devices xmlns:s2='https://libvirt-synth.org/xmlns/domain/2'/>"),
     "written by a newer libvirt-synth"),
    (("</domain>", "</domian>"), "not well-formed"),
])
def test_bad_metadata_is_rejected(edit: tuple[str, str], message: str) -> None:
    text = good_xml()
    assert edit[0] in text
    with pytest.raises(errors.ValueError) as info:
        metadata.parse_devices(text.replace(*edit))
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_duplicate_device_names_are_rejected() -> None:
    text = good_xml()
    start = text.index("<synth:device ")
    end = text.index("</synth:device>") + len("</synth:device>")
    doubled = text[:end] + text[start:end] + text[end:]
    with pytest.raises(errors.ValueError, match="names a device twice"):
        metadata.parse_devices(doubled)


def test_import_is_light() -> None:
    """The hook imports it on every VM start: the standard library only, no lxml, no cffi."""
    code = ("import sys, libvirt_synth.hook.metadata as m; "
            "print(sorted(k for k in sys.modules if k.split('.')[0] in "
            "('lxml', 'cffi', '_cffi_backend', 'libvirt', 'yaml', 'libvirt_synth')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["libvirt_synth", "libvirt_synth.capabilities", "libvirt_synth.errors", "libvirt_synth.hook",
                         "libvirt_synth.hook.metadata"]
    # ... and none of the slow parts of it.
    code = ("import sys; before = set(sys.modules); import libvirt_synth.hook.metadata; "
            "print(sorted(set(sys.modules) - before))")
    new = eval(subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                              cwd=pathlib.Path(__file__).parent.parent).stdout)
    assert not {"re", "dataclasses", "typing", "json", "inspect"} & set(new), new
