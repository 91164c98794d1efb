# SPDX-License-Identifier: Apache-2.0
"""NUMA nodes: their CPUs and memory, from ROOT/sys/devices/system/node (one node with every CPU
when the kernel has no NUMA support)."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class NumaNode:
    node: int
    cpus: list[int] = field(default_factory=list)
    memory_mib: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_cpulist(text: str) -> list[int]:
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11] (the kernel's cpulist format)."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _memory_mib(node_dir: str) -> int | None:
    try:
        with open(os.path.join(node_dir, "meminfo")) as f:
            for line in f:
                m = re.match(r"Node \d+ MemTotal:\s+(\d+) kB", line)
                if m:
                    return int(m.group(1)) // 1024
    except OSError:
        pass
    return None


def read(root: str = "/", logical_cpus: int | None = None) -> list[NumaNode]:
    base = os.path.join(root, "sys/devices/system/node")
    nodes = []
    try:
        names = sorted((n for n in os.listdir(base) if re.fullmatch(r"node\d+", n)), key=lambda n: int(n[4:]))
    except OSError:
        names = []
    for name in names:
        d = os.path.join(base, name)
        try:
            with open(os.path.join(d, "cpulist")) as f:
                cpus = parse_cpulist(f.read())
        except (OSError, ValueError):
            cpus = []
        nodes.append(NumaNode(int(name[4:]), cpus, _memory_mib(d)))
    if not nodes:
        nodes.append(NumaNode(0, list(range(logical_cpus or os.cpu_count() or 1)), None))
    return nodes
