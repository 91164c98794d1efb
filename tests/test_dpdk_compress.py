# SPDX-License-Identifier: Apache-2.0
"""The compress_synth DPDK PMD (native/dpdk/, docs/dpdk.md) under DPDK's own dpdk-test-compress-perf
(its verify test compresses a corpus through the PMD and a compression device served by a real
worker, decompresses it again and compares), and through check-compress-synth where compress-perf
cannot reach: what the PMD writes must decode with zlib, what zlib writes must decode through the
PMD, and bad parameters, small destinations, streams and a device reset behave as compressdev
defines."""

from __future__ import annotations

import contextlib
import pathlib
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator

import pytest

from libvirt_synth.abi import DevClass
from libvirt_synth.host.device import HostDevice, Worker

import dpdkbed
from compress_corpus import corpus_entry

CHECK = dpdkbed.BUILD / "check-compress-synth"
PERF = shutil.which("dpdk-test-compress-perf")
pytestmark = dpdkbed.needs(PERF, "dpdk-test-compress-perf")
pmd = dpdkbed.pmd_fixture("librte_compress_synth", CHECK)


def make_corpus() -> bytes:
    """About 370 KiB from the fixed-seed corpus: prose, source, logs, records, then a mix with
    70 KB of random bytes, 50 KB more random and 20 KB of zeros."""
    names = ("text", "python source", "json log", "records", "mixed")
    return b"".join(corpus_entry(n) for n in names) + corpus_entry("random")[:50_000] + bytes(20_000)


@pytest.fixture(scope="module")
def data() -> bytes:
    return make_corpus()


def serve(region_dir: pathlib.Path, worker: Worker, **kw: object) -> contextlib.AbstractContextManager[HostDevice]:
    kw.setdefault("size", 8 << 20)
    kw.setdefault("queues", 2)
    return dpdkbed.served(region_dir, worker, "comp0", DevClass.COMPRESS, **kw)


@pytest.fixture
def device(region_dir: pathlib.Path, worker: Worker) -> Iterator[HostDevice]:
    """Two queues: one for the PMD's queue pair, one for its streams."""
    with serve(region_dir, worker) as dev:
        yield dev


def eal(pmd: pathlib.Path, dev: HostDevice, lcores: str) -> list[str]:
    return dpdkbed.device_eal(pmd, "compress_synth", dev, lcores)


def perf(pmd: pathlib.Path, dev: HostDevice, infile: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    # compress-perf needs a main lcore and a worker lcore.
    cmd = [str(PERF), *eal(pmd, dev, "0,1"), "--", "--driver-name", "compress_synth", "--input-file", str(infile),
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def levels(r: subprocess.CompletedProcess[str]) -> dict[int, int]:
    """{level: compressed size} from the verify test's table, which it prints only for levels
    whose data came back identical."""
    out = r.stdout.splitlines()
    for i, line in enumerate(out):
        if "Comp size" in line:
            rows = [x.split() for x in out[i + 1:] if re.match(r"\s*\d+\s+\d+\s+\d+\s+[\d.]+\s*$", x)]
            return {int(row[1]): int(row[2]) for row in rows}
    raise AssertionError(f"no verify result in compress-perf's output:\n{r.stdout}\n{r.stderr}")


def nops(n: int, seg: int, segs: int) -> int:
    """Ops compress-perf makes of n bytes in buffers of segs segments of seg bytes (the last
    buffer takes the remainder's last segment)."""
    bufs = n // seg + (n % seg > 0)
    return bufs // segs + (bufs % segs > 0)


@pytest.mark.parametrize("extra, seg, segs", [
    ([], 2048, 16),
    (["--max-num-sgl-segs", "1", "--seg-sz", "8192"], 8192, 1),
], ids=["chained-mbufs", "flat-mbufs"])
def test_compress_perf_verifies_a_round_trip(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path,
                                             data: bytes, extra: list[str], seg: int, segs: int) -> None:
    """compress-perf's verify test at levels 1, 5 and 9: every op of the corpus compressed, then
    decompressed, through the device, and the result compared with the corpus."""
    infile = tmp_path / "corpus.bin"
    infile.write_bytes(data)
    r = perf(pmd, device, infile, "--ptest", "verify", "--compress-level", "1:4:9", "--num-iter", "1", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "not successful" not in r.stdout + r.stderr
    sizes = levels(r)
    assert set(sizes) == {1, 5, 9}, r.stdout
    assert all(len(data) // 3 < s < len(data) for s in sizes.values()), sizes  # mixed: compressible, not all
    # Every op went through the device's queue pair queue and came back OK.
    q = device.stats().queues
    n = nops(len(data), seg, segs)
    assert (q[0]["ops"], q[0]["by_status"]) == (2 * 3 * n, {"ok": 2 * 3 * n})
    assert q[1]["ops"] == 0  # stateless: no streams


def test_a_burst_larger_than_the_ring(pmd: pathlib.Path, region_dir: pathlib.Path, worker: Worker,
                                      tmp_path: pathlib.Path, data: bytes) -> None:
    """A 16-entry ring under bursts of 128 one-segment ops: enqueue takes what fits, the rest is
    offered again, and the round trip still verifies."""
    with serve(region_dir, worker, ring_entries=16) as dev:
        infile = tmp_path / "corpus.bin"
        infile.write_bytes(data)
        r = perf(pmd, dev, infile, "--ptest", "verify", "--compress-level", "1", "--num-iter", "1",
                 "--seg-sz", "1024", "--max-num-sgl-segs", "1", "--burst-sz", "128")
        assert r.returncode == 0, r.stdout + r.stderr
        assert set(levels(r)) == {1}
        n = nops(len(data), 1024, 1)
        assert n > 128
        assert dev.stats().queues[0]["by_status"] == {"ok": 2 * n}


@pytest.mark.parametrize("plugin", ["isal", "zlib"])
def test_a_device_pinned_to_one_plugin(pmd: pathlib.Path, region_dir: pathlib.Path, worker: Worker,
                                       tmp_path: pathlib.Path, data: bytes, plugin: str) -> None:
    """Levels 1..9 go into the levels the device serves: ISA-L's are 1..3, so levels 5 and 9 both
    compress at its level 3 (the same output size); zlib serves all nine."""
    with serve(region_dir, worker, plugin=plugin) as dev:
        infile = tmp_path / "corpus.bin"
        infile.write_bytes(data)
        r = perf(pmd, dev, infile, "--ptest", "verify", "--compress-level", "1:4:9", "--num-iter", "1")
        assert r.returncode == 0, r.stdout + r.stderr
        sizes = levels(r)
        assert set(sizes) == {1, 5, 9}
        assert (sizes[5] == sizes[9]) == (plugin == "isal"), sizes
        assert set(dev.stats().queues[0]["by_status"]) == {"ok"}


def test_a_one_queue_device_shares_its_queue_with_streams(pmd: pathlib.Path, region_dir: pathlib.Path,
                                                         worker: Worker) -> None:
    """With a single device queue, the queue pair and the streams' create and destroy use it."""
    with serve(region_dir, worker, queues=1) as dev:
        got = table(check(pmd, dev, "space"))
        assert got["stream-rest"] == "SUCCESS consumed=0 produced=2192"
        q = dev.stats().queues
        assert len(q) == 1 and q[0]["ops"] > 2


@pytest.mark.parametrize("args, message", [
    (["--huffman-enc", "fixed"], "does not supported Fixed Huffman"),
    (["--compress-level", "0"], "does not support level 0"),
    (["--window-sz", "12"], "does not support this window size"),
])
def test_what_the_capabilities_rule_out_is_refused(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path,
                                                   args: list[str], message: str) -> None:
    """Fixed Huffman codes (the device's encoders choose their blocks), stored blocks and windows
    other than 32 KiB are not in the capabilities: compress-perf stops before any op."""
    infile = tmp_path / "corpus.bin"
    infile.write_bytes(b"abc" * 1000)
    r = perf(pmd, device, infile, "--ptest", "verify", "--num-iter", "1", *args)
    assert r.returncode > 0
    assert message in r.stdout + r.stderr
    assert device.stats().ops == 0


def check(pmd: pathlib.Path, dev: HostDevice, *args: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK), *eal(pmd, dev, "0"), "--", *args], capture_output=True, text=True,
                          timeout=timeout)


def table(r: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert r.returncode == 0, r.stdout + r.stderr
    return dict(line.split(" ", 1) for line in r.stdout.splitlines())


def test_xforms_and_ops_with_bad_parameters(pmd: pathlib.Path, device: HostDevice) -> None:
    """Through the public API, past the capability check: each bad transform gets its errno, each
    bad op comes back with INVALID_ARGS, and none of them reaches the device."""
    got = table(check(pmd, device, "params"))
    assert got == {
        "compress-dynamic": "ok", "compress-default-level": "ok", "decompress-window-9": "ok",
        "huffman-fixed": "ENOTSUP", "level-0": "ENOTSUP", "level-10": "EINVAL", "compress-window-12": "EINVAL",
        "decompress-window-16": "EINVAL", "checksum-bad": "EINVAL", "algo-lzs": "ENOTSUP", "hash-sha256": "ENOTSUP",
        "type-bad": "EINVAL",
        "op-no-xform": "INVALID_ARGS", "op-src-beyond-chain": "INVALID_ARGS", "op-no-dst": "INVALID_ARGS",
        "op-stateless-flush-none": "INVALID_ARGS", "op-stream-flush-full": "INVALID_ARGS", "op-good": "SUCCESS",
    }
    q = device.stats().queues
    assert q[0]["by_status"] == {"ok": 1}  # op-good only
    assert q[1]["ops"] == 2  # the stream's create and destroy, on the control queue


def test_streams_are_created_and_freed(pmd: pathlib.Path, region_dir: pathlib.Path, worker: Worker) -> None:
    """A device that holds 4 streams: 4 are created, a fifth is refused (ENOSPC), and freeing them
    gives the device its room back, three rounds over."""
    with serve(region_dir, worker, options=(("max_streams", 4),)) as dev:
        r = check(pmd, dev, "streams", "4")
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.splitlines() == [f"round-{i} {what}" for i in range(3)
                                         for what in ("created 4", "one-more ENOSPC")]
        ctl = dev.stats().queues[1]
        # Per round: 4 creates, 1 refused create, 4 destroys, all on the control queue.
        assert ctl["ops"] == 3 * 9
        assert ctl["by_status"] == {"ok": 3 * 8, "no_resources": 3}
        assert dev.stats().queues[0]["ops"] == 0


def test_a_destination_that_is_too_small(pmd: pathlib.Path, device: HostDevice) -> None:
    """Stateless: OUT_OF_SPACE_TERMINATED, nothing produced; with room, the same op passes.
    Stateful: OUT_OF_SPACE_RECOVERABLE with the destination full, and the stream's next op (no
    new input) delivers the rest."""
    got = table(check(pmd, device, "space"))
    assert got["compress-small-dst"] == "OUT_OF_SPACE_TERMINATED produced=0"
    assert got["compress-room"] == "SUCCESS"
    assert got["decompress-small-dst"] == "OUT_OF_SPACE_TERMINATED produced=0"
    assert got["decompress-room"] == "SUCCESS produced=8192"
    m = re.fullmatch(r"OUT_OF_SPACE_RECOVERABLE consumed=(\d+) produced=6000", got["stream-small-dst"])
    assert m, got
    assert got["stream-rest"] == "SUCCESS consumed=0 produced=2192"
    assert device.stats().by_status.get("no_space", 0) == 2


@pytest.mark.parametrize("max_chunk, op_size", [(0, 65536), (4096, 4096)], ids=["1MiB-chunks", "4KiB-chunks"])
def test_output_interoperates_with_zlib(pmd: pathlib.Path, region_dir: pathlib.Path, worker: Worker,
                                        tmp_path: pathlib.Path, data: bytes, max_chunk: int, op_size: int) -> None:
    """What the PMD compresses, stateless (ops of op_size bytes) or as one stream (16 KiB ops into
    4 KiB destinations, so that many ops are recoverable), decodes with Python's zlib; what zlib
    compresses decodes through a PMD stream; and the checksums the PMD computes are zlib's. With a
    device that takes at most 4 KiB per op, each stream op goes to the device in several chunks."""
    with serve(region_dir, worker, options=(("max_chunk", max_chunk),) if max_chunk else ()) as device:
        check_files(pmd, device, tmp_path, data, op_size)


def test_a_stateless_op_longer_than_the_device_takes(pmd: pathlib.Path, region_dir: pathlib.Path, worker: Worker,
                                                     tmp_path: pathlib.Path, data: bytes) -> None:
    """Stateless ops are one device op each: input beyond the device's max_chunk is INVALID_ARGS
    (streams split it)."""
    with serve(region_dir, worker, options=(("max_chunk", 4096),)) as device:
        (tmp_path / "corpus.bin").write_bytes(data)
        r = check(pmd, device, "files", str(tmp_path / "corpus.bin"), str(tmp_path), "8192")
        assert r.returncode == 1
        assert r.stdout.splitlines() == ["oneshot-op INVALID_ARGS"], r.stdout
        assert device.stats().ops == 0


def check_files(pmd: pathlib.Path, device: HostDevice, tmp_path: pathlib.Path, data: bytes, op_size: int) -> None:
    infile = tmp_path / "corpus.bin"
    infile.write_bytes(data)
    zc = zlib.compressobj(9, zlib.DEFLATED, -15)
    (tmp_path / "zlib.bin").write_bytes(zc.compress(data) + zc.flush())
    r = check(pmd, device, "files", str(infile), str(tmp_path), str(op_size))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    # Stateless: one raw deflate stream per op, with the CRC-32 and Adler-32 of its input.
    blob = (tmp_path / "oneshot.bin").read_bytes()
    recs: list[bytes] = []
    while blob:
        (n,) = struct.unpack_from("<I", blob)
        recs.append(blob[4:4 + n])
        blob = blob[4 + n:]
    chunks = [data[i:i + op_size] for i in range(0, len(data), op_size)]
    assert [zlib.decompress(rec, -15) for rec in recs] == chunks
    rows = [line.split()[1:] for line in lines if line.startswith("oneshot ")]
    assert rows == [[str(len(c)), str(len(rec)), f"{zlib.adler32(c) << 32 | zlib.crc32(c):016x}"]
                    for c, rec in zip(chunks, recs, strict=True)]
    got = dict(line.split(" ", 1) for line in lines if not line.startswith("oneshot "))
    # One stream: the whole corpus in a single raw deflate stream, with its CRC-32.
    assert zlib.decompress((tmp_path / "stream.bin").read_bytes(), -15) == data
    m = re.fullmatch(r"ops=(\d+) recoverable=(\d+) chksum=([0-9a-f]{16})", got["stream-compress"])
    assert m, got
    assert int(m[2]) > 0 and int(m[1]) > len(data) // 16384
    assert int(m[3], 16) == zlib.crc32(data)
    # Decompressed through PMD streams (5000-byte ops into 20000-byte destinations): its own
    # output and zlib's, with their Adler-32.
    for name in ("stream", "zlib"):
        assert (tmp_path / f"{name}.out").read_bytes() == data, name
        m = re.fullmatch(r"ops=(\d+) recoverable=(\d+) chksum=([0-9a-f]{16})", got[f"stream-decompress-{name}"])
        assert m, got
        assert int(m[2]) > 0, name
        assert int(m[3], 16) == zlib.adler32(data), name
    # Every op and every stream op went through the device.
    q = device.stats().queues
    assert set(q[0]["by_status"]) == {"ok"} and q[0]["ops"] > len(recs) + int(m[1])
    assert q[1]["by_status"] == {"ok": 6}  # three streams, created and destroyed


@pytest.mark.parametrize("in_flight", [False, True])
def test_a_device_that_needs_a_reset_fails_ops_and_recovers_on_start(
        pmd: pathlib.Path, device: HostDevice, worker: Worker, in_flight: bool) -> None:
    """The host marks the device NEEDS_RESET, between bursts or with a burst in flight (the backend
    not serving): every op of the burst comes back with an error status, none is lost and nothing
    crashes; stop/start resets the device and ops pass again. A stream from before the reset lost
    its state with it (its op fails); a new one works."""
    rest = dpdkbed.check_reset([str(CHECK), *eal(pmd, device, "0"), "--", "reset"], device, worker, in_flight)
    assert rest == ["old-stream ERROR", "new-stream SUCCESS"]
    # In flight, the backend may have served some of the burst before the test's NEEDS_RESET
    # reached it; the PMD had failed it already.
    ops = device.stats().queues[0]["ops"]
    assert (128 + 1 <= ops <= 192 + 1) if in_flight else ops == 128 + 1


@pytest.mark.parametrize("devargs, message", dpdkbed.BAD_DEVARGS)
def test_bad_devargs_are_a_clear_error(pmd: pathlib.Path, region_dir: pathlib.Path, devargs: str,
                                       message: str) -> None:
    vdev = dpdkbed.bad_vdev("compress_synth", devargs, region_dir)
    cmd = [str(CHECK), *dpdkbed.eal(pmd, vdev, region_dir.name, "0"), "--", "params"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode > 0
    assert message in r.stdout + r.stderr


def test_a_crypto_device_is_refused(pmd: pathlib.Path, region_dir: pathlib.Path, worker: Worker) -> None:
    with dpdkbed.served(region_dir, worker, "comp0", DevClass.CRYPTO, size=4 << 20, queues=2) as dev:
        r = check(pmd, dev, "params")
        assert r.returncode > 0
        assert "is not a compression device" in r.stdout + r.stderr


def test_a_device_another_process_holds_is_refused(pmd: pathlib.Path, device: HostDevice) -> None:
    """The claim every driver takes (a lock on the region's first byte) keeps the PMD off."""
    with dpdkbed.held(device):
        r = check(pmd, device, "params")
        assert r.returncode > 0
        assert "held by another process" in r.stdout + r.stderr
    assert check(pmd, device, "params").returncode == 0  # once it is let go, the device is the PMD's
