# SPDX-License-Identifier: Apache-2.0
"""The compression tests' corpus: generated from a fixed seed, so that every machine tests the
same data (a sample of a machine's own files once made the verdict depend on the machine)."""

from __future__ import annotations

import functools
import json
import random
import struct
from typing import Any

_WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
          "they you were her she there been one all we their has would when if so no will more can out up who them "
          "some into time than only other its then may about these could like two over first very after any such "
          "what new must our made where most through also well down should because each just those people how many "
          "too little state good make world still own see men work long get here between both life being under "
          "never day same another know while last might us great old year off come since against go came right "
          "used take three device memory queue host guest frame block stream buffer")
_IDENTS = ("data buf size offset count index value result status frame block queue stream device host guest level "
           "window chunk header length flags limit config options name path parts out src dst ctx")
_UTF8 = ("Gerät Größe Übertragung schließen Datenstrom κατάσταση μνήμη συσκευή поток данных устройство память "
         "圧縮 展開 ストリーム デバイス メモリ 队列 缓冲区 帧 설정 장치 façade déjà naïve 𝄞 🙂")
WORDS, IDENTS, UTF8_WORDS = _WORDS.split(), _IDENTS.split(), _UTF8.split()
# CPython 3.11 opcodes a .pyc is full of, with the inline cache entries (two zero bytes each) after them
PYC_OPS = ((100, 0), (124, 0), (125, 0), (116, 5), (106, 4), (171, 4), (122, 1), (83, 0), (1, 0), (151, 0),
           (90, 0), (114, 0), (160, 10), (25, 4), (110, 0))


def _english(rng: random.Random, n: int) -> bytes:
    """Prose of common words (Zipf-like frequencies) that repeats some of its phrases."""
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    out: list[str] = []
    said: list[list[str]] = []
    size = 0
    while size < n:
        words: list[str] = []
        while len(words) < rng.randint(6, 24):
            if said and rng.random() < 0.25:
                s = rng.choice(said)
                i = rng.randrange(len(s))
                words += s[i : i + rng.randint(2, 6)]
            else:
                words += rng.choices(WORDS, weights, k=rng.randint(1, 4))
        said.append(words)
        out.append(" ".join(words).capitalize() + rng.choice(".....,?;:") + ("\n\n" if rng.random() < 0.12 else " "))
        size += len(out[-1])
    return "".join(out).encode()[:n]


def _source(rng: random.Random, n: int) -> bytes:
    """Python-like functions: docstrings, comments, indented statements over a few identifiers."""
    out: list[str] = []
    size = 0
    while size < n:
        a, b, c = rng.sample(IDENTS, 3)
        lines = [f"def {a}_{b}({', '.join(rng.sample(IDENTS, rng.randint(0, 4)))}) -> int:",
                 f'    """{_english(rng, rng.randint(30, 90)).decode().strip()}"""']
        for _ in range(rng.randint(2, 12)):
            a, b, c = rng.sample(IDENTS, 3)
            lines.append(rng.choice([f"    {a} = {b} + {rng.randint(0, 4096)}",
                                     f"    if {a} > {b}:\n        return {c}",
                                     f"    for {a} in range({b}):\n        {c}.append({a})",
                                     f"    {a} = self.{b}({c}, {rng.randint(0, 64)})",
                                     f"    # {_english(rng, rng.randint(20, 60)).decode().strip()}"]))
        out.append("\n".join(lines) + f"\n    return {c}\n\n\n")
        size += len(out[-1])
    return "".join(out).encode()[:n]


def _api_doc(rng: random.Random) -> bytes:
    """A generated API client's docstring (the same template, other names)."""
    verb, noun = rng.choice(("Get", "List", "Create", "Delete", "Patch")), "".join(rng.sample(IDENTS, 2)).title()
    return (f"{verb} a {noun}.\n\n      Args:\n        request: ({noun}{verb}Request) input message\n        "
            f"global_params: (StandardQueryParameters, default: None) global arguments\n      Returns:\n        "
            f"({noun}) The response message.\n      ").encode()


def _pyc(rng: random.Random, n: int) -> bytes:
    """Laid out like a .pyc: header, then marshalled code objects (bytecode with its zeroed inline
    caches, docstrings, name tuples with back-references, line tables)."""
    out = bytearray(b"\xa7\r\r\n" + bytes(4) + struct.pack("<II", 1718064000, n))
    names: list[str] = []
    while len(out) < n:
        code = bytearray()
        for _ in range(rng.randint(6, 60)):
            op, cache = rng.choice(PYC_OPS)
            code += bytes((op, rng.randrange(12))) + bytes(2 * cache)
        out += b"\xe3" + struct.pack("<5I", rng.randint(0, 4), 0, 0, rng.randint(1, 12), rng.choice((3, 67, 131)))
        out += b"\xf3" + struct.pack("<I", len(code)) + code
        consts = [b"\xe9" + struct.pack("<i", rng.randint(-1, 300)) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.6:
            doc = _english(rng, rng.randint(40, 400)) if rng.random() < 0.5 else _api_doc(rng)
            consts.insert(0, b"\xf5" + struct.pack("<I", len(doc)) + doc)
        out += b")" + bytes([len(consts)]) + b"".join(consts)
        picked = rng.sample(IDENTS, rng.randint(1, 6))
        out += b")" + bytes([len(picked)])
        for w in picked:
            if w in names:
                out += b"r" + struct.pack("<I", names.index(w))
            else:
                names.append(w)
                out += b"\xda" + bytes([len(w)]) + w.encode()
        out += b"\xf3" + struct.pack("<I", 8) + bytes(rng.randrange(0x80, 0x90) for _ in range(8))
    return bytes(out[:n])


def _json_log(rng: random.Random, n: int) -> bytes:
    """JSON lines of a service log: timestamps, levels, counters, addresses, now and then a message."""
    out: list[str] = []
    t, size = 1718064000.0, 0
    while size < n:
        t += rng.expovariate(20)
        rec: dict[str, Any] = {
            "ts": f"{t:.3f}", "level": rng.choices(["INFO", "DEBUG", "WARNING", "ERROR"], [60, 30, 8, 2])[0],
            "host": f"vnf-{rng.randint(0, 7)}", "queue": rng.randint(0, 3),
            "op": rng.choice(["compress", "decompress", "stream"]), "bytes": rng.randint(0, 1 << 20),
            "latency_us": round(rng.lognormvariate(3, 1), 1),
            "peer": f"10.0.{rng.randint(0, 3)}.{rng.randint(1, 254)}:{rng.choice([443, 8443, 5201])}"}
        if rng.random() < 0.1:
            rec["msg"] = _english(rng, rng.randint(20, 80)).decode().strip()
        out.append(json.dumps(rec) + "\n")
        size += len(out[-1])
    return "".join(out).encode()[:n]


def _records(rng: random.Random, n: int) -> bytes:
    """Fixed-size little-endian records: a sequence number, a few types and lengths, a slowly
    drifting float, one of a few ids, a noisy field."""
    out = bytearray()
    seq, val = rng.randint(0, 1 << 20), 20.0
    ids = [rng.randbytes(8) for _ in range(6)]
    while len(out) < n:
        seq += 1
        val += rng.uniform(-0.5, 0.5)
        out += struct.pack("<IHHf8sI", seq, rng.choice((1, 2, 2, 3, 17)), rng.choice((64, 128, 1500)), val,
                           rng.choice(ids), rng.getrandbits(12))
    return bytes(out[:n])


def _utf8(rng: random.Random, n: int) -> bytes:
    """Words of several scripts (two-, three- and four-byte UTF-8), as in a translation catalogue."""
    out = [" ".join(rng.choices(UTF8_WORDS, k=rng.randint(3, 12))) + rng.choice("\n  ") for _ in range(n // 20)]
    return "".join(out).encode()[:n]


CORPUS_SEED = 20240611


@functools.cache
def corpus() -> tuple[tuple[str, bytes], ...]:
    """The compression tests' data, generated from a fixed seed (the same bytes on every machine):
    realistic kinds of what a VNF compresses, then extremes. "pyc-like" and "json log" decode to
    more than twice their lz4-compressed size: a sync-flushed lz4 stream of them is what
    python-lz4's decompressor cuts short (see compress_ref.lz4_decode)."""
    rng = random.Random(CORPUS_SEED)
    out = [("text", _english(rng, 48_000)), ("python source", _source(rng, 32_000)), ("pyc-like", _pyc(rng, 20_000)),
           ("json log", _json_log(rng, 40_000)), ("records", _records(rng, 64_000)), ("utf-8 text", _utf8(rng, 16_000))]
    out.append(("mixed", _english(rng, 30_000) + rng.randbytes(70_000) + _json_log(rng, 20_000)))
    out += [("zeros", bytes(200_000)), ("random", rng.randbytes(100_000)), ("empty", b""), ("one byte", b"x"),
            ("repeat", b"abcdefgh" * 40_000)]
    return tuple(out)


def corpus_entry(name: str) -> bytes:
    return dict(corpus())[name]


