# SPDX-License-Identifier: Apache-2.0
"""Read a VNFD (YAML or JSON), check it against the JSON Schema in ``schema.json`` and the rules a
schema cannot say, and build the model. Every problem is reported, each with its JSON path in the
document and, for YAML, its line: ``ipsec-gw.yaml:14: $.vdus.gw.devices[0].capabilities[0].kpis.
throughput_gbps: must be greater than 0, got -3``."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from libvirt_synth import capabilities, errors
from libvirt_synth.capabilities import CLASSES, KPIS, MANDATORY, PACKET, kpis_of_class, of_class
from libvirt_synth.vnfd.model import Device, Requirement, Vdu, Vnfd

FORMAT_VERSION = 1
PathParts = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")  # as jsonschema writes JSON paths
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)(?:I?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
MIN_SIZE, MAX_SIZE = 1 << 20, 1 << 30


def json_path(parts: Iterable[str | int]) -> str:
    """("vdus", "gw", "devices", 0) -> "$.vdus.gw.devices[0]" (jsonschema's notation)."""
    out = "$"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _PLAIN_KEY.match(p):
            out += "." + p
        else:
            out += "['" + p.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.line}: {self.path}: {self.message}" if self.line else f"{self.path}: {self.message}"

    def located(self, source: str) -> str:
        """'file.yaml:14: $.path: message' (no line: 'file.yaml: $.path: message')."""
        return f"{source}:{self.line}: {self.path}: {self.message}" if self.line else f"{source}: {self}"


class VnfdError(errors.ValueError):
    """The VNFD is not valid; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [p.located(source) for p in self.problems]
        if len(lines) == 1:
            super().__init__(lines[0])
        else:
            super().__init__(f"{source}: {len(lines)} problems in the VNFD\n  " + "\n  ".join(lines))


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the VNFD format (draft 2020-12)."""
    doc: dict[str, Any] = json.loads(resources.files(__package__).joinpath("schema.json").read_text())
    return doc


@functools.cache
def _validator() -> Any:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema())


# ---- YAML with positions ----

def _positions(text: str) -> dict[PathParts, int]:
    """Line (1-based) of every node of a YAML document, by path; keys map to their key's line."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[PathParts, int] = {}

    def walk(node: Any, path: PathParts) -> None:
        out.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                if k.tag.endswith(":int") and str(key).lstrip("-").isdigit():
                    key = int(key)
                out[(*path, key)] = k.start_mark.line + 1
                walk(v, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, i))

    if root is not None:
        walk(root, ())
    return out


def parse_text(text: str, source: str) -> tuple[Any, dict[PathParts, int]]:
    """YAML (a superset of JSON) -> the document and the line of each path."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise VnfdError(source, [Problem("$", f"not valid YAML: {problem}", line)]) from None
    return doc, _positions(text)


# ---- schema errors, in words ----

def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false"}


def _device_class(doc: Any, path: PathParts) -> str | None:
    """The class of the device that path lies in, if any."""
    try:
        i = path.index("devices")
        dev = doc
        for p in path[: i + 2]:
            dev = dev[p]
        cls = dev.get("class")
        return cls if cls in CLASSES else None
    except (ValueError, LookupError, TypeError, AttributeError):
        return None


def _schema_problems(doc: Any) -> list[tuple[PathParts, str]]:
    out: list[tuple[PathParts, str]] = []
    for e in _validator().iter_errors(doc):
        path: PathParts = tuple(e.absolute_path)
        v, inst, sch = e.validator, e.instance, e.schema
        parent = path[-1] if path else None
        if v == "additionalProperties" and isinstance(inst, dict):
            known = list(sch.get("properties", {}))
            for extra in sorted(set(inst) - set(known), key=str):
                if parent == "kpis":
                    out.append(((*path, extra), f"unknown KPI {extra!r}; KPIs: {', '.join(KPIS)}"))
                else:
                    out.append(((*path, extra), f"unknown key {extra!r}; expected one of: {', '.join(known)}"))
            continue
        if v == "required":
            missing = [k for k in sch["required"] if isinstance(inst, dict) and k not in inst]
            out += [(path, f"{k!r} is required") for k in missing]
            continue
        if "propertyNames" in e.absolute_schema_path:
            # the offending name is e.instance; the path is the mapping's
            if parent == "kpis" and inst not in KPIS:
                continue  # additionalProperties says it: an unknown KPI
            if parent == "kpis":
                cls = _device_class(doc, path)
                out.append(((*path, str(inst)), f"KPI {inst!r} does not apply to {cls} devices; "
                            f"{cls} KPIs: {', '.join(kpis_of_class(cls or ''))}"))
            else:
                what = "VDU name" if parent == "vdus" else "name"
                out.append(((*path, str(inst)), f"{inst!r} is not a valid {what} (letters, digits, '.', '_', '-'; "
                            "starting with a letter or digit; at most 63 characters)"))
            continue
        if v == "enum" and parent == "capability":
            cls = _device_class(doc, path)
            out.append((path, f"{inst!r} is not a capability of {cls} devices; {cls} capabilities: "
                        f"{', '.join(of_class(cls or ''))}"))
            continue
        if v == "enum":
            out.append((path, f"{inst!r} is not one of: {', '.join(map(str, e.validator_value))}"))
        elif v == "const" and path == ("synth_vnfd",):
            out.append((path, f"this reader knows format version {FORMAT_VERSION}, the document says {inst!r}"))
        elif v == "type":
            want = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
            words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in want)
            out.append((path, f"expected {words}, got {_kind(inst)}"))
        elif v == "exclusiveMinimum":
            out.append((path, f"must be greater than {e.validator_value}, got {inst!r}"))
        elif v == "minimum":
            out.append((path, f"must be at least {e.validator_value}, got {inst!r}"))
        elif v == "maximum":
            out.append((path, f"must be at most {e.validator_value}, got {inst!r}"))
        elif v in ("minItems", "minProperties"):
            out.append((path, "must not be empty"))
        elif v in ("pattern", "anyOf") and "description" in sch:
            out.append((path, f"{inst!r} is not valid: {sch['description']}"))
        elif v == "pattern":
            out.append((path, f"{inst!r} is not a valid name (letters, digits, '.', '_', '-'; starting with a "
                        "letter or digit)"))
        else:
            out.append((path, e.message))
    return out


# ---- rules the schema does not say ----

def parse_size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    return int(m.group(1)) * _UNITS[m.group(2).upper()] if m else None


def _semantic_problems(doc: Any) -> list[tuple[PathParts, str]]:
    out: list[tuple[PathParts, str]] = []
    vdus = doc.get("vdus") if isinstance(doc, dict) else None
    if not isinstance(vdus, dict):
        return out
    for vname, vdu in vdus.items():
        devices = vdu.get("devices") if isinstance(vdu, dict) else None
        if not isinstance(devices, list):
            continue
        ids: dict[str, int] = {}
        for i, dev in enumerate(devices):
            if not isinstance(dev, dict):
                continue
            here: PathParts = ("vdus", vname, "devices", i)
            cls = dev.get("class")
            if isinstance(dev.get("id"), str):
                if dev["id"] in ids:
                    out.append(((*here, "id"), f"id {dev['id']!r} is already the id of devices[{ids[dev['id']]}]"))
                ids.setdefault(dev["id"], i)
            if "channels" in dev and cls in CLASSES and cls != PACKET:
                out.append(((*here, "channels"), f"channels are for packet devices; give queues for {cls}"))
            if "channels" in dev and "queues" in dev:
                out.append(((*here, "queues"), "give channels or queues, not both (a channel is 2 queues)"))
            q = dev.get("queues")
            if cls == PACKET and isinstance(q, int) and not isinstance(q, bool) and q % 2:
                out.append(((*here, "queues"), f"a packet device has an even number of queues (a TX and an RX "
                            f"queue per channel), got {q}"))
            r = dev.get("ring_entries")
            if isinstance(r, int) and not isinstance(r, bool) and r & (r - 1):
                out.append(((*here, "ring_entries"), f"must be a power of two, got {r}"))
            if "size" in dev:
                n = parse_size(dev["size"])
                if n is not None and (n & (n - 1) or not MIN_SIZE <= n <= MAX_SIZE):
                    out.append(((*here, "size"), f"{dev['size']!r} is {n} bytes: the size must be a power of two "
                                "from 1M to 1G (e.g. 1M, 4M, 8M)"))
            opts = dev.get("options")
            if cls in CLASSES and isinstance(opts, dict):  # the one device check has the options' rules
                ch = dev.get("channels")
                queues = 2 * ch if isinstance(ch, int) else q if isinstance(q, int) else None
                for msg in capabilities.device_problems(cls, options=opts, queues=queues):
                    out.append(((*here, "options"), msg))
            caps = dev.get("capabilities")
            seen: dict[str, int] = {}
            for j, req in enumerate(caps if isinstance(caps, list) else []):
                c = req.get("capability") if isinstance(req, dict) else None
                if isinstance(c, str):
                    if c in seen:
                        out.append(((*here, "capabilities", j, "capability"),
                                    f"{c!r} is already asked for by capabilities[{seen[c]}]; one entry per capability"))
                    seen.setdefault(c, j)
    return out


# ---- building the model ----

def _memory_mib(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    n = parse_size(value if re.search(r"[MGmg]", str(value)) else f"{value}M")
    return n // (1 << 20) if n else None


def _build(doc: dict[str, Any], source: str) -> Vnfd:
    vdus = {}
    for vname, v in doc["vdus"].items():
        devices = []
        for i, d in enumerate(v["devices"]):
            here = ("vdus", vname, "devices", i)
            reqs = tuple(
                Requirement(capability=r["capability"], mandatory=r.get("support", MANDATORY) == MANDATORY,
                            kpis={k: x for k, x in (r.get("kpis") or {}).items()},
                            path=json_path((*here, "capabilities", j)))
                for j, r in enumerate(d["capabilities"]))
            devices.append(Device(dev_class=d["class"], requirements=reqs, id=d.get("id"), queues=d.get("queues"),
                                  channels=d.get("channels"), ring_entries=d.get("ring_entries"), size=d.get("size"),
                                  options=dict(d.get("options") or {}), path=json_path(here)))
        vdus[vname] = Vdu(name=vname, devices=tuple(devices), description=v.get("description", ""),
                          vcpus=v.get("vcpus"), memory_mib=_memory_mib(v.get("memory")),
                          path=json_path(("vdus", vname)), source=source)
    return Vnfd(descriptor_id=doc["descriptor_id"], vdus=vdus, source=source,
                **{k: doc.get(k, "") for k in ("descriptor_version", "provider", "product_name", "software_version",
                                               "description")})


def problems(doc: Any, lines: dict[PathParts, int] | None = None) -> list[Problem]:
    """Every problem of a parsed document (empty: valid), in document order."""
    lines = lines or {}
    found = _schema_problems(doc)
    found += _semantic_problems(doc)

    def line_of(path: PathParts) -> int | None:
        for n in range(len(path), -1, -1):
            if path[:n] in lines:
                return lines[path[:n]]
        return None

    out = sorted({Problem(json_path(p), m, line_of(p)) for p, m in found},
                 key=lambda pr: (pr.line or 0, pr.path, pr.message))
    return out


def loads(text: str, source: str = "<vnfd>") -> Vnfd:
    """A VNFD from YAML or JSON text; raises VnfdError listing every problem."""
    doc, lines = parse_text(text, source)
    found = problems(doc, lines)
    if found:
        raise VnfdError(source, found)
    return _build(doc, source)


def load(path: str) -> Vnfd:
    """A VNFD from a file (``-``: standard input)."""
    import sys

    if path == "-":
        return loads(sys.stdin.read(), "<stdin>")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise errors.NotFoundError(f"VNFD {path} does not exist") from None
    except OSError as e:
        raise errors.ValueError(f"cannot read VNFD {path}: {e.strerror}") from None
    return loads(text, path)
