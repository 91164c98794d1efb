#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the seed corpora of the fuzzers: native/fuzz/corpus/{crypto,compress,packet}/.

Each seed is a small program in the harnesses' input format (native/fuzz/fuzz.h): a guest that does
one thing right (a session, an op of each kind and algorithm, a frame over a wire) or one thing
wrong (a bad sequence word, an impossible index, a scribbled header), so that the fuzzer starts
from every opcode and error path instead of finding them byte by byte. Deterministic: the files
depend on this script alone (standard library only; compressed frames are made by the harness).

usage: native/fuzz/make_corpus.py [OUTDIR]   (default: native/fuzz/corpus next to this file)
"""

from __future__ import annotations

import pathlib
import shutil
import struct
import sys

HERE = pathlib.Path(__file__).resolve().parent

# Command bytes (fuzz.h).
DESC, CREATE, DATA, FRAME, POLL, CONSUME, RESET, RING, HEADER = 0, 96, 128, 160, 176, 208, 216, 224, 240
ARENA = 20480  # every queue's arena in the three harnesses' layouts
# fz_off / fz_len edge values
END, END_M1, END_P1, END_M16 = 0xFFF0, 0xFFF1, 0xFFF2, 0xFFF3
U32_MAX, U32_MAX_M4K = 0xFFF8, 0xFFF9


def to_end(delta: int) -> int:
    """A length from the offset before it to the arena's end + delta (-8..7)."""
    return 0xFFE8 + delta

# DESC opcode bytes: indices into each harness's opcode table.
CRYPTO_OPS = {"encrypt": 0, "decrypt": 1, "create": 4, "destroy": 5, "nop": 6}
COMP_OPS = {"compress": 0, "decompress": 1, "stream": 2, "stream_create": 4, "stream_destroy": 5, "nop": 6}
PKT_OPS = {"send": 0, "recv": 1, "nop": 4}

Seeds = dict[str, bytearray]

# Feature bytes: bit 0 NOP, bits 1..3 the class's features.
ALL = 0x0F
# RING "which" byte: word * queues + queue (words: 0 SQ prod, 1 SQ cons, 2 CQ prod, 3 CQ cons).
RING_CQ_CONS_Q0 = 3 * 2


class Prog:
    def __init__(self, setup: int = 0, features: int = ALL) -> None:
        self.b = bytearray([setup, features])

    def u8(self, v: int) -> Prog:
        self.b += struct.pack("<B", v & 0xFF)
        return self

    def u16(self, v: int) -> Prog:
        self.b += struct.pack("<H", v & 0xFFFF)
        return self

    def u32(self, v: int) -> Prog:
        self.b += struct.pack("<I", v & 0xFFFFFFFF)
        return self

    def desc(self, q: int, op: int, *, raw_op: int | None = None, flags: int | None = None,
             session: int = 0, raw_session: int | None = None, bad: int | None = None, back: int | None = None,
             src: tuple[int, int] = (0, 0), dst: tuple[int, int] = (0, 0), aad: tuple[int, int] = (0, 0),
             iv: int = 0, tag: int = 0, dst_end: int | None = None, args: bytes = b"") -> Prog:
        self.u8(DESC).u8(q)
        if raw_op is not None:
            self.u8(0xF0).u16(raw_op)
        else:
            self.u8(op)
        mode = (1 if flags is not None else 0) | (2 if raw_session is not None else 0) | \
               (4 if bad is not None else 0) | (8 if back is not None else 0) | (16 if dst_end is not None else 0)
        self.u8(mode)
        if flags is not None:
            self.u16(flags)
        if raw_session is not None:
            self.u32(raw_session)
        else:
            self.u8(session)
        if bad is not None:
            self.u8(bad)
        if back is not None:
            self.u8(back)
        for off, ln in (src, dst, aad):
            self.u16(off).u16(ln)
        self.u16(iv).u16(tag)
        if dst_end is not None:  # dst_off = arena - src_len + dst_end
            self.u8(dst_end + 8)
        self.b += args
        return self

    def data(self, q: int, off: int, payload: bytes) -> Prog:
        self.u8(DATA).u8(q).u16(off).u16(len(payload))
        self.b += payload
        return self

    def poll(self, keep: int = 0) -> Prog:
        return self.u8(POLL).u8(keep)

    def consume(self, q: int, n: int) -> Prog:
        return self.u8(CONSUME).u8(q).u8(n)

    def reset(self, status: int = 0, features: int = ALL) -> Prog:
        return self.u8(RESET).u8(status).u8(features)

    def ring(self, which: int, value: int) -> Prog:
        return self.u8(RING).u8(which).u32(value)

    def header(self, off: int, value: int) -> Prog:
        return self.u8(HEADER).u16(off).u32(value)

    def raw(self, b: bytes | bytearray) -> Prog:
        self.b += b
        return self


def pattern(n: int, seed: int = 1) -> bytes:
    return bytes((seed + i * 37) & 0xFF for i in range(n))


# ---- crypto ----

ALGS = {"aes128-gcm": 0, "aes256-gcm": 1, "chacha20-poly1305": 2, "aes256-cbc-hmac-sha256": 3, "hmac-sha256": 4}


def c_create(p: Prog, q: int = 0, off: int = 8192, alg: str = "aes128-gcm", variant: int = 0, seed: int = 3,
             field: tuple[int, int] | None = None, src_len: int | None = None) -> Prog:
    v = variant | (0x80 if field else 0) | (0x20 if src_len is not None else 0)
    p.u8(CREATE).u8(q).u16(off).u8(ALGS[alg]).u8(v).u8(seed)
    if field:
        p.u8(field[0]).u16(field[1])
    if src_len is not None:
        p.u16(src_len)
    return p


def crypto_seeds() -> Seeds:
    s: Seeds = {}
    enc, dec = CRYPTO_OPS["encrypt"], CRYPTO_OPS["decrypt"]

    def roundtrip(setup: int, alg: str, n: int = 64, variant: int = 0) -> Prog:
        p = c_create(Prog(setup), alg=alg, variant=variant).poll()
        p.data(0, 0, pattern(n)).data(0, 4096, pattern(16, 9))
        p.desc(0, enc, src=(0, n), dst=(0, n), aad=(4096, 16), iv=4200, tag=4300).poll()
        p.desc(0, dec, src=(0, n), dst=(0, n), aad=(4096, 16), iv=4200, tag=4300).poll()
        return p.desc(0, CRYPTO_OPS["destroy"]).poll()

    for setup, plugin in ((0, "default"), (1, "openssl"), (2, "ipsec-mb"), (3, "afalg")):
        s[f"roundtrip-aes128-gcm-{plugin}"] = roundtrip(setup, "aes128-gcm").b
    for alg in ALGS:
        s[f"roundtrip-{alg}"] = roundtrip(0, alg, n=48).b
    s["roundtrip-aes256-gcm-tag4"] = roundtrip(0, "aes256-gcm", variant=6).b
    s["roundtrip-ipsec-mb-chacha"] = roundtrip(2, "chacha20-poly1305").b
    s["roundtrip-openssl-cbc-hmac"] = roundtrip(1, "aes256-cbc-hmac-sha256", n=32).b
    s["roundtrip-openssl-hmac"] = roundtrip(1, "hmac-sha256", n=100).b
    s["iv-gen-encrypts"] = (c_create(Prog(), alg="aes256-gcm", variant=0x40).poll()
                            .desc(0, enc, src=(0, 32), dst=(0, 32), iv=1000, tag=1100)
                            .desc(0, enc, src=(0, 32), dst=(0, 32), iv=1000, tag=1100).poll()).b
    s["iv-gen-not-accepted"] = c_create(Prog(features=0x03), alg="aes128-gcm", variant=0x40).poll().b
    s["out-of-place"] = (c_create(Prog()).poll().desc(0, enc, src=(0, 64), dst=(1024, 64), iv=3000, tag=3100)
                         .poll()).b
    s["out-of-place-not-accepted"] = (c_create(Prog(features=0x03)).poll()
                                      .desc(0, enc, src=(0, 64), dst=(1024, 64), iv=3000, tag=3100).poll()).b
    s["dst-to-the-end"] = (c_create(Prog()).poll()
                           .desc(0, enc, src=(0, 17), dst=(END_M16, to_end(0)), iv=3000, tag=3100)
                           .desc(0, enc, src=(0, 17), dst=(END_M16, to_end(1)), iv=3000, tag=3100)
                           .desc(0, dec, src=(END_M16, to_end(0)), dst=(0, 64), iv=3000, tag=3100)
                           .desc(0, enc, src=(0, 16), dst=(100, 16), aad=(END_M16, to_end(1)), iv=END_M1,
                                 tag=END_M16).poll()).b
    s["dst-ends-at-the-end"] = (c_create(Prog()).poll()
                                .desc(0, enc, src=(0, 64), dst=(0, 64), iv=3000, tag=3100, dst_end=0).poll()).b
    s["partial-overlap"] = (c_create(Prog()).poll().desc(0, enc, src=(0, 64), dst=(32, 64), iv=3000, tag=3100)
                            .poll()).b
    s["no-space"] = c_create(Prog()).poll().desc(0, enc, src=(0, 64), dst=(0, 63), iv=3000, tag=3100).poll().b
    s["auth-failure"] = (c_create(Prog()).poll().data(0, 0, pattern(64))
                         .desc(0, dec, src=(0, 64), dst=(0, 64), iv=3000, tag=3100).poll()).b
    s["cbc-not-a-block"] = (c_create(Prog(), alg="aes256-cbc-hmac-sha256").poll()
                            .desc(0, enc, src=(0, 33), dst=(0, 33), iv=3000, tag=3100).poll()).b
    s["edges"] = (c_create(Prog()).poll()
                  .desc(0, enc, src=(END_M16, 16), dst=(END_M16, 16), iv=END_M1, tag=END)
                  .desc(0, enc, src=(U32_MAX, 16), dst=(0, 16), iv=0, tag=0)
                  .desc(0, enc, src=(0, END_P1), dst=(0, END_P1), aad=(U32_MAX_M4K, 1), iv=0, tag=0)
                  .desc(0, dec, src=(0, 16), dst=(END, 16), aad=(0, END), iv=END_M16, tag=END_M16).poll()).b
    s["session-table-full"] = (c_create(c_create(c_create(Prog(4)), seed=5), seed=6).poll()
                               .desc(0, CRYPTO_OPS["destroy"], session=1).desc(0, CRYPTO_OPS["destroy"],
                                                                               raw_session=0xFFFFFFFF).poll()).b
    s["bad-params"] = (c_create(c_create(c_create(Prog(), off=0, field=(1, 17)), off=1024, field=(3, 33)),
                                off=2048, src_len=263)
                       .poll()).b
    s["hmac-key-256"] = c_create(Prog(), alg="hmac-sha256", variant=0x13).poll().b
    s["flags-and-unknown-opcode"] = (c_create(Prog()).poll().desc(0, enc, flags=1, src=(0, 16), dst=(0, 16))
                                     .desc(1, 0, raw_op=0x7777).desc(1, CRYPTO_OPS["nop"]).poll()).b
    s["nop-not-accepted"] = Prog(features=0x02).desc(0, CRYPTO_OPS["nop"]).poll().b
    s["queue-1"] = (c_create(Prog(), q=1).poll().desc(1, enc, session=0, src=(0, 64), dst=(0, 64), iv=3000,
                                                     tag=3100).poll()).b
    full = Prog()
    for _ in range(9):
        full.desc(0, CRYPTO_OPS["nop"])
    s["ring-full-kept"] = full.poll(keep=1).desc(0, CRYPTO_OPS["nop"]).poll(keep=1).consume(0, 4).poll().b
    s["bad-seq"] = (Prog().desc(0, CRYPTO_OPS["nop"], bad=0).desc(0, CRYPTO_OPS["nop"], bad=1).poll()
                    .desc(0, CRYPTO_OPS["nop"], back=1).poll()).b
    s["cq-cons-impossible"] = (Prog().desc(0, CRYPTO_OPS["nop"]).ring(RING_CQ_CONS_Q0, 0x1000).poll()
                               .reset().poll()).b
    s["cq-cons-past-prod"] = (Prog().desc(0, CRYPTO_OPS["nop"]).poll(keep=1).ring(RING_CQ_CONS_Q0, 0x81).poll()
                              .reset().poll()).b
    s["host-words-scribbled"] = (Prog().ring(2, 0x12345678).ring(4, 0x81).ring(0, 0x99).header(128, 0xFFFF)
                                 .header(2048, 0xFFFFFFFF).desc(0, CRYPTO_OPS["nop"]).poll()).b
    s["epoch-scribbled"] = c_create(Prog()).header(196, 7).poll().desc(0, CRYPTO_OPS["nop"]).poll().b
    s["reset-with-sessions"] = c_create(Prog()).poll().reset().desc(0, enc, src=(0, 16), dst=(0, 16)).poll().b
    s["reset-features-not-offered"] = Prog().reset(0, 0x80).desc(0, CRYPTO_OPS["nop"]).poll().reset().poll().b
    s["reset-without-ring-v1"] = Prog().reset(0, 0x4F).poll().b
    s["reset-driver-stops"] = Prog().reset(1).desc(0, CRYPTO_OPS["nop"]).poll().reset().poll().b
    return s


# ---- compression ----

CALGS = {"deflate": 1, "zlib": 2, "gzip": 3, "zstd": 4, "lz4": 5}


def z_frame(p: Prog, alg: str, *, q: int = 0, off: int = 0, level: int = 1, plain: bytes = b"",
            flip: int = 0, decompress: tuple[int, int] | None = None) -> Prog:
    a = (CALGS[alg] - 1) | (0x80 if decompress else 0)
    p.u8(FRAME).u8(q).u16(off).u8(a).u8(level).u16(len(plain)).u16(len(plain))
    p.b += plain
    p.u8(flip)
    if decompress:
        p.u16(decompress[0]).u16(decompress[1])
    return p


def z_args(alg_or_flush: int, level: int = 0) -> bytes:
    return bytes([alg_or_flush & 0xFF, level & 0xFF])


def z_stream(p: Prog, alg: str, direction: int, level: int = 0, *, q: int = 0, off: int = 16000,
             hostile: bool = False) -> Prog:
    p.u8(CREATE).u8(q).u16(off).u8(CALGS[alg] - 1).u8(direction | (0x80 if hostile else 0)).u8(level)
    if hostile:
        p.u32(1).u32(0)
    return p


def compress_seeds() -> Seeds:
    s: Seeds = {}
    text = b"the quick brown fox jumps over the lazy dog; " * 20
    comp, decomp, stream = COMP_OPS["compress"], COMP_OPS["decompress"], COMP_OPS["stream"]
    for alg, a in CALGS.items():
        s[f"frame-{alg}"] = z_frame(Prog(), alg, plain=text, decompress=(8192, 4096)).poll().b
        s[f"frame-{alg}-flipped"] = z_frame(Prog(), alg, plain=text, flip=9, decompress=(8192, 4096)).poll().b
        s[f"compress-{alg}"] = (Prog().data(0, 0, text).desc(0, comp, src=(0, len(text)), dst=(4096, 4096),
                                                              args=z_args(a, 0)).poll()).b
        s[f"compress-{alg}-short-dst"] = (Prog().data(0, 0, text).desc(0, comp, src=(0, len(text)), dst=(4096, 20),
                                                                        args=z_args(a, 0)).poll()).b
        s[f"stream-compress-{alg}"] = (z_stream(Prog().data(0, 0, text), alg, 0).poll()
                                       .desc(0, stream, src=(0, 400), dst=(4096, 64), args=z_args(0))
                                       .desc(0, stream, src=(400, 500), dst=(5000, 64), args=z_args(1)).poll()
                                       .desc(0, stream, dst=(6000, 4096), args=z_args(2))
                                       .desc(0, stream, dst=(11000, 4096), args=z_args(2)).poll()
                                       .desc(0, COMP_OPS["stream_destroy"]).poll()).b
        s[f"stream-decompress-{alg}"] = (z_stream(z_frame(Prog(), alg, plain=text), alg, 1).poll()
                                         .desc(0, stream, src=(0, 40), dst=(8192, 100), args=z_args(0))
                                         .desc(0, stream, dst=(8192, 2000), args=z_args(0))
                                         .desc(0, stream, src=(40, 400), dst=(10240, 4096), args=z_args(2)).poll()
                                         .desc(0, stream, dst=(14336, 4096), args=z_args(0)).poll()).b
    s["pinned-isal-deflate"] = z_frame(Prog(2), "deflate", plain=text, decompress=(8192, 4096)).poll().b
    s["pinned-zlib-gzip-level9"] = (Prog(1).data(0, 0, text).desc(0, comp, src=(0, 900), dst=(4096, 4096),
                                                                   args=z_args(3, 9)).poll()).b
    s["pinned-zstd-level19"] = (Prog(3).data(0, 0, text).desc(0, comp, src=(0, 900), dst=(4096, 4096),
                                                               args=z_args(4, 19)).poll()).b
    s["pinned-lz4-hc"] = (Prog(4).data(0, 0, text).desc(0, comp, src=(0, 900), dst=(4096, 4096),
                                                         args=z_args(5, 12)).poll()).b
    s["zstd-wide-window"] = z_frame(Prog(32), "zstd", plain=text, level=19, decompress=(8192, 4096)).poll().b
    s["decompress-no-space"] = z_frame(Prog(), "zstd", plain=text, decompress=(8192, 10)).poll().b
    s["decompress-bomb-counted"] = z_frame(Prog(), "deflate", plain=bytes(3000), decompress=(8192, 1)).poll().b
    s["levels-out-of-range"] = (Prog().desc(0, comp, src=(0, 64), dst=(4096, 4096), args=z_args(4, 127))
                                .desc(0, comp, src=(0, 64), dst=(4096, 4096), args=z_args(1, -100))
                                .desc(0, comp, src=(0, 64), dst=(4096, 4096), args=z_args(0))
                                .desc(0, comp, src=(0, 64), dst=(4096, 4096), args=z_args(6)).poll()).b
    s["dst-to-the-end"] = (Prog().data(0, 0, text)
                           .desc(0, comp, src=(0, 900), dst=(END_M16, to_end(0)), args=z_args(1))
                           .desc(0, comp, src=(0, 900), dst=(END_M16, to_end(1)), args=z_args(4))
                           .desc(0, decomp, src=(0, 900), dst=(END_M16, to_end(1)), args=z_args(5)).poll()).b
    s["overlap-and-edges"] = (Prog().desc(0, comp, src=(0, 64), dst=(32, 4096), args=z_args(1))
                              .desc(0, decomp, src=(END_M16, 16), dst=(0, END), args=z_args(2))
                              .desc(0, comp, src=(U32_MAX, 1), dst=(0, 64), args=z_args(1))
                              .desc(0, comp, src=(0, 8192), dst=(8192, 8192), args=z_args(1)).poll()).b
    s["streams-exhausted"] = z_stream(z_stream(z_stream(Prog(8), "lz4", 0), "zstd", 1), "deflate", 0).poll().b
    s["stream-params-hostile"] = z_stream(Prog(), "zlib", 0, hostile=True).poll().b
    s["stream-output-limit"] = (z_stream(Prog(16).data(0, 0, pattern(4096)), "lz4", 0).poll()
                                .desc(0, stream, src=(0, 4096), dst=(4096, 8192), args=z_args(0))
                                .desc(0, stream, src=(0, 4096), dst=(4096, 8192), args=z_args(0))
                                .desc(0, stream, src=(0, 4096), dst=(4096, 8192), args=z_args(0))
                                .desc(0, stream, src=(0, 4096), dst=(4096, 8192), args=z_args(2))
                                .desc(0, stream, src=(0, 4096), dst=(4096, 8192), args=z_args(2)).poll()).b
    s["streams-not-accepted"] = z_stream(Prog(features=0x01), "zstd", 0).poll().b
    s["reset-with-streams"] = (z_stream(Prog(), "zstd", 0).poll().reset()
                               .desc(0, stream, src=(0, 16), dst=(100, 100)).poll()).b
    s["queue-1-frame"] = z_frame(Prog(), "gzip", q=1, plain=text, decompress=(8192, 4096)).poll().b
    return s


# ---- packets ----

def p_post(p: Prog, chan: int, bufs: list[tuple[int, int]]) -> Prog:
    p.u8(CREATE).u8(chan).u8(len(bufs) - 1)
    for off, ln in bufs:
        p.u16(off).u16(ln)
    return p


def p_send(p: Prog, chan: int, off: int, frame: bytes, given: int = 64) -> Prog:
    """A frame: its first `given` bytes in the program, the harness's pattern after them."""
    p.u8(FRAME).u8(chan).u16(off).u16(len(frame)).u16(min(given, len(frame)))
    p.b += frame[:given]
    return p


def eth(n: int, seed: int = 1) -> bytes:
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + pattern(n - 14, seed)


def packet_seeds() -> Seeds:
    s: Seeds = {}
    send, recv = PKT_OPS["send"], PKT_OPS["recv"]
    for setup, topo in ((0x00, "wire"), (0x10, "loopbacks"), (0x20, "unlinked"), (0x30, "one-loopback")):
        p = p_post(p_post(Prog(setup), 1, [(0, 2048), (2048, 2048)]), 0, [(0, 2048)]).poll()
        s[f"{topo}-both-ways"] = p_send(p_send(p, 0, 0, eth(60)), 1, 4096, eth(1500, 3)).poll().poll().b
    s["frame-lengths"] = (p_post(Prog(), 1, [(0, 64), (64, 64), (128, 9216)]).poll()
                          .raw(p_send(Prog(), 0, 0, eth(13 + 1)).b[2:])
                          .raw(p_send(Prog(), 0, 100, eth(65)).b[2:])
                          .raw(p_send(Prog(), 0, 200, b"\x00" * 13).b[2:])
                          .raw(p_send(Prog(), 0, 300, eth(9216)).b[2:]).poll()).b
    s["max-frame-small"] = p_send(p_post(Prog(0x01), 1, [(0, 4096)]).poll(), 0, 0, eth(1000)).poll().b
    s["no-buffer-posted"] = p_send(Prog(), 0, 0, eth(60)).poll().b
    s["buffers-invalid"] = (p_post(Prog(), 0, [(END_M16, 64), (U32_MAX, 64), (0, 13), (0, END_P1)]).poll()
                            .raw(p_send(Prog(), 1, 0, eth(60)).b[2:]).poll()).b
    s["buffer-to-the-end"] = (p_post(Prog(), 1, [(END_M16, to_end(0)), (END_M16, to_end(1))]).poll()
                              .raw(p_send(Prog(), 0, 0, eth(16)).b[2:]).raw(p_send(Prog(), 0, 0, eth(17)).b[2:])
                              .raw(p_send(Prog(), 1, 0, eth(60)).b[2:]).poll()).b
    s["opcodes-on-wrong-queues"] = (Prog().desc(0, recv, dst=(0, 100)).desc(1, send, src=(0, 60))
                                    .desc(1, PKT_OPS["nop"]).desc(0, PKT_OPS["nop"]).desc(2, 0, raw_op=0x31)
                                    .desc(3, recv, flags=2, dst=(0, 100)).poll()).b
    s["rx-fifo-full"] = (p_post(p_post(Prog(), 1, [(i * 512, 512) for i in range(8)]), 1, [(0, 64)]).poll(keep=1)
                         .raw(p_send(Prog(), 0, 0, eth(100)).b[2:]).poll(keep=1).consume(3, 2).poll()).b
    s["nop-held-behind-buffer"] = (p_post(Prog(), 1, [(0, 512)]).desc(3, PKT_OPS["nop"]).poll()
                                   .raw(p_send(Prog(), 0, 0, eth(100)).b[2:]).poll()).b
    s["bad-seq-and-rewrite"] = (p_post(Prog(), 1, [(0, 512)]).desc(3, recv, dst=(100, 200), back=1)
                                .desc(3, recv, dst=(100, 200), bad=2).poll()).b
    s["cq-cons-impossible"] = (p_post(Prog(), 1, [(0, 512)]).ring(3 * 4 + 3, 0x4000).poll()
                               .raw(p_send(Prog(), 0, 0, eth(100)).b[2:]).poll().reset().poll()).b
    s["reset-with-buffers-posted"] = (p_post(Prog(), 1, [(0, 512)]).poll().reset()
                                      .raw(p_send(Prog(), 0, 0, eth(100)).b[2:]).poll()).b
    s["header-scribbled"] = (p_post(Prog(), 1, [(0, 512)]).header(256, 0).header(320, 0xFFFFFFFF)
                             .raw(p_send(Prog(), 0, 0, eth(100)).b[2:]).poll()).b
    s["burst"] = (p_post(Prog(), 1, [(i * 1024, 1024) for i in range(8)]).poll()
                  .raw(b"".join(p_send(Prog(), 0, i * 1100, eth(60 + i)).b[2:] for i in range(8))).poll()).b
    return s


def main() -> int:
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus"
    for cls, seeds in (("crypto", crypto_seeds()), ("compress", compress_seeds()), ("packet", packet_seeds())):
        d = out / cls
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for name, data in sorted(seeds.items()):
            (d / name).write_bytes(data)
        print(f"{d}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
