# SPDX-License-Identifier: Apache-2.0
"""Placement decisions and their explanations over the inventories of tests/data/inventory (see its
build.py for what each host is), the fleet loader and its index, the OpenStack export, and the
round trip VNFD -> place -> xml -> define on test:///default."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest

from libvirt_synth import vnfd
from libvirt_synth.hook import metadata
from libvirt_synth.inventory import model
from libvirt_synth.placement import fleet as loader
from libvirt_synth.placement import openstack
from libvirt_synth.placement import rank as placement

ROOT = pathlib.Path(__file__).resolve().parent.parent
INV = ROOT / "tests/data/inventory"
EX = ROOT / "examples/vnfd"
CLI = [sys.executable, "-m", "libvirt_synth.cli"]


def fleet() -> list[placement.Host]:
    f = placement.load([str(INV)])
    assert [p for p, _ in f.unreadable] == [str(INV / "broken.json")]
    return f.hosts


def vdu(name: str, which: str | None = None) -> vnfd.Vdu:
    return vnfd.load(str(EX / f"{name}.yaml")).vdu(which)


def test_ipsec_gateway_ranking_and_reasons() -> None:
    r = placement.rank(fleet(), vdu("ipsec-gateway"))
    assert [v.host for v in r.ranked] == ["host1", "host4", "host5", "host2"]
    # host2 fits but cannot serve the preferred ChaCha20: after every host that can.
    host2 = r.ranked[-1]
    assert host2.preferred_met == [] and host2.preferred_missed == ["chacha20-poly1305 not offered (no plugin "
                                                                    "serves it)"]
    assert [v.explain() for v in r.rejected] == [
        "host3: aes-256-gcm 6 Gb/s free < 12 Gb/s asked; aes-256-gcm 12 Gb/s on one device > 6 Gb/s one worker "
        "core serves; aes-256-gcm latency 60 us > 50 us asked",
        "host7: aes-256-gcm 8.1 Gb/s free < 12 Gb/s asked",
    ]
    # Packet I/O is not measured in these inventories: a note, never a rejection.
    assert all("io packets/s not measured on this host: 2,000,000 packets/s not checked" in v.notes for v in r.ranked)


def test_measured_packet_io_is_checked_like_any_rate() -> None:
    """With packet I/O calibrated, the VDU's packets/s are checked against what is free, and what one
    device asks against what one worker core delivers."""
    doc = json.loads((INV / "host1.json").read_text())
    doc["capacity"]["io"] = {"class": "packet", "kind": "io", "plugin": None, "source": "calibrated",
                             "gbps_per_core": 60.0, "throughput_gbps": 240.0, "ops_per_s": None,
                             "packets_per_s": 20e6, "packets_per_s_per_core": 5e6, "latency_us": 0.2, "size": 1500}
    gw = vdu("ipsec-gateway").demand()  # io: 2,000,000 packets/s on one device
    v = placement.judge(placement.Host.from_inventory(doc), gw)
    assert v.fits and not any("packets/s" in n for n in v.notes), v.notes
    doc["committed"]["by_capability"]["io"] = {"packets_per_s": 19e6}
    v = placement.judge(placement.Host.from_inventory(doc), gw)
    assert not v.fits and v.reasons == ["io 1,000,000 packets/s free < 2,000,000 packets/s asked"]
    doc["committed"]["by_capability"]["io"] = {}
    doc["capacity"]["io"] |= {"gbps_per_core": 6.0, "throughput_gbps": 240.0, "packets_per_s_per_core": 5e5}
    v = placement.judge(placement.Host.from_inventory(doc), gw)
    assert not v.fits and v.reasons == ["io 2,000,000 packets/s on one device > 500,000 packets/s one worker "
                                        "core serves"], v.reasons


def test_committed_capacity_is_subtracted() -> None:
    hosts = {h.name: h for h in fleet()}
    # host5: 8 cores x 24 Gb/s = 192, 152 committed: 40 free, 28 after this VDU -> 15 % headroom.
    v = placement.judge(hosts["host5"], vdu("ipsec-gateway").demand())
    assert v.fits and v.headroom == pytest.approx((192 - 152 - 12) / 192)
    doc = json.loads((INV / "host5.json").read_text())
    doc["committed"]["by_capability"]["aes-256-gcm"]["throughput_gbps"] = 185.0
    full = placement.Host.from_inventory(doc)
    v = placement.judge(full, vdu("ipsec-gateway").demand())
    assert not v.fits and v.reasons == ["aes-256-gcm 7 Gb/s free < 12 Gb/s asked"]
    doc["committed"]["by_capability"]["aes-256-gcm"]["throughput_gbps"] = 500.0
    v = placement.judge(placement.Host.from_inventory(doc), vdu("ipsec-gateway").demand())
    assert v.reasons == ["aes-256-gcm 0 Gb/s free < 12 Gb/s asked"]  # over-committed shows as nothing free


def test_compression_proxy_missing_plugins_and_latency() -> None:
    r = placement.rank(fleet(), vdu("compression-proxy"))
    assert [v.host for v in r.ranked] == ["host1", "host5", "host2"]
    why = {v.host: v.reasons for v in r.rejected}
    assert why["host4"] == ["lz4 not offered (no plugin serves it)", "zstd not offered (no plugin serves it)"]
    assert why["host7"] == ["zstd 0.58 Gb/s free < 1.2 Gb/s asked",
                            "zstd 0.6 Gb/s on one device > 0.58 Gb/s one worker core serves"]
    assert "lz4 latency 20.9 us > 20 us asked" in why["host3"]


def test_one_device_gets_one_worker_core() -> None:
    """virt-synthd serves each device from one worker thread: a host with enough cores in all can
    still not give one device more than a core does; two devices can."""
    hosts = {h.name: h for h in fleet()}
    one = vnfd.loads("synth_vnfd: 1\ndescriptor_id: z\nvdus: {z: {devices: [{class: compress, capabilities: "
                     "[{capability: zstd, kpis: {throughput_gbps: 1.2}}]}]}}\n").vdu()
    v = placement.judge(hosts["host1"], one.demand())  # 4 cores x 0.7 Gb/s of zstd
    assert v.reasons == ["zstd 1.2 Gb/s on one device > 0.7 Gb/s one worker core serves"]
    two = vnfd.load(str(EX / "compression-proxy.yaml")).vdu()  # 2 x 0.6
    assert placement.judge(hosts["host1"], two.demand()).fits
    smf = placement.judge(hosts["host3"], vdu("packet-core", "smf").demand())
    assert "hmac-sha256 200,000 ops/s on one device > 95,833 ops/s one worker core serves" in smf.reasons


def test_sessions_beyond_what_one_device_holds() -> None:
    text = (EX / "ipsec-gateway.yaml").read_text().replace("sessions: 1000", "sessions: 10000")
    r = placement.rank(fleet(), vnfd.loads(text).vdu())
    assert r.ranked == []
    assert "aes-256-gcm 10,000 sessions on one device > 1,024 a device holds" in r.rejected[0].reasons


def test_ops_per_s_and_each_vdu_on_its_own() -> None:
    smf = placement.rank(fleet(), vdu("packet-core", "smf"))
    assert [v.host for v in smf.rejected] == ["host3"]
    assert smf.rejected[0].reasons[0] == "hmac-sha256 95,833 ops/s free < 200,000 ops/s asked"
    upf = placement.rank(fleet(), vdu("packet-core", "upf"))
    assert upf.ranked[0].host == "host5" and [v.host for v in upf.rejected] == ["host3"]


def test_unmeasured_capacity_is_a_note_not_a_rejection() -> None:
    doc = json.loads((INV / "host1.json").read_text())
    doc["capacity"]["aes-256-gcm"] |= {"throughput_gbps": None, "ops_per_s": None, "latency_us": None}
    v = placement.judge(placement.Host.from_inventory(doc), vdu("ipsec-gateway").demand())
    assert v.fits
    assert "aes-256-gcm Gb/s not measured on this host: 12 Gb/s not checked" in v.notes
    assert "aes-256-gcm latency not measured on this host: <= 50 us not checked" in v.notes


@pytest.fixture
def indexed(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> tuple[pathlib.Path, Any]:
    """A copy of tests/data/inventory, loaded once with an index; and a function that loads it
    again. RACY_NS 0: the files were just copied, and are trusted at once."""
    monkeypatch.setattr(loader, "RACY_NS", 0)
    d = tmp_path / "fleet"
    shutil.copytree(INV, d)
    index = str(tmp_path / "cache" / "index")

    def load() -> placement.Fleet:
        return placement.load([str(d)], index=index)

    first = load()
    assert (first.parsed, first.from_index, len(first.hosts)) == (7, 0, 6)
    return d, load


def test_index_reuses_unchanged_inventories(indexed: tuple[pathlib.Path, Any]) -> None:
    d, load = indexed
    first = placement.load([str(d)])
    again = load()
    assert (again.parsed, again.from_index) == (0, 7)
    assert [h.name for h in again.hosts] == [h.name for h in first.hosts]
    assert again.hosts == first.hosts and again.unreadable == first.unreadable


def test_index_rereads_a_changed_file(indexed: tuple[pathlib.Path, Any]) -> None:
    d, load = indexed
    doc = json.loads((d / "host7.json").read_text())
    doc["committed"]["by_capability"] = {}
    (d / "host7.json").write_text(json.dumps(doc))
    os.utime(d / "host7.json", ns=(1, 1))
    changed = load()
    assert (changed.parsed, changed.from_index) == (1, 6)
    assert [v.host for v in placement.rank(changed.hosts, vdu("ipsec-gateway")).rejected] == ["host3"]
    assert (load().parsed, load().from_index) == (0, 7)


def test_index_reads_a_file_that_appears_and_drops_one_that_disappears(indexed: tuple[pathlib.Path, Any]) -> None:
    d, load = indexed
    doc = json.loads((d / "host7.json").read_text()) | {"host": "host8"}
    (d / "host8.json").write_text(json.dumps(doc))
    appeared = load()
    assert (appeared.parsed, appeared.from_index, len(appeared.hosts)) == (1, 7, 7)
    (d / "host1.json").unlink()
    gone = load()
    assert (gone.parsed, gone.from_index) == (0, 7)
    assert [h.name for h in gone.hosts] == ["host2", "host3", "host4", "host5", "host7", "host8"]
    assert (load().parsed, load().from_index) == (0, 7)  # and the index no longer has it


def test_index_with_a_file_that_breaks_and_mends(indexed: tuple[pathlib.Path, Any], tmp_path: pathlib.Path) -> None:
    d, load = indexed
    doc = json.loads((d / "host7.json").read_text()) | {"host": "host9"}
    (d / "broken.json").write_text(json.dumps(doc))
    mended = load()
    assert mended.parsed == 1 and mended.unreadable == [] and "host9" in [h.name for h in mended.hosts]
    (d / "host2.json").write_text('{"format": "libvirt-synth-inventory", "version": 1, "host": ')
    broke = load()
    assert (broke.parsed, len(broke.hosts)) == (1, 6)
    assert broke.unreadable == [(str(d / "host2.json"), "Expecting value: line 1 column 61 (char 60)")]
    assert load().unreadable == broke.unreadable  # from the index, as it was
    # A corrupt index is ignored.
    pathlib.Path(tmp_path / "cache" / "index").write_bytes(b"garbage")
    assert load().parsed == 7


def test_index_journal_takes_the_files_parsed_again(indexed: tuple[pathlib.Path, Any], tmp_path: pathlib.Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A load that parsed a few files again appends them to the index's journal instead of
    rewriting the index; the next load takes them from there; past JOURNAL_MIN entries (or an
    eighth of the fleet) the index is rewritten whole and the journal goes. A journal cut short is
    read up to its last whole record, and what it lost is parsed again."""
    d, load = indexed
    index = tmp_path / "cache" / "index"
    journal = tmp_path / "cache" / "index.journal"
    before = index.stat()
    assert not journal.exists()

    def change(name: str, by: float) -> None:
        doc = json.loads((d / name).read_text())
        doc["committed"]["by_capability"] = {"aes-256-gcm": {"throughput_gbps": by}}
        (d / name).write_text(json.dumps(doc))

    change("host7.json", 1.5)
    assert (load().parsed, journal.exists()) == (1, True)
    assert (index.stat().st_ino, index.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    change("host2.json", 2.5)
    assert load().parsed == 1
    again = load()
    assert (again.parsed, again.from_index) == (0, 7)
    assert again.hosts == placement.load([str(d)]).hosts  # what a load without any index reads
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-3])  # the second record cut short
    cut = load()  # and, the journal damaged, the index is rewritten whole
    assert cut.parsed == 1 and cut.hosts == again.hosts and not journal.exists()
    assert (load().parsed, load().hosts) == (0, again.hosts)
    before = index.stat()
    monkeypatch.setattr(loader, "JOURNAL_MIN", 1)  # (7 // 8 is 0)
    change("host3.json", 0.5)
    assert load().parsed == 1 and journal.exists() and index.stat().st_ino == before.st_ino
    change("host4.json", 0.5)
    assert load().parsed == 1 and not journal.exists() and index.stat().st_ino != before.st_ino
    assert (load().parsed, load().hosts) == (0, placement.load([str(d)]).hosts)


def test_index_sees_a_file_replaced_with_the_same_size_and_mtime(tmp_path: pathlib.Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A new file renamed over the old one, same size, mtime set back: the inode tells."""
    monkeypatch.setattr(loader, "RACY_NS", 0)
    path = tmp_path / "host7.json"
    shutil.copy(INV / "host7.json", path)
    index = str(tmp_path / "index")
    before = placement.load([str(tmp_path)], index=index).hosts[0]
    text = path.read_text()
    assert '"throughput_gbps": 11.9' in text
    tmp = tmp_path / "host7.new"
    tmp.write_text(text.replace('"throughput_gbps": 11.9', '"throughput_gbps": 10.9'))
    st = path.stat()
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    after = placement.load([str(tmp_path)], index=index)
    assert after.parsed == 1
    assert after.hosts[0].caps["aes-256-gcm"][0] == pytest.approx(before.caps["aes-256-gcm"][0] + 1)


def test_index_does_not_trust_files_changed_near_the_scan(tmp_path: pathlib.Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A file rewritten in place within a timestamp tick of the scan that indexed it keeps its
    mtime, ctime, size and inode: such entries (changed within RACY_NS of that scan) are parsed
    again until a scan sees them older."""
    monkeypatch.setattr(loader, "RACY_NS", 600 * 10**9)  # every file here is "recent"
    path = tmp_path / "host7.json"
    shutil.copy(INV / "host7.json", path)
    index = str(tmp_path / "index")
    assert placement.load([str(tmp_path)], index=index).parsed == 1
    st = path.stat()
    text = path.read_text().replace('"throughput_gbps": 11.9', '"throughput_gbps": 10.9')
    with open(path, "r+") as f:  # same size, same inode; mtime set back
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = placement.load([str(tmp_path)], index=index)
    assert again.parsed == 1 and again.hosts[0].caps["aes-256-gcm"][0] == pytest.approx(20 - 10.9)
    monkeypatch.setattr(loader, "RACY_NS", 0)
    assert placement.load([str(tmp_path)], index=index).parsed == 1  # indexed while recent
    assert placement.load([str(tmp_path)], index=index).parsed == 0  # indexed once old enough


def test_read_head_never_takes_a_cut_text_for_a_whole(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever byte the head ends at (in a number, an exponent, a multi-byte character, the
    whitespace or the comma after the last member wanted), read_head gives what json.loads does."""
    monkeypatch.setattr(model, "HEAD_BYTES", 64)
    wanted = frozenset(("a", "b", "c"))
    for pad in range(70):
        doc = {"a": "x" * pad, "b": "é€😀", "c": 12345.678e-3, "d": [1, 2, 3] * 20}
        for text in (json.dumps(doc, ensure_ascii=False), json.dumps(doc, indent=3, ensure_ascii=False)):
            path = tmp_path / "doc.json"
            path.write_text(text, encoding="utf-8")
            got = model.read_head(str(path), path.stat().st_size, wanted)
            assert got == {k: doc[k] for k in ("a", "b", "c")}, (pad, text[:80])
    path.write_text(json.dumps({"c": 1, "d": 2, "a": 3}) + " " * 100)
    assert model.read_head(str(path), path.stat().st_size, wanted) == {"c": 1, "d": 2, "a": 3}  # the whole
    path.write_text('{"a": 1, "b": 2, "c": 3' + " " * 100)
    with pytest.raises(ValueError, match="Expecting ',' delimiter"):
        model.read_head(str(path), path.stat().st_size, wanted)
    assert model.number(2 ** 2000) is None and model.number(float("nan")) is None and model.number(True) is None
    assert model.number(7) == 7.0 and type(model.number(7)) is float


def test_placement_reads_only_the_head_of_a_document(tmp_path: pathlib.Path) -> None:
    """The writer puts what placement needs first; what follows is not parsed."""
    doc = model.ordered(json.loads((INV / "host7.json").read_text()))
    assert list(doc)[:8] == ["format", "version", "host", "generated", "generator", "root", "capacity", "committed"]
    text = json.dumps(doc)
    cut = text[:text.index('"workers"')] + '"workers": {oops'
    (tmp_path / "host7.json").write_text(cut)
    f = placement.load([str(tmp_path)])
    assert [(h.name, h.caps) for h in f.hosts] == [(h.name, h.caps) for h in fleet() if h.name == "host7"]
    (tmp_path / "host7.json").write_text(text[:text.index('"capacity"')] + '"capacity": {oops')
    f = placement.load([str(tmp_path)])
    assert f.hosts == [] and "Expecting property name enclosed in double quotes" in f.unreadable[0][1]
    assert model.read_keys('{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="expected a JSON object"):
        model.read_keys("[1]")


def test_missing_inventory_path() -> None:
    with pytest.raises(FileNotFoundError, match="inventory /nonexistent does not exist"):
        placement.load(["/nonexistent"])


# ---- OpenStack ----

def test_openstack_traits_and_resource_classes() -> None:
    doc = model.read(str(INV / "host7.json"))
    tr = openstack.traits(doc)
    assert {"CUSTOM_SYNTH_CAP_AES_256_GCM", "CUSTOM_SYNTH_CAP_IO", "CUSTOM_SYNTH_CLASS_CRYPTO",
            "CUSTOM_SYNTH_HW_QAT", "CUSTOM_SYNTH_HW_QAT_GEN4", "CUSTOM_SYNTH_HW_QAT_GEN2",
            "CUSTOM_SYNTH_HW_SRIOV_NIC"} <= set(tr)
    assert all(openstack.NAME_RE.match(t) for t in tr)
    inv = openstack.inventories(doc)
    assert inv["CUSTOM_SYNTH_AES_256_GCM_MBPS"] == {"total": 20000, "reserved": 0, "min_unit": 1,
                                                    "max_unit": 20000, "step_size": 1, "allocation_ratio": 1.0}
    assert "CUSTOM_SYNTH_IO_MBPS" not in inv  # not measured: no inventory
    assert openstack.inventories(doc, reserve_committed=True)["CUSTOM_SYNTH_AES_256_GCM_MBPS"]["reserved"] == 11900
    ccp = openstack.traits(model.read(str(INV / "host2.json")))
    assert "CUSTOM_SYNTH_HW_CCP_V5B" in ccp and "CUSTOM_SYNTH_CAP_CHACHA20_POLY1305" not in ccp
    req = openstack.placement_requests(doc)
    assert {"method": "PUT", "path": "/resource_classes/CUSTOM_SYNTH_AES_256_GCM_MBPS", "body": None} in req["requests"]
    pc = openstack.provider_config(doc)
    assert {"CUSTOM_SYNTH_AES_256_GCM_MBPS": inv["CUSTOM_SYNTH_AES_256_GCM_MBPS"]} in \
        pc["providers"][0]["inventories"]["additional"]


def test_openstack_flavor_extra_specs() -> None:
    s = openstack.flavor_extra_specs(vdu("ipsec-gateway"))
    assert s["extra_specs"] == {"trait:CUSTOM_SYNTH_CAP_AES_256_GCM": "required",
                                "resources:CUSTOM_SYNTH_AES_256_GCM_MBPS": "12000",
                                "trait:CUSTOM_SYNTH_CAP_IO": "required"}
    assert "chacha20-poly1305 (preferred: Placement has no soft traits)" in s["not_expressed"]


# ---- CLI and the round trip ----

def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_cli_place_text_and_json(tmp_path: pathlib.Path) -> None:
    out = run("place", str(EX / "ipsec-gateway.yaml"), "--inventory", str(INV), "--no-index").stdout
    assert "VDU gw asks: aes-256-gcm 12 Gb/s, 1,000 sessions, latency <= 50 us (mandatory)" in out
    assert "    1. host1  headroom 88%, preferred met: chacha20-poly1305" in out
    assert "    host7: aes-256-gcm 8.1 Gb/s free < 12 Gb/s asked" in out
    assert "unreadable: " + str(INV / "broken.json") in out
    doc = json.loads(run("place", str(EX / "packet-core.yaml"), "-I", str(INV), "--vdu", "smf", "--json",
                         "--top", "2", "--no-index").stdout)
    [smf] = doc["vdus"]
    assert smf["vdu"] == "smf" and smf["hosts"] == 6 and smf["fits"] == 5 and len(smf["ranked"]) == 2
    assert smf["rejected"][0]["explanation"].startswith("host3: hmac-sha256 95,833 ops/s free < 200,000 ops/s asked; ")
    spec = json.loads(run("place", str(EX / "ipsec-gateway.yaml"), "--openstack", "--json").stdout)
    assert spec["flavors"][0]["extra_specs"]["resources:CUSTOM_SYNTH_AES_256_GCM_MBPS"] == "12000"


def test_cli_place_when_nothing_fits_and_errors(tmp_path: pathlib.Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text((EX / "ipsec-gateway.yaml").read_text().replace("throughput_gbps: 12", "throughput_gbps: 900"))
    r = run("place", str(big), "--inventory", str(INV), "--no-index", check=False)
    assert r.returncode == 3 and "no host meets every mandatory requirement" in r.stdout
    assert "VDU gw: no host meets every mandatory requirement" in r.stderr
    r = run("place", str(big), check=False)
    assert r.returncode == 1 and "give --inventory DIR" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("synth_vnfd: 1\ndescriptor_id: x\nvdus: {gw: {devices: [{class: crypto}]}}\n")
    r = run("place", str(bad), "--inventory", str(INV), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"virt-synth place: error: {bad}:3: $.vdus.gw.devices[0]: 'capabilities' is required")
    assert "examples:" in run("place", "--help").stdout


def test_round_trip_vnfd_place_xml_define(tmp_path: pathlib.Path) -> None:
    """VNFD -> place (picks a host) -> xml (the VDU's devices) -> define on test:///default."""
    gw = str(EX / "ipsec-gateway.yaml")
    placed = json.loads(run("place", gw, "--inventory", str(INV), "--json", "--no-index").stdout)
    host = placed["vdus"][0]["ranked"][0]["host"]
    assert host == "host1"
    xml_file = tmp_path / "gw1.xml"
    run("xml", "--vnfd", gw, "--template", "vnf-kernel", "--kernel", "/boot/vmlinuz", "--initrd", "/boot/initrd.img",
        "--name", f"gw1-{host}", "--uuid", "5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20", "--memory", "2G", "--vcpus", "2",
        "-o", str(xml_file))
    text = xml_file.read_text()
    uuid, name, devices = metadata.parse_devices(text)
    assert name == "gw1-host1" and [(d["class"], d["capabilities"]) for d in devices] == [
        ("crypto", ["aes-256-gcm", "chacha20-poly1305"]), ("packet", ["io"])]
    assert devices[0]["kpis"] == {"throughput_gbps": 12, "sessions": 1000, "max_latency_us": 50,
                                  "chacha20-poly1305.throughput_gbps": 2}
    # define through libvirt-python, in this process (test:///default lives as long as the connection)
    from libvirt_synth.xml import connect

    conn = connect.open_connection("test:///default")
    try:
        defined = connect.define(conn, text)
        dom = connect.lookup(conn, defined.name)
        back = metadata.parse_devices(connect.inactive_xml(dom))
        assert back == (uuid, name, devices)
        assert text.count("<shmem") == 2 and connect.inactive_xml(dom).count("<shmem") == 2
    finally:
        conn.close()
    # define takes --vnfd too, and --vdu picks one VDU of several
    r = json.loads(run("define", "--vnfd", str(EX / "packet-core.yaml"), "--vdu", "upf", "--template", "vnf-kernel",
                       "--kernel", "/boot/vmlinuz", "--initrd", "/boot/initrd.img", "--name", "upf1",
                       "--json").stdout)
    assert r["defined"]["uri"] == "test:///default"
    assert [(d["class"], d["queues"], d["size"]) for d in r["devices"]] == [("packet", 8, 16 << 20),
                                                                           ("crypto", 4, 4 << 20)]
    # the VDU sizes the VM from a template (upf: 4 vCPUs, 4G), unless the command line says otherwise
    kernel = ["--template", "vnf-kernel", "--kernel", "/boot/vmlinuz", "--initrd", "/boot/initrd.img"]
    upf = run("xml", "--vnfd", str(EX / "packet-core.yaml"), "--vdu", "upf", *kernel).stdout
    assert "<vcpu>4</vcpu>" in upf and '<memory unit="MiB">4096</memory>' in upf
    upf = run("xml", "--vnfd", str(EX / "packet-core.yaml"), "--vdu", "upf", *kernel, "--vcpus", "8").stdout
    assert "<vcpu>8</vcpu>" in upf and '<memory unit="MiB">4096</memory>' in upf
    r2 = run("xml", "--vdu", "upf", "--template", "vnf-kernel", "--kernel", "/boot/vmlinuz", "--initrd",
             "/boot/initrd.img", check=False)
    assert r2.returncode == 1 and "--vdu names a VDU of the VNFD given with --vnfd" in r2.stderr


def test_results_serialise(tmp_path: pathlib.Path) -> None:
    r = placement.rank(fleet(), vdu("ipsec-gateway"))
    d: dict[str, Any] = json.loads(json.dumps(r.as_dict()))
    assert d["fits"] == 4 and d["asks"][0] == {"capability": "aes-256-gcm", "support": "mandatory",
                                               "kpis": {"throughput_gbps": 12, "sessions": 1000,
                                                        "max_latency_us": 50}, "devices": 1}


@pytest.mark.parametrize("page", ["vnfd.md", "inventory.md"])
def test_docs_examples_run(page: str, tmp_path: pathlib.Path) -> None:
    """Every sh and python block of the page runs from the top directory, and prints the lines its
    '# ' comments promise."""
    import re

    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"^```(sh|python)\n(.*?)^```", text, flags=re.M | re.S)
    assert len(blocks) >= 3
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(ROOT), LIBVIRT_SYNTH_CACHE_DIR=str(tmp_path))
    env.pop("LIBVIRT_SYNTH_SOCKET", None)
    for lang, code in blocks:
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "sh" else [sys.executable, "-c", code]
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"docs/{page} example failed:\n{code}\n{r.stdout}{r.stderr}"
        for line in (ln[2:] for ln in code.splitlines() if ln.startswith("# ")):
            assert line in r.stdout, f"docs/{page} promises {line!r}; got:\n{r.stdout}"


# ---- the ranking of a seeded fleet, pinned ----

GOLDEN = ROOT / "tests/data/placement/ranking.json"
REGEN = os.environ.get("LIBVIRT_SYNTH_REGEN_GOLDEN") == "1"


def seeded_fleet(n: int, seed: int) -> list[dict[str, Any]]:
    """Inventories meant to reach every branch of the ranking: capabilities missing, unmeasured,
    zero, integer, boolean, non-finite or a string; packet I/O measured or not; committed more
    than there is, as a non-object, or absent; twins that differ only by name (ties)."""
    import random

    from libvirt_synth.capabilities import CAPABILITIES

    rng = random.Random(seed)
    odd = (None, 0, 0.0, True, "12", float("nan"), float("inf"), -1.0, 3)
    docs: list[dict[str, Any]] = []
    for i in range(n):
        if docs and rng.random() < 0.1:  # a twin of an earlier host
            twin = json.loads(json.dumps(rng.choice(docs)))
            twin["host"] = f"h{i:03d}"
            docs.append(twin)
            continue
        workers = rng.choice((1, 2, 4, 8))
        capacity: dict[str, Any] = {}
        for cap, c in CAPABILITIES.items():
            if rng.random() < 0.12:
                continue
            g = round(rng.uniform(0.3, 30.0), 3)
            if c.dev_class == "packet":
                e: dict[str, Any] = {"class": "packet", "kind": "io", "throughput_gbps": None, "ops_per_s": None,
                                     "latency_us": None}
                if rng.random() < 0.5:
                    e |= {"gbps_per_core": g, "throughput_gbps": g * workers,
                          "packets_per_s": round(rng.uniform(0.5e6, 20e6) * workers)}
            else:
                e = {"class": c.dev_class, "kind": c.kind, "gbps_per_core": g, "throughput_gbps": round(g * workers, 3),
                     "ops_per_s": round(g * workers * 1e9 / 12000, 1), "latency_us": round(12 / g, 3),
                     "sessions_per_device": rng.choice((64, 512, 1024, 4096))}
            for _ in range(rng.choice((0, 0, 0, 1, 2))):
                e[rng.choice(("gbps_per_core", "throughput_gbps", "ops_per_s", "latency_us",
                              "sessions_per_device", "packets_per_s"))] = rng.choice(odd)
            capacity[cap] = e
        if rng.random() < 0.05:
            capacity[rng.choice(sorted(CAPABILITIES))] = rng.choice(([], "x", None))
        used: Any = {}
        for cap in rng.sample(sorted(capacity), min(3, len(capacity))):
            entry = capacity[cap]
            total = entry.get("throughput_gbps") if isinstance(entry, dict) else None
            if isinstance(total, float) and total == total:
                used[cap] = {"throughput_gbps": round(rng.uniform(0, 1.2) * total, 2)}
            if rng.random() < 0.3:
                used[cap] = rng.choice(({"ops_per_s": rng.uniform(0, 2e6)}, {"packets_per_s": rng.uniform(0, 4e7)},
                                        "x", {"throughput_gbps": None}))
        committed: Any = {"by_capability": used}
        if rng.random() < 0.05:
            committed = rng.choice((None, [], {"by_capability": []}))
        docs.append({"format": model.FORMAT, "version": model.VERSION, "host": f"h{i:03d}", "capacity": capacity,
                     "committed": committed, "workers": {"count": workers}})
    return docs


def seeded_vdus() -> list[vnfd.Vdu]:
    """The example VDUs, and some that ask for what they do not: many preferred asks, a capability
    both mandatory and preferred, ops/s with latency, an ask without KPIs."""
    from libvirt_synth.vnfd.model import Device, Requirement, Vdu

    out = [v for f in sorted(EX.glob("*.yaml")) for v in vnfd.load(str(f)).vdus.values()]

    def dev(cls: str, *reqs: tuple[str, bool, dict[str, float]]) -> Device:
        return Device(cls, tuple(Requirement(c, m, k) for c, m, k in reqs))

    out.append(Vdu("prefs", (dev("crypto", ("aes-128-gcm", True, {"throughput_gbps": 2}),
                                 ("aes-256-gcm", False, {"throughput_gbps": 20}),
                                 ("chacha20-poly1305", False, {"throughput_gbps": 1, "max_latency_us": 5})),
                             dev("compress", ("deflate", False, {"ops_per_s": 50000}), ("lz4", False, {})))))
    out.append(Vdu("both", (dev("crypto", ("aes-256-gcm", True, {"throughput_gbps": 4, "sessions": 256}),
                                ("hmac-sha256", True, {"ops_per_s": 300000, "max_latency_us": 4})),
                            dev("crypto", ("aes-256-gcm", False, {"throughput_gbps": 30}),
                                ("aes-256-cbc-hmac-sha256", True, {})),
                            dev("packet", ("io", True, {"packets_per_s": 3e6, "throughput_gbps": 8})))))
    out.append(Vdu("bare", (dev("compress", ("zstd", True, {}), ("gzip", False, {"throughput_gbps": 0.1})),)))
    return out


def ranking_digest(results: list[placement.Result]) -> dict[str, Any]:
    """Every verdict in full: hosts in order, fits, headroom (exact), reasons, notes, preferences."""
    return {r.vdu: {"ranked": [[v.host, v.headroom, v.preferred_met, v.preferred_missed, v.notes] for v in r.ranked],
                    "rejected": [[v.host, v.reasons, v.notes, v.preferred_met, v.preferred_missed]
                                 for v in r.rejected]} for r in results}


def test_ranking_of_a_seeded_fleet_is_pinned(tmp_path: pathlib.Path) -> None:
    """The ranking (hosts, order, headroom to the last bit, every reason and note) of a seeded fleet
    read from files, as tests/data/placement/ranking.json recorded it. Regenerate it only for an
    intended change of the ranking: LIBVIRT_SYNTH_REGEN_GOLDEN=1 pytest -k seeded_fleet."""
    docs = seeded_fleet(64, seed=11)
    for i, d in enumerate(docs):  # as the writer orders them, and some not (the whole document is read)
        text = json.dumps(model.ordered(d) if i % 4 else dict(reversed(d.items())), indent=2 if i % 3 else None)
        (tmp_path / f"{d['host']}.json").write_text(text)
    fleet = placement.load([str(tmp_path)])
    assert fleet.unreadable == [] and len(fleet.hosts) == len(docs)
    got = json.loads(json.dumps(ranking_digest([placement.rank(fleet.hosts, v) for v in seeded_vdus()])))
    if REGEN:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
                                             for k, v in got.items()) + "\n}\n")
    assert GOLDEN.exists(), f"{GOLDEN} is missing: run with LIBVIRT_SYNTH_REGEN_GOLDEN=1 and review it"
    want = json.loads(GOLDEN.read_text())
    assert list(got) == list(want)
    for name in want:
        for part in ("ranked", "rejected"):
            assert got[name][part] == want[name][part], f"VDU {name}: {part} differs"
    # Hosts from files and hosts precomputed from the documents themselves agree.
    direct = [placement.Host.from_inventory(d) for d in docs]
    assert ranking_digest([placement.rank(direct, v) for v in seeded_vdus()]) == \
        ranking_digest([placement.rank(fleet.hosts, v) for v in seeded_vdus()])


def test_ranking_order_agrees_with_each_full_verdict() -> None:
    """rank() orders hosts from the numbers alone and makes each verdict in words only when it is
    looked at: on every host of the seeded fleet, the verdict made later says what the order
    assumed (fits or not, headroom, preferred asks met), and the order is that of the verdicts."""
    hosts = [placement.Host.from_inventory(d) for d in seeded_fleet(200, seed=5)]
    for v in seeded_vdus():
        r = placement.rank(hosts, v)
        assert isinstance(r.ranked, placement.Verdicts) and len(r.ranked) + len(r.rejected) == len(hosts)
        assert r.ranked[-1:] == ([r.ranked[len(r.ranked) - 1]] if r.ranked else [])
        full = {h.name: placement.judge(h, r.asks) for h in hosts}
        assert [x.fits for x in r.ranked] == [True] * len(r.ranked)
        assert [x.fits for x in r.rejected] == [False] * len(r.rejected)
        assert {x.host for x in r.ranked} == {n for n, x in full.items() if x.fits}
        keys = [(-len(x.preferred_met), -(x.headroom if x.headroom is not None else 1.0), x.host) for x in r.ranked]
        assert keys == sorted(keys)
        assert [x.host for x in r.rejected] == sorted(x.host for x in r.rejected)
        assert r.notes() == sorted({n for x in r.ranked for n in x.notes})


def test_no_gc_leaves_the_collector_as_it_was_and_loses_no_garbage() -> None:
    """no_gc pauses the cyclic collector and, on exit, moves what it tracks to the oldest
    generation (no young collection over a whole fleet right after a load): the collector is on
    again, its young count starts at zero, and a cycle dropped meanwhile is still collected by a
    full collection."""
    import gc
    import weakref

    from libvirt_synth.placement.fleet import no_gc

    class Node:
        other: Any = None

    assert gc.isenabled()
    with no_gc():
        assert not gc.isenabled()
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        junk = [[i] for i in range(50_000)]  # far past a young collection's threshold
    assert gc.isenabled() and gc.get_count()[0] < gc.get_threshold()[0]
    assert gone() is not None  # not collected yet: promoted
    gc.collect()
    assert gone() is None and len(junk) == 50_000
    gc.disable()
    try:
        with no_gc():
            pass
        assert not gc.isenabled()  # left off, as it was
    finally:
        gc.enable()
