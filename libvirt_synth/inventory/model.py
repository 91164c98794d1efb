# SPDX-License-Identifier: Apache-2.0
"""The inventory document: one JSON document per host, versioned, what ``virt-synth inventory
--json`` prints and ``virt-synth place --inventory DIR`` reads (docs/inventory.md describes every
field)::

    {"format": "libvirt-synth-inventory", "version": 1, "host": "host7", "generated": "...",
     "cpu": {...}, "numa": [...], "pci": {"accelerators": [...], "nics": [...]},
     "plugins": [...], "workers": {"count": 2, "cpus": [2, 3]},
     "capacity": {"aes-256-gcm": {"plugin": "ipsec-mb", "throughput_gbps": 131.2, ...}, ...},
     "committed": {"by_capability": {"aes-256-gcm": {"throughput_gbps": 12}}, ...}}

Readers refuse another format or a newer version rather than guess."""

from __future__ import annotations

import json
import math
from typing import Any

from libvirt_synth import errors

FORMAT = "libvirt-synth-inventory"
VERSION = 1
REQUIRED = ("host", "capacity")


def check(doc: Any, source: str) -> dict[str, Any]:
    """A parsed document, checked to be an inventory this reader understands."""
    if not isinstance(doc, dict):
        raise errors.ValueError(f"{source}: not an inventory document (expected a JSON object)")
    if doc.get("format") != FORMAT:
        raise errors.ValueError(f"{source}: not an inventory document (format {doc.get('format')!r}, "
                                f"expected {FORMAT!r})")
    version = doc.get("version")
    if version != VERSION:
        raise errors.ValueError(f"{source}: inventory version {version!r}; this reader knows version {VERSION}")
    for key in REQUIRED:
        if key not in doc:
            raise errors.ValueError(f"{source}: the inventory has no {key!r}")
    if not isinstance(doc["capacity"], dict):
        raise errors.ValueError(f"{source}: 'capacity' must be an object")
    return doc


def read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except FileNotFoundError:
        raise errors.NotFoundError(2, f"inventory {path} does not exist") from None
    except OSError as e:
        raise errors.ValueError(f"cannot read inventory {path}: {e.strerror}") from None
    except ValueError as e:
        raise errors.ValueError(f"{path}: not valid JSON: {e}") from None
    return check(doc, path)


def committed(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    c = doc.get("committed") or {}
    by_cap = c.get("by_capability") if isinstance(c, dict) else None
    return by_cap if isinstance(by_cap, dict) else {}


def free(doc: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per capability, what is left: capacity minus committed (None: not measured)."""
    used = committed(doc)
    out: dict[str, dict[str, float | None]] = {}
    for cap, entry in doc["capacity"].items():
        u = used.get(cap, {})
        row: dict[str, float | None] = {}
        for kpi in ("throughput_gbps", "ops_per_s"):
            total = entry.get(kpi)
            row[kpi] = None if total is None else total - float(u.get(kpi, 0))
        out[cap] = row
    return out


def number(value: Any) -> float | None:
    """A finite number from a document, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
