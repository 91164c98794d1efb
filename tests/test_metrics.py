# SPDX-License-Identifier: Apache-2.0
"""virt-synthd's Prometheus endpoint: each device metric read after the test caused it (payload
bytes, driver resets, ring errors, a driver attached, service times, drops, quota throttles), the
join of every per-device family to synth_device_info, the workers' busy time, and the address it
listens on; from the exposition parsed by prometheus_client's own parsers (the classic text
format and OpenMetrics, which Prometheus asks for), not by string search."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from waiting import until

from libvirt_synth import __version__, errors
from libvirt_synth._native import lib
from libvirt_synth.abi import CAlg, Op
from libvirt_synth.daemon import config
from libvirt_synth.guest import Device
from libvirt_synth.guest.compress import Compressor
from libvirt_synth.guest.packet import PacketChannel

from daemonctl import DAEMON, Daemon, scratch
from rawregion import RawRegion
from test_hostile import IV, KEY, ring_attack

UUID = "6d7e8f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
LOAD_UUID = "7e8f901a-2b3c-4d5e-8f6a-7b8c9d0e1f2a"
USED, IDLE = "metrics-crypto0", "metrics-crypto1"
NOPS, ZIP, SLOW = "metrics-nops", "metrics-zip0", "metrics-slow"
PK_A, PK_B, PK_ALONE = "metrics-pk-a", "metrics-pk-b", "metrics-pk-c"
DEVICES = [
    {"name": USED, "class": "crypto"}, {"name": IDLE, "class": "crypto"}, {"name": NOPS, "class": "crypto"},
    {"name": SLOW, "class": "crypto", "quotas": {"ops_per_s": 200}},
    {"name": ZIP, "class": "compress"},  # a worker of its own ([workers] dedicated)
    {"name": PK_A, "class": "packet", "options": {"link": f"wire:{PK_B}"}},
    {"name": PK_B, "class": "packet", "options": {"link": f"wire:{PK_A}"}},
    {"name": PK_ALONE, "class": "packet"},
]
INFO_LABELS = {"device", "domain", "domain_name", "class", "plugin", "worker"}

# What the endpoint must expose for each device: family name -> (type, label names besides device).
FAMILIES = {
    "synth_device_ops": ("counter", {"status"}),
    "synth_device_bytes": ("counter", {"direction"}),
    "synth_device_resets": ("counter", set()),
    "synth_device_ring_errors": ("counter", set()),
    "synth_device_sessions": ("gauge", set()),
    "synth_device_busy_seconds": ("counter", set()),
    "synth_device_driver_attached": ("gauge", set()),
    "synth_device_throttled": ("counter", set()),
    "synth_device_retried": ("counter", set()),
    "synth_device_service_seconds": ("histogram", {"le"}),
    "synth_device_info": ("gauge", INFO_LABELS - {"device"}),
    # packet devices only
    "synth_packet_frames": ("counter", {"direction"}),
    "synth_packet_bytes": ("counter", {"direction"}),
    "synth_packet_drops": ("counter", {"direction", "reason"}),
    "synth_packet_rx_bad_descriptors": ("counter", set()),
    "synth_packet_tap_read_errors": ("counter", set()),
}
# The daemon's and each worker's: family name -> (type, label names).
GLOBAL_FAMILIES = {
    "synth_build_info": ("gauge", {"version"}),
    "synth_up": ("gauge", set()),
    "synth_worker_busy_seconds": ("counter", {"worker"}),
    "synth_worker_ops": ("counter", {"worker"}),
    "synth_worker_passes": ("counter", {"worker"}),
    "synth_worker_busy_passes": ("counter", {"worker"}),
    "synth_worker_sleeps": ("counter", {"worker"}),
    "synth_worker_region_faults": ("counter", {"worker"}),
    "synth_worker_devices": ("gauge", {"worker"}),
    "synth_worker_parked": ("gauge", {"worker"}),
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def metrics() -> Iterator[tuple[Daemon, int]]:
    with scratch("synth-metrics-") as base:
        port = free_port()
        d = Daemon(base, "--prometheus-port", str(port), "--workers", "2").start()
        try:
            d.call("domain.create", uuid=UUID, name="metrics", devices=DEVICES)
            yield d, port
            d.call("domain.destroy", uuid=UUID)
        finally:
            d.stop()


def fetch(port: int, host: str = "127.0.0.1", openmetrics: bool = False) -> str:
    """The exposition; it may take a moment to answer after the daemon's socket does."""
    where = f"[{host}]" if ":" in host else host
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    req = urllib.request.Request(f"http://{where}:{port}/metrics", headers=headers)
    deadline = time.monotonic() + 10
    while True:
        try:
            return urllib.request.urlopen(req, timeout=5).read().decode()
        except OSError:
            assert time.monotonic() < deadline, f"no /metrics endpoint on {where}:{port}"
            time.sleep(0.05)


def scrape(port: int) -> Samples:
    """The exposition, parsed: (sample name, sorted labels) -> value. Also checks every family
    of FAMILIES and GLOBAL_FAMILIES is there with its type and labels, and nothing unparsable."""
    out = {}
    seen = {}
    for fam in text_string_to_metric_families(fetch(port)):
        seen[fam.name] = fam.type
        for s in fam.samples:
            if fam.name in FAMILIES:  # a histogram's _sum and _count have no le
                extra = set() if s.name.endswith(("_sum", "_count")) else FAMILIES[fam.name][1]
                assert set(s.labels) == {"device"} | extra, s
            if fam.name in GLOBAL_FAMILIES:
                assert set(s.labels) == GLOBAL_FAMILIES[fam.name][1], s
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    want = FAMILIES | GLOBAL_FAMILIES
    assert {n: seen.get(n) for n in want} == {n: t for n, (t, _) in want.items()}
    return out


def select(m: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one name whose labels include these."""
    return {lab: v for (n, lab), v in m.items() if n == name and set(labels.items()) <= set(lab)}


def info(m: Samples) -> dict[str, dict[str, str]]:
    """synth_device_info: device -> its labels."""
    return {dict(lab)["device"]: dict(lab) for lab in select(m, "synth_device_info")}


def buckets(m: Samples, device: str) -> list[tuple[float, float]]:
    """The device's service-time histogram: (le, cumulative count), in le order."""
    return sorted((float(dict(lab)["le"]), v) for lab, v in select(m, "synth_device_service_seconds_bucket",
                                                                   device=device).items())


def ops_total(m: Samples, device: str) -> float:
    return sum(select(m, "synth_device_ops_total", device=device).values())


def value(m: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, device: str, **labels: str) -> float:
    return m[(name, tuple(sorted({"device": device, **labels}.items())))]


def wait_metric(port: int, name: str, device: str, want: float, **labels: str) -> None:
    deadline = time.monotonic() + 10
    while (got := value(scrape(port), name, device, **labels)) != want:
        assert time.monotonic() < deadline, f"{name}{{device={device}}} is {got}, expected {want}"
        time.sleep(0.02)


def test_payload_bytes_count_successful_operations_only(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    before = scrape(port)
    b_in = value(before, "synth_device_bytes_total", USED, direction="in")
    b_out = value(before, "synth_device_bytes_total", USED, direction="out")
    with Device.open(str(d.regions / USED)) as g:
        with g.queue(0).session("aes-256-gcm", KEY) as s:
            for n in (100, 200, 300):
                s.encrypt(bytes(n), IV)
            ct, tag = s.encrypt(bytes(50), IV)
            with pytest.raises(errors.AuthenticationError):  # a failed op moves no payload
                s.decrypt(ct, bytes(len(tag)), IV)
        m = scrape(port)
    assert value(m, "synth_device_bytes_total", USED, direction="in") == b_in + 650
    assert value(m, "synth_device_bytes_total", USED, direction="out") == b_out + 650
    assert value(m, "synth_device_bytes_total", IDLE, direction="in") == 0
    assert value(m, "synth_device_ops_total", USED, status="auth_failed") == 1


def test_driver_attached_follows_the_guest_driver(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    with Device.open(str(d.regions / USED)) as g:
        g.queue(0).nop()
        m = scrape(port)
        assert value(m, "synth_device_driver_attached", USED) == 1
        assert value(m, "synth_device_driver_attached", IDLE) == 0, "nobody ever opened it"


def test_resets_and_ring_errors_are_counted(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    with Device.open(str(d.regions / USED)) as g:
        g.queue(0).nop()
        m = scrape(port)
        resets = value(m, "synth_device_resets_total", USED)
        assert value(m, "synth_device_ring_errors_total", USED) == 0
        g.reset()
        g.queue(0).nop()
        wait_metric(port, "synth_device_resets_total", USED, resets + 1)
        # A completion index past anything the host produced: seen once a ring's worth of
        # completions is pending (as in test_hostile), the device is marked NEEDS_RESET once.
        raw = RawRegion(str(d.regions / USED))
        ring_attack(raw, "cq-cons-past-prod")
        q = g.queue(0)
        entries = raw.hdr.ring_entries
        assert q.submit(q.descs([{"opcode": Op.NOP}] * (entries - 8))) == entries - 8
        wait_metric(port, "synth_device_ring_errors_total", USED, 1)
        assert raw.hdr.dev_error == lib.SYNTH_DEVERR_CQ_INDEX
        raw.close()
        g.reset()  # the driver recovers: one more reset, the ring error stays counted
        g.queue(0).nop()
        wait_metric(port, "synth_device_resets_total", USED, resets + 2)
        m = scrape(port)
        assert value(m, "synth_device_ring_errors_total", USED) == 1
        assert value(m, "synth_device_ring_errors_total", IDLE) == 0
        assert value(m, "synth_device_resets_total", IDLE) == 0


# ---- what every scrape says: the daemon, the devices, and the join ----

def test_build_info_and_up(metrics: tuple[Daemon, int]) -> None:
    m = scrape(metrics[1])
    assert select(m, "synth_build_info") == {(("version", __version__),): 1}
    assert select(m, "synth_up") == {(): 1}


def test_every_device_has_one_info_and_every_device_family_joins_on_it(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    m = scrape(port)
    described = info(m)
    listed = {x["name"]: x for x in d.call("devices.list")}
    assert set(described) == set(listed) == {x["name"] for x in DEVICES}
    assert all(v == 1 for v in select(m, "synth_device_info").values())
    for name, labels in described.items():
        assert (labels["domain"], labels["domain_name"]) == (UUID, "metrics"), labels
        assert (labels["class"], labels["plugin"]) == (listed[name]["class"], listed[name]["plugin"]), labels
        assert labels["plugin"], labels
    # Compression devices have a worker of their own; the others share the two.
    assert described[ZIP]["worker"] == f"own:{ZIP}"
    assert {labels["worker"] for n, labels in described.items() if n != ZIP} <= {"0", "1"}
    workers = {dict(lab)["worker"] for lab in select(m, "synth_worker_busy_seconds_total")}
    assert workers == {"0", "1", f"own:{ZIP}"}
    assert {labels["worker"] for labels in described.values()} <= workers
    # The join: every device any per-device sample names has its synth_device_info.
    named = {dict(lab)["device"] for (_, lab) in m if "device" in dict(lab)}
    assert named == set(described)
    assert {dict(lab)["device"] for lab in select(m, "synth_packet_drops_total")} == {PK_A, PK_B, PK_ALONE}


def test_the_openmetrics_exposition_parses_too(metrics: tuple[Daemon, int]) -> None:
    """Prometheus asks for OpenMetrics first; its parser is stricter (a histogram's _count needs
    a _sum, counters' names, the # EOF)."""
    fams = {f.name: f for f in openmetrics_families(fetch(metrics[1], openmetrics=True))}
    assert fams["synth_device_service_seconds"].type == "histogram"
    assert fams["synth_device_ops"].type == fams["synth_worker_busy_seconds"].type == "counter"
    assert {s.labels["device"] for s in fams["synth_device_info"].samples} == {x["name"] for x in DEVICES}


# ---- service times: the data path's histogram, as it is ----

def test_service_time_histogram_counts_every_operation(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    before = scrape(port)
    with Device.open(str(d.regions / NOPS)) as g:
        q = g.queue(0)
        for _ in range(137):
            q.nop()
        with g.queue(0).session("aes-256-gcm", KEY) as s:  # create, 5 encryptions, destroy
            for n in (64, 256, 1024, 4096, 16384):
                s.encrypt(bytes(n), IV)
    with Device.open(str(d.regions / ZIP)) as g:
        comp = Compressor(g.queue(0))
        for n in (1000, 100_000, 1_000_000):
            assert zlib.decompress(comp.compress(bytes(n), CAlg.ZLIB)) == bytes(n)
    after = scrape(port)
    stats = d.call("stats")["devices"]
    for name, driven in ((NOPS, 137 + 7), (ZIP, 3)):
        hist = buckets(after, name)
        assert hist[-1][0] == float("inf")
        assert [v for _, v in hist] == sorted(v for _, v in hist), f"{name}: buckets not cumulative: {hist}"
        assert hist[-1][1] - buckets(before, name)[-1][1] == driven
        assert ops_total(after, name) - ops_total(before, name) == driven
        assert hist[-1][1] == stats[name]["ops"] == sum(stats[name]["latency_ns"].values())
        # Each finite bound is a power-of-two bucket edge of the data path, in seconds, and holds
        # exactly the operations of the buckets below it.
        for le, v in hist[:-1]:
            edge = round(le * 1e9)
            assert edge & (edge - 1) == 0, le
            assert v == sum(n for upper, n in stats[name]["latency_ns"].items() if int(upper) <= edge), (name, le)
        assert [le for le, _ in hist] == [le for le, _ in buckets(after, USED)], "one set of bounds for all"
        # _count is the +Inf bucket; _sum the ops' service times, which the buckets bound.
        count = select(after, "synth_device_service_seconds_count", device=name)
        total = sum(select(after, "synth_device_service_seconds_sum", device=name).values())
        assert list(count.values()) == [hist[-1][1]]
        lower = sum(n * int(upper) / 2 for upper, n in stats[name]["latency_ns"].items()) / 1e9
        upper = sum(n * int(upper) for upper, n in stats[name]["latency_ns"].items()) / 1e9
        assert lower <= total <= upper, (name, lower, total, upper)
    assert hist[0][0] == 256e-9 and hist[-2][0] == 2 ** (lib.SYNTH_LAT_BUCKETS - 1) / 1e9


# ---- drops and throttles ----

def wait_value(port: int, name: str, want: float, **labels: str) -> Samples:
    def settled() -> Samples | None:
        m = scrape(port)
        return m if sum(select(m, name, **labels).values()) == want else None
    return until(settled, what=f"{name}{labels} == {want}")


def test_packet_drops_are_counted_by_direction_and_reason(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    before = scrape(port)

    def drops(m: Samples, device: str, direction: str, reason: str) -> float:
        return value(m, "synth_packet_drops_total", device, direction=direction, reason=reason)

    with Device.open(str(d.regions / PK_ALONE)) as g:  # no link: every frame sent is dropped
        PacketChannel(g, 0).send_packets([bytes(64)] * 5)
        wait_value(port, "synth_packet_drops_total", drops(before, PK_ALONE, "tx", "no_link") + 5,
                   device=PK_ALONE, reason="no_link")
    with Device.open(str(d.regions / PK_A)) as g:  # the peer has no driver: dropped at both ends
        ca = PacketChannel(g, 0)
        ca.send_packets([bytes(64)] * 3)
        m = wait_value(port, "synth_packet_drops_total", drops(before, PK_B, "rx", "no_buffer") + 3,
                       device=PK_B, direction="rx")
        assert drops(m, PK_A, "tx", "peer_full") == drops(before, PK_A, "tx", "peer_full") + 3
        with Device.open(str(d.regions / PK_B)) as gb:  # now it has one, and buffers: delivered
            cb = PacketChannel(gb, 0, rx_bufs=8)
            raw = RawRegion(str(d.regions / PK_B))
            try:
                sq = raw.queue(1)[0]  # channel 0's receive queue: the host has taken the buffers
                until(lambda: sq.prod != 0 and sq.cons == sq.prod, what="the posted buffers taken")
            finally:
                raw.close()
            ca.send_packets([bytes(100)] * 4)
            assert cb.receive(4) == [bytes(100)] * 4
            m = wait_value(port, "synth_packet_frames_total", value(before, "synth_packet_frames_total", PK_A,
                                                                     direction="tx") + 4, device=PK_A, direction="tx")
    assert value(m, "synth_packet_frames_total", PK_B, direction="rx") == \
        value(before, "synth_packet_frames_total", PK_B, direction="rx") + 4
    assert value(m, "synth_packet_bytes_total", PK_B, direction="rx") == \
        value(before, "synth_packet_bytes_total", PK_B, direction="rx") + 400
    assert drops(m, PK_B, "rx", "no_buffer") == drops(before, PK_B, "rx", "no_buffer") + 3, "no more drops"
    stats = d.call("stats")["devices"]
    for name in (PK_A, PK_B, PK_ALONE):  # the reasons add up to the data path's totals
        for direction in ("tx", "rx"):
            assert sum(select(m, "synth_packet_drops_total", device=name, direction=direction).values()) == \
                stats[name]["packet"][f"{direction}_drops"]


def test_quota_throttles_are_counted(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    with Device.open(str(d.regions / SLOW)) as g:
        q = g.queue(0)
        for _ in range(40):  # at 200 ops/s: the device is skipped until its quota allows more
            q.nop()
    m = scrape(port)
    throttled = value(m, "synth_device_throttled_total", SLOW)
    assert throttled > 0
    assert throttled <= d.call("stats", name=SLOW)["devices"][SLOW]["throttled"]
    assert value(m, "synth_device_throttled_total", NOPS) == 0, "no quota, never throttled"


# ---- workers ----

def test_worker_busy_time_grows_under_load_and_never_goes_back(metrics: tuple[Daemon, int]) -> None:
    d, port = metrics
    load = "metrics-load"
    d.call("domain.create", uuid=LOAD_UUID, name="metrics-load", devices=[{"name": load, "class": "crypto"}])
    try:
        before = scrape(port)
        worker = info(before)[load]["worker"]

        def busy(m: Samples) -> float:
            return value_of(m, "synth_worker_busy_seconds_total", worker=worker)

        with Device.open(str(d.regions / load)) as g, g.queue(0).session("aes-256-gcm", KEY) as s:
            for _ in range(300):
                s.encrypt(bytes(65536), IV)
        during = scrape(port)
        spent = value(during, "synth_device_busy_seconds_total", load) - value(before,
                                                                              "synth_device_busy_seconds_total", load)
        assert spent > 0
        assert busy(during) - busy(before) >= spent - 1e-9, "the worker's time holds its device's"
        assert value_of(during, "synth_worker_ops_total", worker=worker) - \
            value_of(before, "synth_worker_ops_total", worker=worker) >= 302
    finally:
        d.call("domain.destroy", uuid=LOAD_UUID)
    after = scrape(port)
    assert load not in info(after)
    assert busy(after) >= busy(during), "a counter: the device is gone, the time it took stays"


def value_of(m: Samples, name: str, **labels: str) -> float:
    got = select(m, name, **labels)
    assert len(got) == 1, got
    return next(iter(got.values()))


# ---- where it listens ----

def test_it_listens_on_the_address_asked_only(tmp_path: pathlib.Path) -> None:
    port = free_port("127.0.0.2")
    d = Daemon(tmp_path, "--prometheus-port", str(port), "--prometheus-address", "127.0.0.2").start()
    try:
        assert "synth_up 1.0" in fetch(port, "127.0.0.2")
        with pytest.raises(urllib.error.URLError, match="refused"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        d.stop()


def has_ipv6_loopback() -> bool:
    try:
        free_port("::1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_it_listens_on_ipv6_from_the_configuration_file(tmp_path: pathlib.Path) -> None:
    port = free_port("::1")
    (tmp_path / "virt-synthd.toml").write_text(f'[prometheus]\nport = {port}\naddress = "::1"\n')
    d = Daemon(tmp_path).start()
    try:
        fams = {f.name for f in text_string_to_metric_families(fetch(port, "::1"))}
        assert {"synth_up", "synth_build_info", "synth_worker_busy_seconds"} <= fams
    finally:
        d.stop()


def run_daemon(base: pathlib.Path, text: str, *options: str) -> subprocess.CompletedProcess[str]:
    f = base / "virt-synthd.toml"
    f.write_text(text)
    (base / "regions").mkdir(exist_ok=True)
    return subprocess.run([*DAEMON, "--config", str(f), "--socket", str(base / "synthd.sock"),
                           "--state-dir", str(base / "state"), "--region-dir", str(base / "regions"), *options],
                          capture_output=True, text=True, timeout=60)


REFUSED = [  # (file text, options, the one line after "virt-synthd: error: ")
    ("", ("--prometheus-port", "9464", "--prometheus-address", "127.0.0.256"),
     "--prometheus-address 127.0.0.256: expected an IP address of this host to serve /metrics on"),
    ('[prometheus]\nport = 9464\naddress = "localhost"\n', (),
     '{file}: [prometheus] address = "localhost": expected an IP address of this host'),
    ('[prometheus]\naddress = 8080\n', (), "{file}: [prometheus] address = 8080: expected an IP address"),
    ('[prometheus]\nport = 9464\naddress = "192.0.2.1"\n', (),  # TEST-NET-1: no host has it
     '{file}: [prometheus] address = "192.0.2.1": this host has no such address to listen on'),
]


@pytest.mark.parametrize("text,options,line", REFUSED, ids=["option-not-ip", "host-name", "number", "not-here"])
def test_a_bad_address_is_refused_at_start_with_one_line(tmp_path: pathlib.Path, text: str,
                                                         options: tuple[str, ...], line: str) -> None:
    r = run_daemon(tmp_path, text, *options)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("virt-synthd: error: " + line.format(file=tmp_path / "virt-synthd.toml")), r.stderr
    assert "e.g." in r.stderr, "the message says what would do"


def test_a_port_taken_is_refused_at_start(tmp_path: pathlib.Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_daemon(tmp_path, "", "--prometheus-port", str(port))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"virt-synthd: error: cannot serve http://127.0.0.1:{port}/metrics: "
                               "Address already in use; "), r.stderr


def test_the_address_key_loads(tmp_path: pathlib.Path) -> None:
    assert config.load(None, {}).prometheus_address == "127.0.0.1"
    f = tmp_path / "c.toml"
    f.write_text('[prometheus]\naddress = "::"\n')
    assert config.load(str(f), {}, check_host=True).prometheus_address == "::"
    assert config.load(str(f), {"prometheus_address": "0.0.0.0"}).prometheus_address == "0.0.0.0"
    with pytest.raises(errors.ValueError, match="^--prometheus-address ::g: expected an IP address"):
        config.load(str(f), {"prometheus_address": "::g"})
