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
import os
import re
from typing import Any

from libvirt_synth import errors

FORMAT = "libvirt-synth-inventory"
VERSION = 1
REQUIRED = ("host", "capacity")
#: Keys in the order written: what placement reads comes first, so that a reader that has what it
#: needs can stop (libvirt_synth.placement.rank reads no further than ``committed``).
KEY_ORDER = ("format", "version", "host", "generated", "generator", "root", "capacity", "committed", "workers",
             "calibration", "cpu", "numa", "pci", "plugins")
PLACEMENT_KEYS = frozenset(("format", "version", "host", "capacity", "committed"))


def ordered(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with its keys in KEY_ORDER (others after, as they were)."""
    out = {k: doc[k] for k in KEY_ORDER if k in doc}
    return out | {k: v for k, v in doc.items() if k not in out}


_SCAN: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner json itself uses
_WS: Any = re.compile(r"[ \t\n\r]*")  # always matches


def read_keys(text: str, wanted: frozenset[str] = PLACEMENT_KEYS, whole: bool = True) -> dict[str, Any]:
    """The top-level members of a JSON object, read in order until every ``wanted`` key is in and
    the delimiter after its value (``,`` or ``}``) is seen: what follows is not parsed (nor
    checked). Falls back to parsing the whole text, which raises json's own error, when the text is
    not a well-formed object up to there; so a text cut short anywhere before that point (a file's
    head, see ``read_head``) is never taken for a complete one. With ``whole=False`` that fallback
    is a bare ValueError instead."""
    scan, ws = _SCAN, _WS.match
    out: dict[str, Any] = {}
    try:
        i = ws(text, 0).end()
        if text[i] != "{":
            raise ValueError
        i = ws(text, i + 1).end()
        if text[i] == "}":
            return out
        while True:
            if text[i] != '"':
                raise ValueError
            key, i = scan(text, i)
            i = ws(text, i).end()
            if text[i] != ":":
                raise ValueError
            value, i = scan(text, ws(text, i + 1).end())
            out[key] = value
            i = ws(text, i).end()
            c = text[i]
            if c == "}" or (c == "," and wanted <= out.keys()):
                return out
            if c != ",":
                raise ValueError
            i = ws(text, i + 1).end()
    except (ValueError, IndexError, StopIteration):
        if not whole:
            raise ValueError("not a JSON object with those members up to its end") from None
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise errors.ValueError("not an inventory document (expected a JSON object)") from None
        return doc


#: How much of a file ``read_head`` reads first: more than the members placement needs take in
#: the documents ``virt-synth inventory`` writes (about 4 KiB with every capability).
HEAD_BYTES = 8192


def read_head(path: str, size: int, wanted: frozenset[str] = PLACEMENT_KEYS) -> dict[str, Any]:
    """``read_keys`` of a file of ``size`` bytes (as stat said), reading only its first
    HEAD_BYTES when the wanted members lie in them; else the whole file, so that errors are those
    of the whole text. Raises OSError, UnicodeDecodeError or another ValueError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        asked = min(size + 1, HEAD_BYTES)
        data = os.read(fd, asked)
        if len(data) < asked:  # the whole file
            return read_keys(data.decode(), wanted)
        try:
            return read_keys(data.decode(), wanted, whole=False)
        except ValueError:  # not in the head (UnicodeDecodeError too: a character cut at its end)
            pass
        chunks = [data]
        while data:  # the rest, to the end (the file may have grown since stat)
            data = os.read(fd, max(size + 1 - len(chunks[0]), HEAD_BYTES))
            chunks.append(data)
    finally:
        os.close(fd)
    return read_keys(b"".join(chunks).decode(), wanted)


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
        raise errors.NotFoundError(f"inventory {path} does not exist") from None
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
        for kpi in ("throughput_gbps", "ops_per_s", "packets_per_s"):
            total = entry.get(kpi)
            row[kpi] = None if total is None else total - float(u.get(kpi, 0))
        out[cap] = row
    return out


def number(value: Any) -> float | None:
    """A finite number from a document, else None (booleans, strings, NaN, infinities, integers
    too large for a float)."""
    t = type(value)
    if t is float:
        return value if value - value == 0.0 else None  # inf - inf and nan - nan are nan
    if t is int:
        return float(value) if -_INT_LIMIT < value < _INT_LIMIT else None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return number(float(value) if isinstance(value, float) else int(value))  # a subclass of either


_INT_LIMIT = 2 ** 1024  # float(2 ** 1024) overflows
