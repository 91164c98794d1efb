# SPDX-License-Identifier: Apache-2.0
"""The guest image's contract, seen from the host: the inputs it takes on the kernel command line,
the results it prints on the serial console, and the host's own reference computation that each
result is checked against (the ``cryptography``, ``zlib``, ``zstandard`` and ``lz4`` packages:
ciphertexts and tags, decompressed bytes, frames). Also: the domain XML for a run (template
``vnf-kernel`` + the XML generator) and running it through libvirt. The end-to-end test and
``virt-synth demo --connect`` use this; docs/guest.md describes the protocol.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pathlib
import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import errors

MARK = "@@SYNTH-"
CMDLINE_MAX = 2047  # x86 COMMAND_LINE_SIZE - 1
BASE_CMDLINE = "console=ttyS0 quiet loglevel=3 panic=-1"
WORDS = (b"synthetic", b"device", b"portable", b"vnf", b"host", b"guest", b"crypto", b"packet", b"ring", b"queue",
         b"arena", b"libvirt", b"qemu", b"plugin", b"session", b"frame")
M64 = (1 << 64) - 1
# What comes back identical from any host: everything but timings and the plugins' names.
PORTABLE_TYPES = ("kat", "crypto", "crypto-burst", "compress", "stream", "decompress", "packet")


# ---- the deterministic data both sides make (guest/params.c) ----


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def text(seed: int, n: int) -> bytes:
    """sg_text(): words picked by SplitMix64(seed), separated by a space or (1 in 8) a newline."""
    out = bytearray()
    st = seed & M64
    while len(out) < n:
        st, r = _splitmix64(st)
        out += WORDS[r & 15]
        if len(out) < n:
            out += b"\n" if (r >> 4) % 8 == 0 else b" "
    return bytes(out[:n])


def frame_len(dev: int, k: int) -> int:
    return 60 + (dev * 131 + k * 37) % 200


def frame(seed: int, dev: int, k: int) -> bytes:
    """sg_frame(): frame k of the dev-th packet device (dst MAC ..:dev^1, src MAC ..:dev, 0x88b5)."""
    hdr = bytes([2, 0, 0, 0, 0, (dev ^ 1) & 0xFF, 2, 0, 0, 0, 0, dev & 0xFF, 0x88, 0xB5])
    return hdr + text(seed + 1000 * (dev + 1) + k, frame_len(dev, k) - 14)


# ---- inputs ----


def _compressors() -> dict[str, Callable[[bytes], bytes]]:
    """Host compressors for the frames the guest decompresses (those whose package is installed)."""
    out: dict[str, Callable[[bytes], bytes]] = {
        "gzip": lambda b: zlib.compress(b, 9, wbits=31),
    }
    try:
        import zstandard

        out["zstd"] = lambda b: zstandard.ZstdCompressor(level=19).compress(b)
    except ImportError:
        pass
    try:
        import lz4.frame

        out["lz4"] = lambda b: bytes(lz4.frame.compress(b, compression_level=12))
    except ImportError:
        pass
    return out


@dataclass
class Inputs:
    """What the host asks the guest to do: steps, keys and data (docs/guest.md, "Inputs")."""

    key: bytes
    iv: bytes
    aad: bytes
    data: bytes
    seed: int
    text_len: int = 4096
    frames: int = 8
    burst: int = 16
    bench_ms: int = 200
    wait_ms: int = 2000
    unz: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (alg, frame, original)
    steps: tuple[str, ...] = ("probe", "selftest", "afalg-kat", "bench")

    @classmethod
    def make(cls, seed: int, steps: Sequence[str] = ("probe", "selftest", "afalg-kat", "bench")) -> Inputs:
        """Inputs drawn from ``seed``: the same seed gives the same command line."""
        rng = random.Random(seed)
        unz = []
        for i, (alg, compress) in enumerate(sorted(_compressors().items())):
            original = text(seed + 77 + i, 256 if alg == "lz4" else 400)
            unz.append((alg, compress(original), original))
        return cls(key=rng.randbytes(64), iv=rng.randbytes(16), aad=rng.randbytes(12), data=rng.randbytes(64),
                   seed=seed, unz=unz, steps=tuple(steps))

    def cmdline(self, base: str = BASE_CMDLINE) -> str:
        words = [base, f"synth.cmd={','.join(self.steps)}", f"synth.key={self.key.hex()}",
                 f"synth.iv={self.iv.hex()}", f"synth.aad={self.aad.hex()}", f"synth.data={self.data.hex()}",
                 f"synth.seed={self.seed}", f"synth.text={self.text_len}", f"synth.frames={self.frames}",
                 f"synth.burst={self.burst}", f"synth.bench_ms={self.bench_ms}", f"synth.wait_ms={self.wait_ms}"]
        words += [f"synth.unz.{i}={alg}:{blob.hex()}" for i, (alg, blob, _) in enumerate(self.unz)]
        line = " ".join(words)
        if len(line) > CMDLINE_MAX:
            raise errors.ValueError(f"the kernel command line would be {len(line)} bytes; the kernel keeps "
                                    f"{CMDLINE_MAX}: use shorter data")
        return line


# ---- the console ----


@dataclass
class Step:
    name: str
    rc: int | None = None
    records: list[dict[str, Any]] = field(default_factory=list)  # JSON lines
    text: list[str] = field(default_factory=list)                # other lines

    def of(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") in types]


@dataclass
class GuestRun:
    image: dict[str, Any] = field(default_factory=dict)
    modules_loaded: int = 0
    modules_failed: list[str] = field(default_factory=list)
    steps: dict[str, Step] = field(default_factory=dict)
    done: bool = False

    def step(self, name: str) -> Step:
        if name not in self.steps:
            raise errors.NotFoundError(f"the guest did not run step {name!r} (ran: {', '.join(self.steps)})")
        return self.steps[name]

    def portable(self, algorithms: set[str] | None = None) -> list[str]:
        """The selftest's result lines that any host must reproduce byte for byte (canonical JSON),
        optionally only those of some crypto algorithms (and every non-crypto line)."""
        out = []
        for r in self.step("selftest").records:
            if r.get("type") not in PORTABLE_TYPES:
                continue
            if algorithms is not None and r.get("type") in ("kat", "crypto", "crypto-burst") \
                    and r.get("alg") not in algorithms:
                continue
            out.append(json.dumps(r, sort_keys=True))
        return out


def parse_console(log: str) -> GuestRun:
    """Parse a serial console log written by the guest image's init. Lines outside the markers
    (firmware, kernel) are ignored; escape sequences before a marker are skipped."""
    run = GuestRun()
    cur: Step | None = None
    for raw in log.splitlines():
        line = raw.rstrip("\r")
        at = line.find(MARK)
        if at >= 0:
            word, _, rest = line[at + len(MARK):].partition(" ")
            if word == "IMAGE":
                try:
                    run.image = json.loads(rest)
                except ValueError:
                    run.image = {"unparsed": rest}
            elif word == "MODULES":
                parts = rest.split()
                kv = dict(p.split("=", 1) for p in parts if "=" in p)
                run.modules_loaded = int(kv.get("loaded", "0"))
                run.modules_failed = [p for p in parts if "=" not in p]
            elif word == "BEGIN":
                cur = run.steps.setdefault(rest.strip(), Step(rest.strip()))
            elif word == "END" and cur is not None:
                rc = rest.rpartition("rc=")[2]
                cur.rc = int(rc) if rc.lstrip("-").isdigit() else None
                cur = None
            elif word == "DONE":
                run.done = True
            continue
        if cur is None:
            continue
        stripped = line.strip()
        if stripped.startswith("{"):
            try:
                cur.records.append(json.loads(stripped))
                continue
            except ValueError:
                pass
        if stripped:
            cur.text.append(stripped)
    return run


# ---- the host's reference computation ----


@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "ok": self.ok, "detail": self.detail}


def crypto_reference(alg: str, key: bytes, iv: bytes, aad: bytes, data: bytes,
                     tag_len: int = 16) -> tuple[bytes, bytes]:
    """(ciphertext, tag) as the device computes them (device-abi.md, section 8), with OpenSSL
    through ``cryptography`` and the standard library's HMAC."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    if alg in ("aes-128-gcm", "aes-256-gcm"):
        out = AESGCM(key).encrypt(iv, data, aad)
        return out[:-16], out[-16:]
    if alg == "chacha20-poly1305":
        out = ChaCha20Poly1305(key).encrypt(iv, data, aad)
        return out[:-16], out[-16:]
    if alg == "aes-256-cbc-hmac-sha256":
        enc = Cipher(algorithms.AES(key[:32]), modes.CBC(iv)).encryptor()
        ct = enc.update(data) + enc.finalize()
        return ct, hmac.new(key[32:], aad + iv + ct, hashlib.sha256).digest()[:tag_len]
    if alg == "hmac-sha256":
        return b"", hmac.new(key, aad + data, hashlib.sha256).digest()[:tag_len]
    raise errors.ValueError(f"no reference for {alg}")


def _shape(alg: str, inp: Inputs) -> tuple[bytes, bytes, bytes, int]:
    """key, iv, data, tag length the guest uses for ``alg`` (guest/st_crypto.c, shape())."""
    if alg == "aes-128-gcm":
        return inp.key[:16], inp.iv[:12], inp.data, 16
    if alg in ("aes-256-gcm", "chacha20-poly1305"):
        return inp.key[:32], inp.iv[:12], inp.data, 16
    if alg == "aes-256-cbc-hmac-sha256":
        return inp.key, inp.iv, inp.data[:len(inp.data) // 16 * 16], 16
    return inp.key, b"", inp.data, 32


def decompress(alg: str, blob: bytes) -> bytes:
    if alg == "deflate":
        return zlib.decompress(blob, wbits=-15)
    if alg == "zlib":
        return zlib.decompress(blob)
    if alg == "gzip":
        return zlib.decompress(blob, wbits=31)
    if alg == "zstd":
        import zstandard

        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(blob))
    if alg == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(blob))
    raise errors.ValueError(f"unknown compression algorithm {alg}")


def _check_crypto(r: dict[str, Any], inp: Inputs) -> Check:
    alg = r["alg"]
    what = f"crypto {alg} on {r['dev']}: ciphertext and tag equal the host's"
    key, iv, data, tag_len = _shape(alg, inp)
    try:
        ct, tag = crypto_reference(alg, key, iv, inp.aad, data, tag_len)
    except ImportError as e:
        return Check(what, False, f"no reference: {e}")
    got_ct, got_tag = bytes.fromhex(r.get("ciphertext", "")), bytes.fromhex(r.get("tag", ""))
    ok = got_ct == ct and got_tag == tag and r.get("result") == "pass"
    return Check(what, ok, "" if ok else f"guest {got_ct.hex()}/{got_tag.hex()}, host {ct.hex()}/{tag.hex()}, "
                                         f"guest verdict {r.get('result')}")


def _check_burst(r: dict[str, Any], inp: Inputs) -> Check:
    alg = r["alg"]
    key = inp.key[:32] if alg == "aes-256-gcm" else inp.key[:16]
    bad = []
    for i, (ct_hex, tag_hex) in enumerate(zip(r.get("ciphertexts", []), r.get("tags", []), strict=False)):
        iv = inp.iv[:8] + i.to_bytes(4, "big")
        ct, tag = crypto_reference(alg, key, iv, inp.aad, inp.data)
        if bytes.fromhex(ct_hex) != ct or bytes.fromhex(tag_hex) != tag:
            bad.append(i)
    n = len(r.get("tags", []))
    ok = not bad and n == inp.burst and r.get("result") == "pass"
    return Check(f"crypto burst of {inp.burst} {alg} ops on {r['dev']}: every ciphertext and tag equals the host's",
                 ok, "" if ok else f"{n} results, wrong: {bad}, guest verdict {r.get('result')}")


def _check_compress(r: dict[str, Any], inp: Inputs) -> Check:
    what = f"{r['type']} {r['alg']} on {r['dev']}: the host decompresses the guest's output to the text"
    try:
        back = decompress(r["alg"], bytes.fromhex(r.get("output", "")))
    except ImportError as e:
        return Check(what, False, f"no reference: {e}")
    except Exception as e:  # noqa: BLE001 - any decoder error is the finding
        return Check(what, False, f"the host's decoder refused it: {e}")
    ok = back == text(inp.seed, inp.text_len) and r.get("result") == "pass"
    return Check(what, ok, "" if ok else f"{len(back)} bytes back, guest verdict {r.get('result')}")


def _check_decompress(r: dict[str, Any], inp: Inputs) -> Check:
    alg, blob, original = inp.unz[r["frame"]]
    out = bytes.fromhex(r.get("output", ""))
    ok = (r["alg"] == alg and out == original and r.get("output_len") == len(original)
          and r.get("output_crc32") == zlib.crc32(original) and r.get("result") == "pass")
    return Check(f"decompress of the host's {alg} frame on {r['dev']}: the guest got the original bytes", ok,
                 "" if ok else f"guest {len(out)} bytes, status {r.get('status')}")


def check_packets(recs: list[dict[str, Any]], inp: Inputs) -> list[Check]:
    """Each packet device's frames, against the frames the host computes; a wire delivers each
    frame its peer sent, in order."""
    out = []
    n = len(recs)
    for i, r in enumerate(recs):
        sent_ok = r.get("sent") == inp.frames and r.get("tx_ok", 0) + r.get("tx_dropped", 0) == inp.frames
        counted = r.get("dev_counters", {})
        out.append(Check(f"packet device {r['dev']}: {inp.frames} frames sent, each completed and counted by the "
                         "host", sent_ok and counted.get("tx_frames", 0) + counted.get("tx_drops", 0) == inp.frames,
                         json.dumps({k: r.get(k) for k in ("sent", "tx_ok", "tx_dropped", "dev_counters")})))
        if r.get("link") != "wire":
            out.append(Check(f"packet device {r['dev']}: channel 0 is on a virtual wire", False,
                             f"link {r.get('link')!r}"))
            continue
        peer = i ^ 1 if (i ^ 1) < n else i
        want = [frame(inp.seed, peer, k) for k in range(inp.frames)]
        got = [bytes.fromhex(f) for f in r.get("frames", [])]
        out.append(Check(f"packet device {r['dev']}: received the {inp.frames} frames of its peer, as the host "
                         "computes them", got == want, "" if got == want else f"{len(got)} frames received"))
    return out


def check(run: GuestRun, inp: Inputs, packets: bool = True) -> list[Check]:
    """Every result the guest printed, against the host's reference; plus the guest's own verdicts."""
    checks = [Check("the guest ran to the end and powered off cleanly", run.done)]
    st = run.step("selftest")
    summary = st.of("summary")
    checks.append(Check("synth-guest selftest: the guest's own verdict", st.rc == 0 and bool(summary)
                        and summary[-1].get("failed") == 0, json.dumps(summary[-1] if summary else None)))
    for r in st.of("kat"):
        checks.append(Check(f"known-answer test {r['name']} on {r['dev']}", r.get("result") == "pass",
                            json.dumps(r)))
    checks += [_check_crypto(r, inp) for r in st.of("crypto")]
    checks += [_check_burst(r, inp) for r in st.of("crypto-burst")]
    checks += [_check_compress(r, inp) for r in st.of("compress", "stream")]
    checks += [_check_decompress(r, inp) for r in st.of("decompress")]
    if packets:
        checks += check_packets(st.of("packet"), inp)
    if "afalg-kat" in run.steps:
        kat = run.steps["afalg-kat"]
        passed = [t for t in kat.text if t.endswith(": PASS")]
        ok = kat.rc == 0 and bool(passed) and not any(t.endswith(": FAIL") for t in kat.text)
        checks.append(Check("AF_ALG plugin known-answer tests against the guest kernel's crypto API", ok,
                            kat.text[-1] if kat.text else "no output"))
    return checks


# ---- a VM run through libvirt ----


# The CPU model Debian's DPDK needs (built for -march=corei7: SSE4.2, POPCNT); QEMU's default
# qemu64 has neither, and DPDK's libraries die there of SIGILL.
CPU_DPDK = "Nehalem"


def domain_xml(name: str, uuid: str, kernel: str, initrd: str, cmdline: str, devices: Sequence[str],
               console_log: str, memory_mib: int = 256, cpu_model: str | None = None) -> str:
    """The domain: template vnf-kernel (TCG) with ``devices`` (``--device`` syntax) injected by the
    XML generator, as ``virt-synth xml`` would write it. ``cpu_model``: a CPU model the guest must
    get exactly (e.g. CPU_DPDK; default: QEMU's own, qemu64)."""
    from libvirt_synth.xml import designer, spec, template

    xml, source = template.fill("vnf-kernel", {"NAME": name, "UUID": uuid, "KERNEL": kernel, "INITRD": initrd,
                                               "CMDLINE": cmdline, "CONSOLE_LOG": console_log,
                                               "MEMORY": str(memory_mib)})
    out = designer.inject(xml, [spec.parse_cli(d) for d in devices], source).xml
    return out if cpu_model is None else with_cpu_model(out, cpu_model)


def with_cpu_model(xml: str, model: str) -> str:
    """``xml`` with ``<cpu mode='custom' match='exact'><model fallback='forbid'>model</model></cpu>``
    in place of any ``<cpu>`` it had: libvirt refuses to start the domain if the hypervisor cannot
    provide that model."""
    from lxml import etree

    root = etree.fromstring(xml.encode())
    for old in root.findall("cpu"):
        root.remove(old)
    cpu = etree.Element("cpu", mode="custom", match="exact")
    etree.SubElement(cpu, "model", fallback="forbid").text = model
    vcpu = root.find("vcpu")
    if vcpu is not None:
        vcpu.addnext(cpu)
    else:
        root.append(cpu)
    return str(etree.tostring(root, encoding="unicode"))


def run_domain(conn: Any, xml: str, console_log: str, timeout: float = 120.0,
               on_line: Callable[[str], None] | None = None) -> str:
    """Define and start the domain, wait until the guest powers off, return its console log.
    ``on_line`` sees each console line as it arrives. On timeout the domain is destroyed and the
    error carries the end of the console."""
    from libvirt_synth.xml import connect

    if os.path.exists(console_log):
        os.unlink(console_log)  # the template's log does not append, but a stale one would confuse a reader
    defined = connect.define(conn, xml, start=True)
    dom = conn.lookupByName(defined.name)
    deadline = time.monotonic() + timeout
    seen = 0
    buf = ""

    def pump() -> None:
        nonlocal seen, buf
        try:
            with open(console_log, "rb") as f:
                f.seek(seen)
                chunk = f.read()
        except FileNotFoundError:
            return
        seen += len(chunk)
        buf += chunk.decode(errors="replace")
        *lines, buf = buf.split("\n")
        if on_line:
            for line in lines:
                on_line(line.rstrip("\r"))

    while dom.isActive():
        pump()
        if time.monotonic() > deadline:
            dom.destroy()
            tail = pathlib.Path(console_log).read_text(errors="replace")[-2000:] if os.path.exists(console_log) else ""
            raise errors.TimeoutError(f"the guest did not power off within {timeout:.0f} s; console ends:\n{tail}")
        time.sleep(0.2)
    pump()
    with open(console_log, errors="replace") as f:
        return f.read()
