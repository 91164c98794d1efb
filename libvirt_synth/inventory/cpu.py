# SPDX-License-Identifier: Apache-2.0
"""This host's CPU: model, vendor, logical CPUs, sockets and feature flags, from /proc/cpuinfo
(``root`` points at another tree: a test's fake host)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

#: Flags the plugins' code paths use; the inventory lists these apart from the full set.
ACCEL_FLAGS = ("aes", "vaes", "pclmulqdq", "vpclmulqdq", "sha_ni", "gfni", "avx", "avx2", "avx512f", "avx512bw",
               "avx512vl", "bmi2", "sse4_1", "sse4_2", "ssse3")


@dataclass
class CpuInfo:
    model: str
    vendor: str
    logical_cpus: int
    sockets: int
    flags: list[str] = field(default_factory=list)

    @property
    def accel_flags(self) -> list[str]:
        have = set(self.flags)
        return [f for f in ACCEL_FLAGS if f in have]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"accel_flags": self.accel_flags}


def read(root: str = "/") -> CpuInfo:
    """Parse ROOT/proc/cpuinfo (x86 layout; other architectures give what they have)."""
    path = os.path.join(root, "proc/cpuinfo")
    model = vendor = ""
    flags: list[str] = []
    cpus = 0
    sockets: set[str] = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    continue
                key, value = key.strip(), value.strip()
                if key == "processor":
                    cpus += 1
                elif key == "model name" and not model:
                    model = value
                elif key == "vendor_id" and not vendor:
                    vendor = value
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
                elif key == "physical id":
                    sockets.add(value)
    except OSError:
        pass
    return CpuInfo(model=model or "unknown", vendor=vendor or "unknown", logical_cpus=cpus or (os.cpu_count() or 1),
                   sockets=len(sockets) or 1, flags=sorted(flags))
