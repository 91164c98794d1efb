# SPDX-License-Identifier: Apache-2.0
"""The vocabulary a VNFD, a host inventory and the placement share: which capabilities exist, the
class of device that offers each and its kind, and the KPIs that can be asked for.

The algorithm names are the device ABI's (``libvirt_synth.abi``); tests pin the two together
without this module importing the C core, so that loading a VNFD needs no compiled code."""

from __future__ import annotations

from dataclasses import dataclass

CRYPTO, COMPRESS, PACKET = "crypto", "compress", "packet"
CLASSES = (CRYPTO, COMPRESS, PACKET)

MANDATORY, PREFERRED = "mandatory", "preferred"
SUPPORT = (MANDATORY, PREFERRED)


@dataclass(frozen=True)
class Capability:
    name: str      # as written in a VNFD and in the domain metadata: "aes-256-gcm"
    dev_class: str  # crypto | compress | packet
    kind: str      # aead | cipher-auth | auth | compression | io


CAPABILITIES: dict[str, Capability] = {c.name: c for c in (
    Capability("aes-128-gcm", CRYPTO, "aead"),
    Capability("aes-256-gcm", CRYPTO, "aead"),
    Capability("chacha20-poly1305", CRYPTO, "aead"),
    Capability("aes-256-cbc-hmac-sha256", CRYPTO, "cipher-auth"),
    Capability("hmac-sha256", CRYPTO, "auth"),
    Capability("deflate", COMPRESS, "compression"),
    Capability("zlib", COMPRESS, "compression"),
    Capability("gzip", COMPRESS, "compression"),
    Capability("zstd", COMPRESS, "compression"),
    Capability("lz4", COMPRESS, "compression"),
    Capability("io", PACKET, "io"),
)}


def of_class(dev_class: str) -> list[str]:
    return [c.name for c in CAPABILITIES.values() if c.dev_class == dev_class]


@dataclass(frozen=True)
class Kpi:
    name: str
    unit: str         # for people: "Gb/s"
    summed: bool      # several asks add up (throughput) or the strictest wins (latency)
    classes: tuple[str, ...]
    description: str


KPIS: dict[str, Kpi] = {k.name: k for k in (
    Kpi("throughput_gbps", "Gb/s", True, CLASSES, "data processed (input bytes), gigabits per second"),
    Kpi("ops_per_s", "ops/s", True, (CRYPTO, COMPRESS), "operations per second"),
    Kpi("sessions", "sessions", True, (CRYPTO, COMPRESS),
        "concurrent sessions (crypto: security associations; compress: streams)"),
    Kpi("packets_per_s", "packets/s", True, (PACKET,), "packets per second, both directions"),
    Kpi("max_latency_us", "us", False, CLASSES, "largest acceptable mean time per operation, microseconds"),
)}

#: KPIs that consume host capacity (and are therefore committed by defined VMs).
CONSUMED = tuple(k for k, v in KPIS.items() if v.summed)


def kpis_of_class(dev_class: str) -> list[str]:
    return [k.name for k in KPIS.values() if dev_class in k.classes]
