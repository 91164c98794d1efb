# SPDX-License-Identifier: Apache-2.0
"""The soak: ``synth-guest soak`` runs here, on the host, against regions served in this process
(two crypto devices, one on each plugin the migration test uses, and a compression device), and
its output must pass the host's checker (libvirt_synth/testbed/soak.py). Then the checker is shown
to catch each way the output could be wrong: a tag, a repeated IV, a lost op, a failed op, a
corrupted stream chunk, a re-created session; and to read a console log that two QEMUs wrote one
after the other. Last, a backend that stops serving for a while: the guest reports the ops that
failed, and the same sessions go on working when it is back."""

from __future__ import annotations

import json
import pathlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libvirt_synth.abi import DevClass
from libvirt_synth.host.device import HostDevice, Worker
from libvirt_synth.testbed import soak
from libvirt_synth.testbed import vm as guestvm

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEED = 20240917
ALL = ("aes-256-gcm", "chacha20-poly1305", "zstd-stream")


def synth_guest() -> pathlib.Path:
    subprocess.run(["make", "-s", "-C", str(ROOT), "synth-guest"], check=True)
    return ROOT / "native/build/synth-guest"


def params_file(tmp: pathlib.Path, inputs: guestvm.Inputs, soak_ms: int, gap_ms: int = 1,
                timeout_ms: int = 10000) -> pathlib.Path:
    """The command line a VM would get, soak words included (synth-guest reads it as a VM does)."""
    p = tmp / "cmdline"
    p.write_text(inputs.cmdline() + " " + soak.cmdline(soak_ms, gap_ms, timeout_ms))
    return p


@dataclass
class Run:
    inputs: guestvm.Inputs
    rc: int
    out: str
    host_ops: dict[str, int]  # device path -> ops the host served
    paths: list[str]

    def lines(self, summary: bool = False) -> list[dict[str, Any]]:
        """The output as records; without the closing summary unless asked (a soak still running),
        so that a doctored line is the only thing wrong."""
        recs = [json.loads(x) for x in self.out.splitlines()]
        return recs if summary else [r for r in recs if r["type"] != "summary"]

    def check(self, lines: list[dict[str, Any]] | None = None) -> soak.SoakResult:
        text = self.out if lines is None else "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines)
        return soak.check_inputs(text, self.inputs, require=ALL)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One 1.5 s soak on a crypto device on openssl, one on ipsec-mb (both serve AES-GCM and
    ChaCha20-Poly1305) and a compression device."""
    tmp = tmp_path_factory.mktemp("soak")
    region = pathlib.Path("/dev/shm") if pathlib.Path("/dev/shm").is_dir() else tmp
    base = region / f"synth-soak-{tmp.name}"
    devs = [HostDevice.create(f"{base}-c0", DevClass.CRYPTO, size=4 << 20, plugin="openssl"),
            HostDevice.create(f"{base}-c1", DevClass.CRYPTO, size=4 << 20, plugin="ipsec-mb"),
            HostDevice.create(f"{base}-z", DevClass.COMPRESS, size=4 << 20)]
    worker = Worker(spin_us=200, max_sleep_us=200)
    try:
        for d in devs:
            worker.add(d)
        inputs = guestvm.Inputs.make(SEED, steps=("probe", "soak"))
        r = subprocess.run([str(synth_guest()), "--params", str(params_file(tmp, inputs, 1500)), "soak",
                            *[d.path for d in devs]], capture_output=True, text=True, timeout=60)
        assert r.stderr == ""
        yield Run(inputs, r.returncode, r.stdout, {d.path: d.stats().ops for d in devs}, [d.path for d in devs])
    finally:
        worker.stop()
        for d in devs:
            d.destroy()


def test_the_soak_passes_the_hosts_check(run: Run) -> None:
    res = run.check()
    assert res.ok, res.problems
    assert run.rc == 0 and res.summary is not None and res.summary["failed"] == 0
    assert res.failed == 0 and res.partial == 0 and res.duplicates == 0
    assert {s["kind"]: s["status"] for s in res.sessions if s["dev"] == run.paths[1]} == \
        {"aes-256-gcm": "ok", "chacha20-poly1305": "ok"}
    rounds = res.summary["rounds"]
    assert rounds > 0 and res.counts["tick"] > 0
    assert res.counts == {"tick": res.counts["tick"], "gcm-seal": 2 * rounds, "gcm-open": 2 * rounds,
                          "chacha-seal": 2 * rounds, "zstd": rounds, "zstd-end": 1}


def test_the_checker_accepts_a_device_that_does_not_serve_an_algorithm(run: Run) -> None:
    """A device whose plugin lacks ChaCha20-Poly1305 (hardware often does) reports that session
    "not served" and runs no ChaCha ops: the log is still a passing soak. (Every built-in crypto
    plugin serves it now, so the log is made so from a real one.)"""
    lines = run.lines()
    dev = run.paths[1]
    for s in lines:
        if s["type"] == "soak-session" and s["dev"] == dev and s["kind"] == "chacha20-poly1305":
            s["status"] = "not served"
    kept = [x for x in lines if not (x["type"] == "soak" and x.get("dev") == dev and x["op"] == "chacha-seal")]
    assert len(kept) < len(lines)
    for i, x in enumerate(r for r in kept if r["type"] == "soak"):
        x["n"] = i + min(r["n"] for r in lines if r["type"] == "soak")
    res = run.check(kept)
    assert res.ok, res.problems
    # while a session that failed for another reason is a problem
    for s in kept:
        if s["type"] == "soak-session" and s["dev"] == dev and s["kind"] == "chacha20-poly1305":
            s["status"] = "no resources"
    assert any("the session was not created: no resources" in p for p in run.check(kept).problems)
    assert len(res.op_times_ns) == res.ops and res.gaps(1)[0][0] >= 0


def test_the_host_served_exactly_the_ops_the_guest_reports(run: Run) -> None:
    """Sessions and the stream were created once: the host's op count is the guest's ops plus one
    create and one destroy per session, nothing more (a re-keyed session would add two)."""
    per_dev: dict[str, int] = {}
    for r in run.lines():
        if r["type"] == "soak" and r["op"] != "tick":
            per_dev[r["dev"]] = per_dev.get(r["dev"], 0) + 1
    sessions = {p: 2 * len([s for s in run.check().sessions if s["dev"] == p and s["status"] == "ok"])
                for p in run.paths}
    assert run.host_ops == {p: per_dev[p] + sessions[p] for p in run.paths}


def nth(lines: list[dict[str, Any]], op: str, k: int, dev: str | None = None) -> dict[str, Any]:
    return next(x for x in lines if x.get("op") == op and x["k"] == k and (dev is None or x["dev"] == dev))


def flip(hexstr: str, at: int) -> str:
    return hexstr[:at] + ("0" if hexstr[at] != "0" else "1") + hexstr[at + 1:]


def test_the_checker_catches_a_wrong_tag(run: Run) -> None:
    for op in ("gcm-seal", "chacha-seal"):
        lines = run.lines()
        rec = nth(lines, op, 3)
        rec["tag"] = flip(rec["tag"], 5)
        res = run.check(lines)
        assert res.problem_count == 1 and "the host computes" in res.problems[0] and f"{op} k=3" in res.problems[0]


def test_the_checker_catches_a_repeated_iv(run: Run) -> None:
    """An IV used twice, with the tag right for it: only the repetition is wrong."""
    lines = run.lines()
    dev = run.paths[0]
    first, second = nth(lines, "gcm-seal", 4, dev), nth(lines, "gcm-seal", 5, dev)
    second["iv"] = first["iv"]
    gk, _ = soak.session_keys(run.inputs.key, 0)
    second["tag"] = AESGCM(gk).encrypt(bytes.fromhex(first["iv"]), soak.message(SEED, soak.KIND_GCM, 5),
                                       soak.aad(soak.KIND_GCM, 5))[-16:].hex()
    res = run.check(lines)
    assert res.problem_count == 1 and "repeated in session" in res.problems[0], res.problems
    lines = run.lines()  # a guest-chosen IV: off its counter, and repeated
    nth(lines, "chacha-seal", 7)["iv"] = nth(lines, "chacha-seal", 6)["iv"]
    problems = run.check(lines).problems
    assert any("the counter gives" in p for p in problems) and any("repeated" in p for p in problems)


def test_the_checker_catches_a_lost_op(run: Run) -> None:
    lines = run.lines()
    lost = nth(lines, "gcm-open", 9)
    lines.remove(lost)
    assert any(f"n={lost['n']}..{lost['n']} are missing" in p for p in run.check(lines).problems)
    # the line numbers made contiguous again: the round numbers still show the gap
    for x in lines:
        if x["type"] == "soak" and x["n"] > lost["n"]:
            x["n"] -= 1
    res = run.check(lines)
    assert res.problem_count == 1 and "round 9 was expected" in res.problems[0]


def test_the_checker_catches_a_failed_op(run: Run) -> None:
    lines = run.lines()
    nth(lines, "gcm-open", 2)["status"] = "authentication failed"
    res = run.check(lines)
    assert res.failed == 1 and res.problem_count == 1 and res.problems[0].endswith(": authentication failed")
    lines = run.lines(summary=True)  # and the guest's own count disagrees with the log
    nth(lines, "gcm-open", 2)["status"] = "authentication failed"
    assert run.check(lines).problems[1:] == ["the guest counts 0 failures, the log shows 1"]


def test_the_checker_catches_a_corrupted_stream_chunk(run: Run) -> None:
    lines = run.lines()
    rec = nth(lines, "zstd", 6)
    rec["out"] = flip(rec["out"], len(rec["out"]) // 2)
    res = run.check(lines)
    assert res.problem_count == 1 and "zstd k=6" in res.problems[0], res.problems
    lines = run.lines()  # a chunk lost: what follows no longer decodes to the text
    lines.remove(nth(lines, "zstd", 6))
    assert any("zstd k=7" in p and ("decompress" in p or "not the chunk" in p) for p in run.check(lines).problems)


def test_the_checker_catches_a_re_created_session(run: Run) -> None:
    lines = run.lines()
    rec = nth(lines, "chacha-seal", 8)
    rec["id"] += 1
    assert any("re-created" in p for p in run.check(lines).problems)


def test_the_checker_reads_two_qemus_logs_one_after_the_other(run: Run) -> None:
    """A migration's source QEMU stops in the middle of a line; the destination's output follows,
    with or without a line break in between; the last line may be cut."""
    head = "SeaBIOS\r\n\x1b[2J@@SYNTH-BEGIN probe\r\n@@SYNTH-END probe rc=0\r\n@@SYNTH-BEGIN soak\r\n"
    out = run.out.replace("\n", "\r\n")
    cut = out.index('"op":"chacha-seal","k":11')
    for joint in ("", "\r\n"):
        res = soak.check_inputs(head + out[:cut] + joint + out[cut:] + "@@SYNTH-END soak rc=0\r\n",
                                run.inputs, require=ALL)
        assert res.ok, res.problems
        assert (res.rejoined, res.partial) == ((1, 0) if joint else (0, 0))
    res = soak.check_inputs(head + out[:cut], run.inputs, require=ALL)  # the log ends mid-line
    assert res.ok and res.partial == 1 and res.summary is None
    # a line's first half lost where the logs meet: the op is missing
    start = out.rindex("\r\n", 0, cut) + 2
    res = soak.check_inputs(out[:start] + "[  12.5] kernel: noise\r\n" + out[cut:], run.inputs, require=ALL)
    assert not res.ok and any("missing" in p for p in res.problems)


def test_the_checker_wants_its_inputs(run: Run) -> None:
    other = guestvm.Inputs.make(SEED + 1)
    res = soak.check_inputs(run.out, other, require=ALL)
    assert any("the host expects" in p for p in res.problems) and any("the host computes" in p for p in res.problems)
    assert soak.check("", run.inputs.key, run.inputs.iv, SEED).problems == \
        ["no soak-start line: the log does not hold the soak's beginning", "no op was reported"]
    with pytest.raises(ValueError, match="64-byte"):
        soak.check(run.out, run.inputs.key[:32], run.inputs.iv, SEED)
    with pytest.raises(ValueError, match="soak_ms"):
        soak.cmdline(-1)


def test_a_backend_that_stops_serving_for_a_while(tmp_path: pathlib.Path) -> None:
    """The worker lets go of the device mid-soak and takes it back once the guest has reported a
    failed op: those ops are reported (timed out, not run), and afterwards the same sessions serve
    again, every tag still the host's, no IV repeated."""
    region = pathlib.Path("/dev/shm") if pathlib.Path("/dev/shm").is_dir() else tmp_path
    dev = HostDevice.create(str(region / f"synth-soak-pause-{tmp_path.name}"), DevClass.CRYPTO, size=4 << 20,
                            plugin="openssl")
    worker = Worker(spin_us=200, max_sleep_us=200)
    inputs = guestvm.Inputs.make(SEED)
    out: list[str] = []
    try:
        worker.add(dev)
        proc = subprocess.Popen([str(synth_guest()), "--params",
                                 str(params_file(tmp_path, inputs, 3000, gap_ms=2, timeout_ms=200)), "soak",
                                 dev.path], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        state = "serving"
        for line in proc.stdout:
            out.append(line)
            rec = json.loads(line)
            if state == "serving" and rec.get("op") == "gcm-seal" and rec["k"] == 20:
                worker.remove(dev)
                state = "away"
            elif state == "away" and rec.get("status") not in (None, "ok"):
                worker.add(dev)
                state = "back"
        assert proc.wait(timeout=60) == 1 and state == "back"
    finally:
        worker.stop()
        dev.destroy()
    res = soak.check_inputs("".join(out), inputs, require=("aes-256-gcm", "chacha20-poly1305"))
    assert 1 <= res.failed < 16 and res.summary is not None and res.summary["failed"] == res.failed
    assert all(p.endswith((": Connection timed out", ": Device or resource busy", ": not run"))
               for p in res.problems), res.problems
    assert res.problem_count == res.failed  # nothing else: tags, IVs, rounds all right
    recs = [json.loads(x) for x in out]
    last_failure = max(r["n"] for r in recs if r["type"] == "soak" and r.get("status") not in (None, "ok"))
    assert any(r.get("op") == "gcm-seal" and r["status"] == "ok" and r["n"] > last_failure for r in recs), \
        "the sessions serve again"
