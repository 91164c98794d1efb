# SPDX-License-Identifier: Apache-2.0
"""Device ABI constants as Python enums. The values come from the C headers through cffi, so
they cannot drift from native/include/synth/*_core.h."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from libvirt_synth import errors
from libvirt_synth._native import lib


class DevClass(enum.IntEnum):
    CRYPTO = lib.SYNTH_CLASS_CRYPTO
    COMPRESS = lib.SYNTH_CLASS_COMPRESS
    PACKET = lib.SYNTH_CLASS_PACKET

    @classmethod
    def parse(cls, text: str) -> DevClass:
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(c.name.lower() for c in cls)
            raise errors.ValueError(f"unknown device class {text!r}; expected one of: {names}") from None


class Status(enum.IntEnum):
    OK = lib.SYNTH_ST_OK
    INVALID = lib.SYNTH_ST_INVALID
    AUTH_FAILED = lib.SYNTH_ST_AUTH_FAILED
    NO_SESSION = lib.SYNTH_ST_NO_SESSION
    NOT_SUPPORTED = lib.SYNTH_ST_NOT_SUPPORTED
    NO_SPACE = lib.SYNTH_ST_NO_SPACE
    NO_RESOURCES = lib.SYNTH_ST_NO_RESOURCES
    RETRY = lib.SYNTH_ST_RETRY
    BAD_DATA = lib.SYNTH_ST_BAD_DATA
    DEVICE_ERROR = lib.SYNTH_ST_DEVICE_ERROR
    LIMIT = lib.SYNTH_ST_LIMIT
    QUOTA = lib.SYNTH_ST_QUOTA


class Op(enum.IntEnum):
    NOP = lib.SYNTH_OP_NOP
    SESSION_CREATE = lib.SYNTH_OP_CRYPTO_SESSION_CREATE
    SESSION_DESTROY = lib.SYNTH_OP_CRYPTO_SESSION_DESTROY
    ENCRYPT = lib.SYNTH_OP_CRYPTO_ENCRYPT
    DECRYPT = lib.SYNTH_OP_CRYPTO_DECRYPT


class Alg(enum.IntEnum):
    AES128_GCM = lib.SYNTH_ALG_AES128_GCM
    AES256_GCM = lib.SYNTH_ALG_AES256_GCM
    CHACHA20_POLY1305 = lib.SYNTH_ALG_CHACHA20_POLY1305
    AES256_CBC_HMAC_SHA256 = lib.SYNTH_ALG_AES256_CBC_HMAC_SHA256
    HMAC_SHA256 = lib.SYNTH_ALG_HMAC_SHA256

    @property
    def label(self) -> str:
        return ALG_INFO[self].label

    @classmethod
    def parse(cls, text: str) -> Alg:
        key = text.strip().lower()
        for alg, info in ALG_INFO.items():
            if key in (info.label, alg.name.lower()):
                return alg
        names = ", ".join(i.label for i in ALG_INFO.values())
        raise errors.ValueError(f"unknown algorithm {text!r}; expected one of: {names}")


@dataclass(frozen=True)
class AlgInfo:
    label: str
    key_sizes: tuple[int, ...]  # accepted key lengths (for CBC-HMAC: AES key + HMAC key)
    iv_len: int
    tag_sizes: tuple[int, ...]
    default_tag: int
    block: int  # data length must be a multiple of this (1: any)


# NIST SP 800-38D tag lengths (bytes); 8 and 4 only for special uses.
GCM_TAGS = (4, 8, 12, 13, 14, 15, 16)

ALG_INFO: dict[Alg, AlgInfo] = {
    Alg.AES128_GCM: AlgInfo("aes-128-gcm", (16,), 12, GCM_TAGS, 16, 1),
    Alg.AES256_GCM: AlgInfo("aes-256-gcm", (32,), 12, GCM_TAGS, 16, 1),
    Alg.CHACHA20_POLY1305: AlgInfo("chacha20-poly1305", (32,), 12, (16,), 16, 1),
    Alg.AES256_CBC_HMAC_SHA256: AlgInfo(
        "aes-256-cbc-hmac-sha256", tuple(range(33, 257)), 16, tuple(range(12, 33)), 16, 16
    ),
    Alg.HMAC_SHA256: AlgInfo("hmac-sha256", tuple(range(1, 257)), 0, tuple(range(4, 33)), 32, 1),
}

DEV_ERRORS = {
    lib.SYNTH_DEVERR_NONE: "none",
    lib.SYNTH_DEVERR_FEATURES: "driver accepted features the device did not offer",
    lib.SYNTH_DEVERR_SQ_INDEX: "submission ring index out of range",
    lib.SYNTH_DEVERR_CQ_INDEX: "completion ring index out of range",
    lib.SYNTH_DEVERR_BACKEND: "backend failure",
    lib.SYNTH_DEVERR_REGION: "the region file shrank under the backend (truncated by its owner): device abandoned",
}


def dev_status_names(status: int) -> list[str]:
    names = []
    if status & lib.SYNTH_DEV_READY:
        names.append("ready")
    if status & lib.SYNTH_DEV_NEEDS_RESET:
        names.append("needs-reset")
    if status & lib.SYNTH_DEV_FAILED:
        names.append("failed")
    return names or ["detached"]


def feature_names(bits: int, dev_class: int) -> list[str]:
    table = {
        lib.SYNTH_F_RING_V1: "ring-v1",
        lib.SYNTH_F_GENERATION: "generation",
        lib.SYNTH_F_NOP: "nop",
    }
    if dev_class == DevClass.CRYPTO:
        table[lib.SYNTH_CRYPTO_F_SESSIONS] = "sessions"
        table[lib.SYNTH_CRYPTO_F_OUT_OF_PLACE] = "out-of-place"
        table[lib.SYNTH_CRYPTO_F_IV_GEN] = "iv-gen"
        table[lib.SYNTH_CRYPTO_F_MAC_NO_IV] = "mac-no-iv"
    elif dev_class == DevClass.COMPRESS:
        table[lib.SYNTH_COMP_F_STREAMS] = "streams"
    out = [name for bit, name in table.items() if bits & bit]
    rest = bits & ~sum(table)
    if rest:
        out.append(f"0x{rest:x}")
    return out


# ---- packet class (packet_core.h) ----

PKT_MIN_FRAME: int = lib.SYNTH_PKT_MIN_FRAME
PKT_MAX_FRAME: int = lib.SYNTH_PKT_MAX_FRAME
PKT_MAX_CHANNELS: int = lib.SYNTH_PKT_MAX_CHANNELS


class PacketOp(enum.IntEnum):
    SEND = lib.SYNTH_OP_PKT_SEND
    RECV = lib.SYNTH_OP_PKT_RECV


class Link(enum.IntEnum):
    """What a packet channel is linked to on the host."""

    NONE = lib.SYNTH_PKT_LINK_NONE
    WIRE = lib.SYNTH_PKT_LINK_WIRE
    TAP = lib.SYNTH_PKT_LINK_TAP


# ---- compression class (compress_core.h) ----


class CAlg(enum.IntEnum):
    """Compression algorithms: deflate in its three framings, zstd and lz4 (frame format)."""

    DEFLATE = lib.SYNTH_CALG_DEFLATE
    ZLIB = lib.SYNTH_CALG_ZLIB
    GZIP = lib.SYNTH_CALG_GZIP
    ZSTD = lib.SYNTH_CALG_ZSTD
    LZ4 = lib.SYNTH_CALG_LZ4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> CAlg:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(a.label for a in cls)
            raise errors.ValueError(f"unknown compression algorithm {text!r}; expected one of: {names}") from None


class CompOp(enum.IntEnum):
    COMPRESS = lib.SYNTH_OP_COMP_COMPRESS
    DECOMPRESS = lib.SYNTH_OP_COMP_DECOMPRESS
    STREAM_CREATE = lib.SYNTH_OP_COMP_STREAM_CREATE
    STREAM_DESTROY = lib.SYNTH_OP_COMP_STREAM_DESTROY
    STREAM = lib.SYNTH_OP_COMP_STREAM


class Flush(enum.IntEnum):
    NONE = lib.SYNTH_FLUSH_NONE
    SYNC = lib.SYNTH_FLUSH_SYNC
    FINISH = lib.SYNTH_FLUSH_FINISH


class Direction(enum.IntEnum):
    COMPRESS = lib.SYNTH_COMP_DIR_COMPRESS
    DECOMPRESS = lib.SYNTH_COMP_DIR_DECOMPRESS


CPL_MORE: int = lib.SYNTH_CPL_F_MORE
CPL_END: int = lib.SYNTH_CPL_F_END


def comp_bound(n: int) -> int:
    """Worst-case compressed size of n bytes (SYNTH_COMP_BOUND): a COMPRESS into a destination this
    large never completes with NO_SPACE."""
    return int(lib.synth_comp_bound(n))
