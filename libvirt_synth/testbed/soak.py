# SPDX-License-Identifier: Apache-2.0
"""The host's checker of ``synth-guest soak`` (guest/st_soak.c; docs/guest.md, "The soak"): a
continuous workload on sessions and a stream the guest creates once, one JSON line per op. From a
serial console log (which may hold the output of two QEMUs one after the other, a migration's
source and destination, and end in a partial line) it proves: no op failed; no op was lost (line
numbers ``n`` and each op's round ``k`` contiguous); each session kept its id (no re-keying) and
every AES-256-GCM and ChaCha20-Poly1305 tag is the one the host computes (``cryptography``) from
the known key, message, AAD and IV; no IV was used twice in a session; the zstd stream's output,
chunk after chunk, decompresses (``zstandard``, streaming, an unfinished frame allowed) to the
chunks' text. It returns the counts, the first problems found and the guest's timestamps.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import errors
from libvirt_synth.testbed import vm

KIND_GCM, KIND_CHACHA, KIND_ZSTD = 1, 2, 3
OP_KIND = {"gcm-seal": "aes-256-gcm", "gcm-open": "aes-256-gcm", "chacha-seal": "chacha20-poly1305",
           "zstd": "zstd-stream", "zstd-end": "zstd-stream"}
ROUND_OPS = ("gcm-seal", "gcm-open", "chacha-seal", "zstd")  # one of each per session per round
MAX_PROBLEMS = 20
_TYPES = ("soak-start", "soak-session", "soak")


# ---- what both sides compute (guest/st_soak.c) ----


def text_seed(seed: int, kind: int, k: int) -> int:
    return (seed + (kind << 40) + k) & vm.M64


def msg_len(kind: int, k: int) -> int:
    return 32 + (k * (37 if kind == KIND_GCM else 53)) % 225


def message(seed: int, kind: int, k: int) -> bytes:
    """The plaintext of op k: text(seed + kind * 2^40 + k, 32..256 bytes)."""
    return vm.text(text_seed(seed, kind, k), msg_len(kind, k))


def chunk(seed: int, k: int) -> bytes:
    """Chunk k of the compression stream: text(seed + 3 * 2^40 + k, 256..512 bytes)."""
    return vm.text(text_seed(seed, KIND_ZSTD, k), 256 + (k * 61) % 257)


def aad(kind: int, k: int) -> bytes:
    return b"SOAK" + kind.to_bytes(4, "big") + k.to_bytes(8, "big")


def chacha_iv(iv: bytes, k: int) -> bytes:
    return iv[:4] + k.to_bytes(8, "big")


def session_keys(key: bytes, index: int) -> tuple[bytes, bytes]:
    """(AES-256-GCM key, ChaCha20-Poly1305 key) of the index-th crypto device: key[0:32] and
    key[32:64], each byte XOR index."""
    if len(key) < 64:
        raise errors.ValueError(f"the soak needs a 64-byte synth.key, got {len(key)} bytes")
    return bytes(b ^ index for b in key[:32]), bytes(b ^ index for b in key[32:64])


def cmdline(soak_ms: int, gap_ms: int = 0, timeout_ms: int = 10000) -> str:
    """The soak's words for the kernel command line (append them to ``vm.Inputs.cmdline()``)."""
    if not 0 <= soak_ms < 1 << 32 or not 0 <= gap_ms <= 60000 or not 1 <= timeout_ms <= 600000:
        raise errors.ValueError(f"soak_ms={soak_ms} gap_ms={gap_ms} timeout_ms={timeout_ms}: expected "
                                "0 <= soak_ms < 2^32 (0: forever), 0..60000, 1..600000")
    return f"synth.soak_ms={soak_ms} synth.soak_gap_ms={gap_ms} synth.soak_timeout_ms={timeout_ms}"


# ---- the console ----


@dataclass
class SoakLog:
    """The soak's records in log order, and what the parser had to mend or skip."""

    records: list[dict[str, Any]] = field(default_factory=list)
    partial: int = 0     # fragments of lines that did not parse (a cut last line, noise)
    rejoined: int = 0    # lines split in two by a line break, put back together


def _load(text: str) -> dict[str, Any] | None:
    import json

    try:
        rec = json.loads(text)
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    if rec.get("type") in _TYPES or (rec.get("type") == "summary" and rec.get("command") == "soak"):
        return rec
    return None


def parse(log: str) -> SoakLog:
    """The soak's lines from a console log: a JSON object starting anywhere in a line (after
    escape sequences); other lines ignored. A line that does not parse is tried once with the
    next line appended (a log whose line was cut where one QEMU stopped and the next went on)."""
    out = SoakLog()
    lines = log.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\r")
        i += 1
        at = line.find('{"type":')
        if at < 0:
            continue
        rec = _load(line[at:])
        if rec is None and i < len(lines) and '{"type":' not in lines[i]:
            rec = _load(line[at:] + lines[i].rstrip("\r"))
            if rec is not None:
                out.rejoined += 1
                i += 1
        if rec is None:
            out.partial += 1
            continue
        out.records.append(rec)
    return out


# ---- the check ----


@dataclass
class Stamp:
    n: int
    op: str
    t: int        # guest CLOCK_MONOTONIC, ns, when the op completed (tick: when printed)
    dur: int = 0  # ns the op took (0 for ticks)


@dataclass
class SoakResult:
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS, in the order found
    problem_count: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # op -> lines (ticks included)
    ops: int = 0
    failed: int = 0
    sessions: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[Stamp] = field(default_factory=list)  # every soak line, by n
    duplicates: int = 0  # identical lines seen twice (ignored)
    partial: int = 0
    rejoined: int = 0
    summary: dict[str, Any] | None = None  # the guest's closing line, if the log has it

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def op_times_ns(self) -> list[int]:
        return [s.t for s in self.timeline if s.op != "tick"]

    @property
    def tick_times_ns(self) -> list[int]:
        return [s.t for s in self.timeline if s.op == "tick"]

    def gaps(self, top: int = 5) -> list[tuple[int, Stamp]]:
        """The largest gaps in guest time between consecutive lines: (ns, the line after it)."""
        pairs = [(b.t - a.t, b) for a, b in zip(self.timeline, self.timeline[1:], strict=False)]
        return sorted(pairs, key=lambda p: -p[0])[:top]

    def slowest(self, top: int = 5) -> list[Stamp]:
        return sorted((s for s in self.timeline if s.op != "tick"), key=lambda s: -s.dur)[:top]

    def add(self, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


class _Stream:
    """One zstd stream's decoder, fed chunk after chunk."""

    def __init__(self) -> None:
        import zstandard

        self.dec = zstandard.ZstdDecompressor().decompressobj()
        self.broken = False

    def feed(self, blob: bytes) -> bytes:
        return bytes(self.dec.decompress(blob))


def check(log: str | SoakLog, key: bytes, iv: bytes, seed: int, require: Iterable[str] = ()) -> SoakResult:
    """Check a soak's output against the host's own computation. ``key``, ``iv`` and ``seed`` are
    the guest's synth.key (64 bytes), synth.iv and synth.seed; ``require`` names session kinds
    (aes-256-gcm, chacha20-poly1305, zstd-stream) that must have run on at least one device."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    parsed = parse(log) if isinstance(log, str) else log
    res = SoakResult(partial=parsed.partial, rejoined=parsed.rejoined)
    starts = [r for r in parsed.records if r["type"] == "soak-start"]
    summaries = [r for r in parsed.records if r["type"] == "summary"]
    res.sessions = [r for r in parsed.records if r["type"] == "soak-session"]
    res.summary = summaries[-1] if summaries else None
    if not starts:
        res.add("no soak-start line: the log does not hold the soak's beginning")
    elif len(starts) > 1:
        res.add(f"the soak started {len(starts)} times (a guest that rebooted?)")
    elif starts[0].get("seed") != seed:
        res.add(f"the guest used seed {starts[0].get('seed')}, the host expects {seed}")

    # sessions: (dev, kind) -> id; dev -> crypto device index
    ids: dict[tuple[str, str], int] = {}
    index: dict[str, int] = {}
    for s in res.sessions:
        if s.get("status") == "ok":
            ids[(s["dev"], s["kind"])] = s["id"]
            index[s["dev"]] = s.get("index", 0)
        elif s.get("status") != "not served":
            res.add(f"{s.get('kind')} on {s.get('dev')}: the session was not created: {s.get('status')}")
    for kind in require:
        if not any(k == kind for _, k in ids):
            res.add(f"no {kind} session ran (required)")

    # the op lines, by n; identical repeats ignored, different ones are a problem
    by_n: dict[int, dict[str, Any]] = {}
    for r in parsed.records:
        if r["type"] != "soak":
            continue
        n = r.get("n")
        if not isinstance(n, int):
            res.add(f"a soak line without a line number: {r}")
            continue
        if n in by_n:
            if by_n[n] == r:
                res.duplicates += 1
            else:
                res.add(f"line n={n} reported twice, differently (the guest ran it again?)")
            continue
        by_n[n] = r
    ordered = [by_n[n] for n in sorted(by_n)]
    expect_n = 0
    for r in ordered:
        if r["n"] != expect_n:
            res.add(f"lines n={expect_n}..{r['n'] - 1} are missing (ops lost)")
        expect_n = r["n"] + 1

    keys: dict[str, tuple[AESGCM, ChaCha20Poly1305]] = {}
    next_k: dict[tuple[str, str], int] = {}
    seen_iv: dict[tuple[str, int], set[bytes]] = {}
    streams: dict[tuple[str, int], _Stream] = {}
    last_t = None
    for r in ordered:
        op, n, t = r.get("op", "?"), r["n"], r.get("t", 0)
        res.counts[op] = res.counts.get(op, 0) + 1
        res.timeline.append(Stamp(n, op, t, r.get("dur", 0)))
        if last_t is not None and t < last_t:
            res.add(f"n={n}: the guest's monotonic clock went back by {last_t - t} ns")
        last_t = t
        if op == "tick":
            continue
        if op not in OP_KIND:
            res.add(f"n={n}: unknown op {op!r}")
            continue
        res.ops += 1
        dev, k, sid, status = r.get("dev", "?"), r.get("k"), r.get("id"), r.get("status")
        where = f"n={n} {op} k={k} on {dev}"
        if status != "ok":
            res.failed += 1
            res.add(f"{where}: {status}")
        if not isinstance(sid, int) or ids.get((dev, OP_KIND[op])) != sid:
            res.add(f"{where}: session {sid}, but the soak created {ids.get((dev, OP_KIND[op]))} (re-created?)")
            continue
        if not isinstance(k, int):
            res.add(f"{where}: no round number")
            continue
        seq = (dev, "zstd" if op == "zstd-end" else op)  # the end comes after the last chunk
        want = next_k.get(seq, 0)
        if k != want:
            res.add(f"{where}: round {want} was expected (ops lost or repeated)")
        if op != "zstd-end":
            next_k[seq] = k + 1
        if op in ("gcm-seal", "chacha-seal"):
            _check_seal(res, r, where, op, key, iv, seed, index.get(dev, 0), keys, seen_iv)
        elif op in ("zstd", "zstd-end"):
            _check_chunk(res, r, where, op, seed, streams.setdefault((dev, sid), _Stream()))

    # every session went on to the end: no op kind stopped while the others ran
    rounds = {key_: k for key_, k in next_k.items() if key_[1] in ROUND_OPS}
    if rounds:
        most = max(rounds.values())
        for (dev, op), k in sorted(rounds.items()):
            if k < most - 1:
                res.add(f"{op} on {dev} stopped after {k} rounds while others ran {most}")
    if res.ops == 0:
        res.add("no op was reported")
    if res.summary is not None:
        if res.summary.get("ops") != res.ops:
            res.add(f"the guest says it did {res.summary.get('ops')} ops, the log has {res.ops}")
        shown = res.failed + len([s for s in res.sessions if s.get("status") not in ("ok", "not served")])
        if res.summary.get("failed") != shown:
            res.add(f"the guest counts {res.summary.get('failed')} failures, the log shows {shown}")
    return res


def _check_seal(res: SoakResult, r: dict[str, Any], where: str, op: str, key: bytes, iv: bytes, seed: int,
                index: int, keys: dict[str, Any], seen_iv: dict[tuple[str, int], set[bytes]]) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    kind, k, dev = (KIND_GCM if op == "gcm-seal" else KIND_CHACHA), r["k"], r["dev"]
    if dev not in keys:
        gk, ck = session_keys(key, index)
        keys[dev] = (AESGCM(gk), ChaCha20Poly1305(ck))
    if r.get("len") != msg_len(kind, k):
        res.add(f"{where}: {r.get('len')} bytes sealed, the message is {msg_len(kind, k)}")
    if "iv" not in r:
        return  # a failed seal (counted above)
    got_iv = bytes.fromhex(r["iv"])
    if op == "chacha-seal" and got_iv != chacha_iv(iv, k):
        res.add(f"{where}: IV {got_iv.hex()}, the counter gives {chacha_iv(iv, k).hex()}")
    ivs = seen_iv.setdefault((dev, r["id"]), set())
    if got_iv in ivs:
        res.add(f"{where}: IV {got_iv.hex()} repeated in session {r['id']}")
    ivs.add(got_iv)
    if r.get("status") != "ok":
        return
    if len(got_iv) != 12:
        res.add(f"{where}: a {len(got_iv)}-byte IV")
        return
    aead = keys[dev][0 if kind == KIND_GCM else 1]
    want = aead.encrypt(got_iv, message(seed, kind, k), aad(kind, k))[-16:]
    if r.get("tag") != want.hex():
        res.add(f"{where}: tag {r.get('tag')}, the host computes {want.hex()}")


def _check_chunk(res: SoakResult, r: dict[str, Any], where: str, op: str, seed: int, s: _Stream) -> None:
    import zstandard

    if s.broken:
        return
    if r.get("status") != "ok" or "out" not in r:
        s.broken = True  # what the stream holds is unknown from here on
        res.add(f"{where}: the stream's later output is not checked")
        return
    want = b"" if op == "zstd-end" else chunk(seed, r["k"])
    try:
        got = s.feed(bytes.fromhex(r["out"]))
    except (zstandard.ZstdError, ValueError) as e:
        s.broken = True
        res.add(f"{where}: the stream's output does not decompress: {e}")
        return
    if r.get("len") != len(want) or got != want:
        s.broken = True
        res.add(f"{where}: decompressed to {len(got)} bytes that are not the chunk's {len(want)} (crc32 "
                f"{zlib.crc32(got):08x} vs {zlib.crc32(want):08x})")
    elif op == "zstd-end" and not s.dec.eof:
        res.add(f"{where}: the stream's end did not finish the zstd frame")


def check_inputs(log: str | SoakLog, inputs: vm.Inputs, require: Sequence[str] = ()) -> SoakResult:
    """check() with the key, IV and seed of the inputs a VM got on its command line."""
    return check(log, inputs.key, inputs.iv, inputs.seed, require)


# ---- a console that follows the VM across hosts ----


class SerialSink:
    """A Unix socket every QEMU of a VM's moves connects its serial port to (``serial_xml``), and
    what they all sent, in the order it came. A log file does not serve: the QEMU a migration or a
    restore starts may open it afresh and lose what the one before it wrote. ``on_data`` sees each
    piece as it arrives (with the host's monotonic time), for measuring gaps."""

    def __init__(self, path: str, on_data: Any = None) -> None:
        import os
        import socket
        import threading

        self.path = path
        self.on_data = on_data
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        self._sock.bind(path)
        os.chmod(path, 0o777)  # QEMU runs as another user
        self._sock.listen(8)
        self._threads: list[threading.Thread] = []
        self._closed = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._read, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _read(self, conn: Any) -> None:
        import time

        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self._lock:
                    self._chunks.append(data)
                if self.on_data is not None:
                    self.on_data(time.monotonic(), data)

    def text(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode(errors="replace")

    def close(self) -> str:
        import os
        import time

        time.sleep(0.2)  # the last bytes in flight
        self._closed = True
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
        return self.text()

    def serial_xml(self, domain_xml: str) -> str:
        """The domain XML with its serial port connected here instead of a pty and its log."""
        import re

        out, n = re.subn(r"""<serial type=["']pty["']>\s*<log file=["'][^"']*["'] append=["']off["']/>""",
                         f"<serial type='unix'><source mode='connect' path='{self.path}'/>", domain_xml)
        if n != 1:
            raise errors.ValueError("the domain XML has no pty serial port with a log file to replace")
        return out
