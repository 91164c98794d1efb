# SPDX-License-Identifier: Apache-2.0
"""Host inventory: discovery on fake sysfs trees that mimic a QAT host and a CCP host, and on this
machine through pyudev; CPU and NUMA; plugin calibration and its cache; committed capacity from
libvirt metadata and from a running virt-synthd; the document and its CLI."""

from __future__ import annotations

import errno
import json
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from libvirt_synth import errors, vnfd
from libvirt_synth.inventory import collect, committed, cpu, model, numa, pci, plugins, workers
from libvirt_synth.xml import designer, spec

ROOT = pathlib.Path(__file__).resolve().parent.parent
SYSFS = ROOT / "tests/data/sysfs"
QAT, CCP = str(SYSFS / "qat-host"), str(SYSFS / "ccp-host")
CLI = [sys.executable, "-m", "libvirt_synth.cli"]


# ---- PCI ----

def test_qat_host_accelerators_and_their_vfs() -> None:
    r = pci.discover(QAT)
    by_addr = {a.address: a for a in r.accelerators}
    assert list(by_addr) == ["0000:3d:00.0", "0000:6b:00.0", "0000:70:00.0"]  # VFs are not listed apart
    gen4 = by_addr["0000:6b:00.0"]
    assert (gen4.vendor_id, gen4.device_id, gen4.family, gen4.generation) == ("0x8086", "0x4940", "qat", "gen4")
    assert gen4.name == "QuickAssist 4xxx" and gen4.class_name == "co-processor" and gen4.driver == "4xxx"
    assert gen4.sriov == {"total_vfs": 16, "num_vfs": 4, "vfs_found": 4} and gen4.numa_node == 0
    assert "chacha20-poly1305" in gen4.capabilities and "deflate" in gen4.capabilities
    assert by_addr["0000:70:00.0"].numa_node == 1 and by_addr["0000:70:00.0"].sriov["vfs_found"] == 2  # type: ignore[index]
    c62x = by_addr["0000:3d:00.0"]
    assert (c62x.device_id, c62x.generation, c62x.driver) == ("0x37c8", "gen2", "c6xx")
    assert c62x.sriov == {"total_vfs": 16, "num_vfs": 2, "vfs_found": 2}
    assert "chacha20-poly1305" not in c62x.capabilities
    nics = {n.address: n for n in r.nics}
    assert set(nics) == {"0000:02:00.0", "0000:4b:00.0"}  # the E810's 8 VFs are counted, not listed
    assert nics["0000:4b:00.0"].sriov == {"total_vfs": 128, "num_vfs": 8, "vfs_found": 8}
    assert nics["0000:4b:00.0"].interfaces == ["ens1f0"] and nics["0000:4b:00.0"].driver == "ice"
    assert nics["0000:02:00.0"].sriov is None and nics["0000:02:00.0"].interfaces == ["eno1"]


def test_ccp_host_and_an_unknown_encryption_controller() -> None:
    r = pci.discover(CCP)
    by_addr = {a.address: a for a in r.accelerators}
    ccp = by_addr["0000:22:00.1"]
    assert (ccp.vendor_id, ccp.device_id, ccp.family, ccp.generation) == ("0x1022", "0x1468", "ccp", "v5b")
    assert ccp.class_name == "encryption controller" and ccp.known and ccp.sriov is None
    unknown = by_addr["0000:81:00.0"]
    assert not unknown.known and unknown.family is None and unknown.capabilities == []
    assert unknown.name == "PCI 1ded:0001" and unknown.class_name == "encryption controller"
    [nic] = r.nics
    assert nic.vendor_id == "0x15b3" and nic.sriov == {"total_vfs": 8, "num_vfs": 0, "vfs_found": 0}


def test_a_vf_without_its_pf_is_listed_itself(tmp_path: pathlib.Path) -> None:
    # A VM given one QAT VF sees the VF and not its PF.
    tree = tmp_path / "vm"
    shutil.copytree(QAT, tree, symlinks=True)
    for pf in ("0000:6b:00.0", "0000:70:00.0", "0000:3d:00.0"):
        (tree / "sys/bus/pci/devices" / pf).unlink()
    names = [(a.address, a.name) for a in pci.discover(str(tree)).accelerators]
    assert ("0000:6b:00.1", "QuickAssist 4xxx VF") in names and len(names) == 8


def test_tree_reader_agrees_with_pyudev_on_this_host() -> None:
    """The fake-tree reader and pyudev see the same thing on the real /sys: the fake trees test
    the code path the real host takes."""
    real = pci.nodes()
    assert real, "pyudev found no PCI device on this machine"
    assert pci.nodes("/") == real
    report = pci.discover()
    assert report.source == "udev"
    assert {a.address for a in report.accelerators} | {n.address for n in report.nics} <= {n.address for n in real}


# ---- CPU, NUMA ----

def test_cpu_and_numa_of_the_fake_hosts() -> None:
    c = cpu.read(QAT)
    assert c.model == "Intel(R) Xeon(R) Gold 6438N" and c.vendor == "GenuineIntel"
    assert (c.logical_cpus, c.sockets) == (8, 2)
    assert {"aes", "vaes", "avx512f", "sha_ni"} <= set(c.accel_flags)
    nodes = numa.read(QAT)
    assert [(n.node, n.cpus, n.memory_mib) for n in nodes] == [(0, [0, 1, 2, 3], 65536), (1, [4, 5, 6, 7], 65536)]
    assert cpu.read(CCP).vendor == "AuthenticAMD" and len(numa.read(CCP)) == 1


def test_cpu_and_numa_of_this_host() -> None:
    c = cpu.read()
    assert c.logical_cpus >= 1 and c.flags and c.model != "unknown"
    cpus = sorted(x for n in numa.read() for x in n.cpus)
    assert len(cpus) >= 1 and cpus == sorted(set(cpus))


def test_cpulist_and_missing_numa(tmp_path: pathlib.Path) -> None:
    assert numa.parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    [only] = numa.read(str(tmp_path), logical_cpus=3)
    assert (only.node, only.cpus, only.memory_mib) == (0, [0, 1, 2], None)


# ---- calibration ----

def test_measure_a_real_plugin() -> None:
    m = plugins.measure("openssl", "aes-256-gcm", size=1500, millis=20)
    assert m.dev_class == "crypto" and m.ops > 0 and m.gbps_per_core > 0 and m.latency_us > 0
    # Gb/s, ops/s and latency describe the same run.
    assert m.gbps_per_core == pytest.approx(m.ops_per_s_per_core * 1500 * 8 / 1e9, rel=0.01)
    z = plugins.measure("zlib", "deflate", size=1500, millis=20)
    assert z.dev_class == "compress" and z.level is not None and z.ops > 0


@pytest.mark.parametrize("plugin, alg, size, millis, exc, match", [
    ("nope", "aes-256-gcm", 1500, 10, FileNotFoundError, "no plugin 'nope'"),
    ("openssl", "aes-256-gcm", 0, 10, ValueError, "size must be"),
    ("openssl", "aes-256-gcm", 1500, 0, ValueError, "time must be"),
    ("openssl", "zstd", 1500, 10, ValueError, "unknown algorithm"),
    ("ipsec-mb", "hmac-sha256", 1500, 10, errors.NotSupportedError, "not supported"),
])
def test_measure_errors(plugin: str, alg: str, size: int, millis: int, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        plugins.measure(plugin, alg, size=size, millis=millis)


# A crypto plugin whose probe always refuses: registered (in a child process, so that this
# process's catalog stays as built) to stand for a plugin that cannot run on a host. Its burst would
# complete every op OK, so a calibration that ran it anyway would return figures instead of failing.
NEVER_HERE_C = r"""
#include <errno.h>
#include <stdio.h>
#include "synth/plugin.h"

static int probe(char *why, size_t n) { snprintf(why, n, "test: this plugin never runs here"); return PROBE_RC; }
static uint32_t alg_mask(void) { return 1u << SYNTH_ALG_AES256_GCM; }
static int create(const struct synth_crypto_session_params *p, void **out) { (void)p; *out = out; return 0; }
static void destroy(void *s) { (void)s; }
static void burst(struct synth_crypto_op *ops, unsigned n) { for (unsigned i = 0; i < n; i++) ops[i].status = 0; }
static const struct synth_plugin table = {
    .abi_version = SYNTH_PLUGIN_ABI_VERSION, .dev_class = SYNTH_CLASS_CRYPTO, .name = "never-here",
    .description = "test: a plugin that cannot run on this host", .priority = 1, .probe = probe,
    .alg_mask = alg_mask, .session_create = create, .session_destroy = destroy, .crypto_burst = burst,
    .cpu_features = "",
};
const struct synth_plugin *synth_plugin_entry(void) { return &table; }
"""

MEASURE_NEVER_HERE = """
import json, sys
from libvirt_synth import errors
from libvirt_synth.host import plugins as cat
from libvirt_synth.inventory import plugins
cat.load_plugin(sys.argv[1])
info = {p.name: p for p in cat.catalog()}["never-here"]
out = {"available": info.available, "detail": info.detail}
try:
    out["measured"] = plugins.measure("never-here", "aes-256-gcm", millis=10).as_dict()
except errors.SynthError as e:
    out |= {"error": type(e).__name__, "errno": getattr(e, "errno", None), "message": str(e)}
print(json.dumps(out))
"""


def test_measure_a_plugin_that_cannot_run_here(tmp_path: pathlib.Path) -> None:
    src, so = tmp_path / "never_here.c", tmp_path / "never-here.so"
    src.write_text(NEVER_HERE_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-DPROBE_RC=-ENODEV", f"-I{ROOT}/native/include", str(src),
                    "-o", str(so)], check=True)
    r = subprocess.run([sys.executable, "-c", MEASURE_NEVER_HERE, str(so)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert not out["available"] and out["detail"] == "test: this plugin never runs here"
    assert "measured" not in out, f"an unavailable plugin was calibrated: {out.get('measured')}"
    assert out["error"] == "NotSupportedError" and out["errno"] == errno.ENODEV
    assert out["message"] == "calibrating never-here aes-256-gcm: the plugin cannot run on this host"


def test_calibration_is_cached_and_redone_on_demand(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real, real_packet = plugins.measure, plugins.measure_packet

    def counting(plugin: str, alg: str, size: int = 1500, millis: int = 150) -> plugins.Measurement:
        calls.append((plugin, alg))
        return real(plugin, alg, size, 5)

    def counting_packet(size: int = 1500, millis: int = 150) -> plugins.Measurement:
        calls.append((plugins.PACKET_IO, "io"))
        return real_packet(size, 5)

    monkeypatch.setattr(plugins, "measure", counting)
    monkeypatch.setattr(plugins, "measure_packet", counting_packet)
    first = plugins.inventory("cpu X", cache_dir=str(tmp_path), millis=5)
    available = [(p["name"], a) for p in first if p["available"] for a in p["algorithms"]]
    assert (plugins.PACKET_IO, "io") in available
    io = next(p for p in first if p["name"] == plugins.PACKET_IO)["calibration"]["io"]
    assert io["ops_per_s_per_core"] > 0 and io["gbps_per_core"] > 0 and io["size"] == 1500
    assert sorted(calls) == sorted(available) and len(calls) >= 10
    cached = json.loads((tmp_path / plugins.CACHE_FILE).read_text())
    assert cached["version"] == plugins.CACHE_VERSION and len(cached["entries"]) == len(calls)
    calls.clear()
    second = plugins.inventory("cpu X", cache_dir=str(tmp_path), millis=5)
    assert calls == []
    assert all(c["cached"] for p in second for c in p["calibration"].values())
    assert [p["calibration"].keys() for p in second] == [p["calibration"].keys() for p in first]
    plugins.inventory("another CPU", cache_dir=str(tmp_path), millis=5)  # the CPU model is in the key
    assert len(calls) == len(available)
    calls.clear()
    plugins.inventory("cpu X", cache_dir=str(tmp_path), millis=5, calibrate=True)
    assert len(calls) == len(available)


def test_capacity_is_per_core_times_workers_of_the_plugin_the_data_path_picks() -> None:
    fake = [
        {"name": "low", "class": "crypto", "priority": 10, "available": True, "algorithms": ["aes-256-gcm"],
         "calibration": {"aes-256-gcm": {"gbps_per_core": 50.0, "ops_per_s_per_core": 1e6, "latency_us": 1.0,
                                         "size": 1500}}},
        {"name": "high", "class": "crypto", "priority": 20, "available": True, "algorithms": ["aes-256-gcm"],
         "calibration": {"aes-256-gcm": {"gbps_per_core": 3.0, "ops_per_s_per_core": 250000.0,
                                         "latency_us": 4.0, "size": 1500}}},
        {"name": "off", "class": "compress", "priority": 99, "available": False, "algorithms": ["zstd"],
         "calibration": {}},
    ]
    cap = plugins.capacity(fake, workers=4)
    assert cap["aes-256-gcm"]["plugin"] == "high" and cap["aes-256-gcm"]["throughput_gbps"] == 12.0
    assert cap["aes-256-gcm"]["ops_per_s"] == 1e6 and cap["aes-256-gcm"]["latency_us"] == 4.0
    assert "zstd" not in cap and "chacha20-poly1305" not in cap
    assert cap["io"]["source"] == "unmeasured" and cap["io"]["packets_per_s"] is None  # no packet-io entry
    fake.append({"name": plugins.PACKET_IO, "class": "packet", "priority": 0, "available": True, "algorithms": ["io"],
                 "calibration": {"io": {"gbps_per_core": 120.0, "ops_per_s_per_core": 1e7, "latency_us": 0.1,
                                        "size": 1500}}})
    io = plugins.capacity(fake, workers=4)["io"]
    assert io["source"] == "calibrated" and io["packets_per_s"] == 4e7 and io["packets_per_s_per_core"] == 1e7
    assert io["throughput_gbps"] == 480.0 and io["ops_per_s"] is None


def test_sessions_per_device_matches_the_data_path(guest: object) -> None:
    assert guest.info().max_sessions == plugins.CRYPTO_SESSIONS_PER_DEVICE  # type: ignore[attr-defined]


# ---- committed capacity ----

def _test_node(tmp_path: pathlib.Path) -> str:
    """A libvirt test-driver node whose one domain has the ipsec gateway's devices."""
    vdu = vnfd.load(str(ROOT / "examples/vnfd/ipsec-gateway.yaml")).vdu()
    dom = ("<domain type='test'><name>gw1</name><uuid>5a1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20</uuid>"
           "<memory>524288</memory><os><type arch='x86_64'>hvm</type></os></domain>")
    xml = designer.inject(dom, spec.from_vdu(vdu), check=False).xml
    node = tmp_path / "node.xml"
    node.write_text("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>"
                    "<active>2</active><mhz>2000</mhz><model>x86_64</model></cpu><memory>8388608</memory>"
                    f"{xml.split('?>', 1)[-1]}</node>")
    return f"test://{node}"


def test_committed_from_libvirt_metadata(tmp_path: pathlib.Path) -> None:
    c = committed.collect(uri=_test_node(tmp_path), use_daemon=False)
    assert c.problems == [] and len(c.devices) == 2
    # The first capability's KPIs, the second's prefixed ones; latency is not a consumed capacity.
    assert c.by_capability() == {"aes-256-gcm": {"throughput_gbps": 12, "sessions": 1000},
                                 "chacha20-poly1305": {"throughput_gbps": 2},
                                 "io": {"packets_per_s": 2000000}}


def test_committed_from_a_running_daemon(tmp_path: pathlib.Path) -> None:
    from daemonctl import Daemon

    d = Daemon(tmp_path).start()
    try:
        d.call("domain.create", uuid="7b1b6c3e-0d2f-4a8e-9c71-3b5d7e9f1a20", name="gw2", devices=[
            {"name": "synth-7b1b6c3e0d2f-0", "class": "crypto", "capabilities": ["aes-256-gcm"],
             "kpis": {"throughput_gbps": 5, "max_latency_us": 9}},
            {"name": "synth-7b1b6c3e0d2f-1", "class": "compress", "capabilities": ["zstd", "lz4"],
             "kpis": {"throughput_gbps": 1, "lz4.throughput_gbps": 0.5}}])
        c = committed.collect(socket=d.socket)
        assert c.problems == [] and c.sources == [f"virt-synthd ({d.socket})"]
        running = len(d.call("health")["workers"])
        assert workers(socket=d.socket, config=str(tmp_path / "none.toml")) == {"count": running, "cpus": [],
                                                                                "source": "virt-synthd"}
        assert c.by_capability() == {"aes-256-gcm": {"throughput_gbps": 5}, "lz4": {"throughput_gbps": 0.5},
                                     "zstd": {"throughput_gbps": 1}}
        # Both sources: the daemon's devices and libvirt's (other domains) add up; a device both know
        # (the same name) counts once.
        uri = _test_node(tmp_path)
        both = committed.collect(socket=d.socket, uri=uri)
        assert both.by_capability()["aes-256-gcm"] == {"throughput_gbps": 17, "sessions": 1000}
        assert len(both.devices) == 4 and not committed.from_libvirt(both, "test:///nonexistent.xml")
        committed.from_libvirt(both, uri)
        assert len(both.devices) == 4 and both.by_capability()["aes-256-gcm"]["throughput_gbps"] == 17
    finally:
        d.stop()
    gone = committed.collect(socket=d.socket)
    assert gone.devices == {} and "not running" in gone.problems[0]


def test_workers_from_the_daemon_configuration(tmp_path: pathlib.Path) -> None:
    cfg = tmp_path / "virt-synthd.toml"
    cfg.write_text('[workers]\ncount = 3\ncpus = "2-4"\n')
    assert workers(config=str(cfg), ask_daemon=False) == {"count": 3, "cpus": [2, 3, 4],
                                                          "source": f"configuration ({cfg})"}
    assert workers(2, config=str(cfg), ask_daemon=False) == {"count": 2, "cpus": [2, 3], "source": "--workers"}
    cfg.write_text("[nonsense]\n")
    assert workers(config=str(cfg), ask_daemon=False)["source"] == "default"


# ---- the document and the CLI ----

@pytest.fixture
def qat_doc(tmp_path: pathlib.Path) -> Iterator[dict]:
    yield collect(QAT, host="qat1", cache_dir=str(tmp_path / "cache"), millis=5, worker_count=2, use_daemon=False)


def test_collect_builds_a_versioned_document(qat_doc: dict) -> None:
    d = model.check(json.loads(json.dumps(qat_doc)), "mem")
    assert d["format"] == "libvirt-synth-inventory" and d["version"] == 1 and d["host"] == "qat1"
    assert d["cpu"]["model"] == "Intel(R) Xeon(R) Gold 6438N" and len(d["numa"]) == 2
    assert [a["device_id"] for a in d["pci"]["accelerators"]] == ["0x37c8", "0x4940", "0x4940"]
    assert d["workers"] == {"count": 2, "cpus": [], "source": "--workers"}
    cap = d["capacity"]["aes-256-gcm"]
    assert cap["source"] == "calibrated" and cap["throughput_gbps"] == pytest.approx(2 * cap["gbps_per_core"])
    assert model.free(d)["aes-256-gcm"]["throughput_gbps"] == cap["throughput_gbps"]


def test_model_refuses_other_documents() -> None:
    with pytest.raises(ValueError, match="not an inventory document"):
        model.check({"format": "x"}, "f")
    with pytest.raises(ValueError, match="inventory version 2; this reader knows version 1"):
        model.check({"format": model.FORMAT, "version": 2}, "f")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_cli_inventory_json_text_and_openstack(tmp_path: pathlib.Path) -> None:
    common = ["--root", QAT, "--host", "qat1", "--cache-dir", str(tmp_path), "--calibration-ms", "5", "--no-daemon",
              "--workers", "2"]
    out = tmp_path / "qat1.json"
    run("inventory", *common, "--json", "-o", str(out))
    doc = model.read(str(out))
    assert doc["host"] == "qat1" and doc["workers"]["count"] == 2
    text = run("inventory", "--from", str(out)).stdout
    assert text.startswith("host qat1: Intel(R) Xeon(R) Gold 6438N (GenuineIntel), 8 CPUs, 2 socket(s)")
    assert "0000:6b:00.0  Intel QuickAssist 4xxx (gen4)  [8086:4940] co-processor, driver 4xxx, NUMA 0, " \
           "SR-IOV 4/16 VFs" in text
    assert "0000:4b:00.0  [8086:1593] ens1f0  driver ice, SR-IOV 8/128 VFs" in text
    assert "aes-256-gcm" in text and "workers: 2 core(s), from --workers" in text
    pl = json.loads(run("inventory", "--from", str(out), "--openstack", "placement").stdout)
    assert "CUSTOM_SYNTH_HW_QAT_GEN4" in pl["traits"] and "CUSTOM_SYNTH_AES_256_GCM_MBPS" in pl["inventories"]
    import yaml

    pc = yaml.safe_load(run("inventory", "--from", str(out), "--openstack", "provider-config").stdout)
    assert pc["meta"]["schema_version"] == "1.0"
    assert pc["providers"][0]["identification"] == {"uuid": "$COMPUTE_NODE"}


def test_cli_inventory_of_this_host(tmp_path: pathlib.Path) -> None:
    doc = json.loads(run("inventory", "--json", "--cache-dir", str(tmp_path), "--calibration-ms", "5",
                         "--no-daemon").stdout)
    assert doc["pci"]["source"] == "udev" and doc["capacity"]["aes-256-gcm"]["throughput_gbps"] > 0


def test_cli_inventory_errors() -> None:
    r = run("inventory", "--workers", "0", "--no-daemon", check=False)
    assert r.returncode == 1 and r.stderr.startswith("virt-synth inventory: error: --workers must be at least 1")
    r = run("inventory", "--from", "/nonexistent.json", check=False)
    assert r.returncode == 1 and "inventory /nonexistent.json does not exist" in r.stderr
    assert "examples:" in run("inventory", "--help").stdout


def test_packet_io_calibration_measures_the_wire_and_leaves_nothing(tmp_path: pathlib.Path) -> None:
    from libvirt_synth._native import ffi, lib

    m = plugins.measure_packet(64, 30)
    assert m.plugin == plugins.PACKET_IO and m.dev_class == "packet" and m.ops > 0  # the rate: bench/packet
    assert m.ops_per_s_per_core > 0 and m.gbps_per_core == pytest.approx(m.ops_per_s_per_core * 64 * 8 / 1e9, rel=0.01)
    assert m.latency_us == pytest.approx(1e6 / m.ops_per_s_per_core, rel=0.01, abs=1e-3)
    # The C side, on a directory of ours: every frame arrived, the two regions are gone again.
    out = ffi.new("struct synth_calib_result *")
    assert lib.synth_calibrate_packet(str(tmp_path).encode(), 1500, 20, out) == 0
    assert out.ops > 0 and out.bytes == out.ops * 1500 and list(tmp_path.iterdir()) == []
    (tmp_path / "calibrate-packet-a").write_bytes(b"")  # a leftover is not overwritten
    assert lib.synth_calibrate_packet(str(tmp_path).encode(), 1500, 20, out) == -17  # -EEXIST
    with pytest.raises(errors.ValueError, match="packet calibration size must be 14..9216 bytes, got 10"):
        plugins.measure_packet(10, 30)


NOVA_PYTHON = "/usr/bin/python3"  # Debian's python3-nova is for the system interpreter


def _nova_loads(directory: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """nova.compute.provider_config, as nova-compute runs it on the files of a directory."""
    code = ("import json, sys\nfrom nova.compute import provider_config as pc\n"
            "d = pc.get_provider_configs(sys.argv[1])\n"
            "print(json.dumps({k: sorted(r for i in v['inventories']['additional'] for r in i)\n"
            "                  for k, v in d.items()}))")
    return subprocess.run([NOVA_PYTHON, "-c", code, str(directory)], capture_output=True, text=True, timeout=120)


def test_provider_yaml_is_what_novas_own_loader_takes(tmp_path: pathlib.Path) -> None:
    """`virt-synth inventory --format provider-yaml` of a QAT host, loaded by nova-compute's own
    provider-config code (Debian's python3-nova): it takes ours, and refuses the same file with a
    resource class that is not custom, so the check is real."""
    import yaml

    r = subprocess.run([NOVA_PYTHON, "-c", "import nova.compute.provider_config"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"nova is not installed for {NOVA_PYTHON} (Debian package python3-nova): {r.stderr[-200:]}")
    common = ["--root", QAT, "--host", "qat1", "--cache-dir", str(tmp_path), "--calibration-ms", "5", "--no-daemon",
              "--workers", "2"]
    conf = tmp_path / "provider_config"
    conf.mkdir()
    run("inventory", *common, "--format", "provider-yaml", "-o", str(conf / "synth.yaml"))
    loaded = _nova_loads(conf)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    classes = json.loads(loaded.stdout)["$COMPUTE_NODE"]
    assert "CUSTOM_SYNTH_AES_256_GCM_MBPS" in classes and all(c.startswith("CUSTOM_SYNTH_") for c in classes)
    doc = yaml.safe_load((conf / "synth.yaml").read_text())
    doc["providers"][0]["inventories"]["additional"].append({"SYNTH_NOT_CUSTOM": {"total": 1}})
    (conf / "synth.yaml").write_text(yaml.safe_dump(doc))
    refused = _nova_loads(conf)
    assert refused.returncode != 0 and "only custom resource classes" in refused.stderr
