# SPDX-License-Identifier: Apache-2.0
"""What synthetic devices a domain should have, as the user says it: a small YAML file or
``--device CLASS[:key=value,...]`` options. (The full VNFD format comes later and will produce the
same DeviceSpec objects.) Only parsing and checking here; defaults are filled by the designer.

YAML::

    devices:
      - class: crypto
        capabilities: [aes-256-gcm, chacha20-poly1305]
        kpis: {throughput_gbps: 12, sessions: 10000}
        size: 4M
      - class: packet
        channels: 1
        options: {link: "wire:peer"}

Command line: ``--device crypto:caps=aes-256-gcm+chacha20-poly1305,kpi.throughput_gbps=12,size=4M``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from libvirt_synth import errors
from libvirt_synth.hook import metadata

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
CAP_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$")  # virt-synthd's region names
PLUGIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SPEC_KEYS = ("class", "name", "size", "queues", "channels", "ring_entries", "plugin", "capabilities", "kpis",
             "options")
CLI_KEYS = ("name", "size", "queues", "channels", "ring-entries", "plugin", "caps", "cap", "kpi.NAME", "opt.NAME")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass
class DeviceSpec:
    """One synthetic device asked for. None means "the designer's default"."""

    dev_class: str
    name: str | None = None
    size: int | None = None
    queues: int | None = None
    ring_entries: int | None = None
    plugin: str | None = None
    capabilities: list[str] = field(default_factory=list)
    kpis: dict[str, int | float] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    where: str = field(default="", compare=False)


def parse_size(value: Any, where: str) -> int:
    """4194304, "4194304", "4M", "4MiB", "64K", "1G" -> bytes."""
    if isinstance(value, bool):
        raise errors.ValueError(f"{where}: size {value!r} is not a size")
    if isinstance(value, int):
        n = value
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:I?B)?\s*", str(value), re.IGNORECASE)
        if not m:
            raise errors.ValueError(f"{where}: size {value!r} is not a size; write e.g. 4M, 1M, 4194304")
        n = int(m.group(1)) * _UNITS[m.group(2).upper()]
    if n <= 0:
        raise errors.ValueError(f"{where}: size must be positive")
    return n


def _count(value: Any, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise errors.ValueError(f"{where}: {what} {value!r} is not a number")
    try:
        n = int(value)
    except ValueError:
        raise errors.ValueError(f"{where}: {what} {value!r} is not a number") from None
    if n <= 0:
        raise errors.ValueError(f"{where}: {what} must be positive, got {n}")
    return n


def _key(name: Any, where: str, what: str) -> str:
    if not isinstance(name, str) or not KEY_RE.match(name):
        raise errors.ValueError(f"{where}: {what} name {name!r} is not valid (letters, digits, '_', '.', '-')")
    return name


def _kpi_value(value: Any, where: str, name: str) -> int | float:
    v = metadata.parse_number(value) if isinstance(value, str) else value
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise errors.ValueError(f"{where}: KPI {name} = {value!r} is not a non-negative number")
    return v


def _option_value(value: Any, where: str, name: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int | float):
        raise errors.ValueError(f"{where}: option {name} = {value!r} is not a string or a number")
    return str(value)


def _capability(cap: Any, where: str) -> str:
    if not isinstance(cap, str) or not CAP_RE.match(cap.lower()):
        raise errors.ValueError(f"{where}: capability {cap!r} is not valid (e.g. aes-256-gcm)")
    return cap.lower()


def _finish(spec: DeviceSpec, channels: int | None) -> DeviceSpec:
    """Checks that need the whole device."""
    where = spec.where
    if spec.dev_class not in metadata.CLASSES:
        raise errors.ValueError(f"{where}: unknown device class {spec.dev_class!r}; expected one of: "
                                f"{', '.join(metadata.CLASSES)}")
    if spec.name is not None and not NAME_RE.match(spec.name):
        raise errors.ValueError(f"{where}: name {spec.name!r} is not a valid region name (letters, digits, '.', "
                                "'_', '-'; at most 31 characters)")
    if spec.plugin is not None and not PLUGIN_RE.match(spec.plugin):
        raise errors.ValueError(f"{where}: plugin {spec.plugin!r} is not a plugin name")
    if channels is not None:
        if spec.dev_class != metadata.CLASS_PACKET:
            raise errors.ValueError(f"{where}: channels are for packet devices; give queues for {spec.dev_class}")
        if spec.queues is not None:
            raise errors.ValueError(f"{where}: give channels or queues, not both (a channel is 2 queues)")
        spec.queues = 2 * channels
    if len(set(spec.capabilities)) != len(spec.capabilities):
        raise errors.ValueError(f"{where}: a capability is listed twice: {spec.capabilities}")
    return spec


def parse_cli(text: str, where: str = "--device") -> DeviceSpec:
    """``CLASS[:key=value,...]`` -> DeviceSpec. Keys: name, size, queues, channels (packet),
    ring-entries, plugin, caps=A+B (or cap=A repeated), kpi.NAME=NUMBER, opt.NAME=VALUE."""
    where = f"{where} {text!r}"
    cls, _, rest = text.strip().partition(":")
    spec = DeviceSpec(dev_class=cls.strip().lower(), where=where)
    channels = None
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise errors.ValueError(f"{where}: {item!r} is not key=value")
        if key == "name":
            spec.name = value
        elif key == "size":
            spec.size = parse_size(value, where)
        elif key == "queues":
            spec.queues = _count(value, where, "queues")
        elif key == "channels":
            channels = _count(value, where, "channels")
        elif key in ("ring-entries", "ring_entries", "ring"):
            spec.ring_entries = _count(value, where, "ring entries")
        elif key == "plugin":
            spec.plugin = value
        elif key in ("caps", "cap", "capabilities"):
            spec.capabilities += [_capability(c, where) for c in value.split("+")]
        elif key.startswith("kpi."):
            name = _key(key[4:], where, "KPI")
            spec.kpis[name] = _kpi_value(value, where, name)
        elif key.startswith(("opt.", "option.")):
            name = _key(key.partition(".")[2], where, "option")
            spec.options[name] = value
        else:
            raise errors.ValueError(f"{where}: unknown key {key!r}; expected one of: {', '.join(CLI_KEYS)}")
    return _finish(spec, channels)


def parse_mapping(raw: Any, where: str) -> DeviceSpec:
    """One device of a YAML spec (a mapping) -> DeviceSpec."""
    if not isinstance(raw, dict):
        raise errors.ValueError(f"{where}: expected a mapping with at least 'class', got {type(raw).__name__}")
    raw = {str(k).replace("-", "_"): v for k, v in raw.items()}
    if "caps" in raw:
        raw["capabilities"] = raw.pop("caps")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise errors.ValueError(f"{where}: unknown key {unknown[0]!r}; expected some of: {', '.join(SPEC_KEYS)}")
    if "class" not in raw:
        raise errors.ValueError(f"{where}: 'class' is missing (one of {', '.join(metadata.CLASSES)})")
    spec = DeviceSpec(dev_class=str(raw["class"]).lower(), where=where)
    if raw.get("name") is not None:
        spec.name = str(raw["name"])
    if raw.get("size") is not None:
        spec.size = parse_size(raw["size"], where)
    if raw.get("queues") is not None:
        spec.queues = _count(raw["queues"], where, "queues")
    if raw.get("ring_entries") is not None:
        spec.ring_entries = _count(raw["ring_entries"], where, "ring entries")
    if raw.get("plugin") is not None:
        spec.plugin = str(raw["plugin"])
    caps = raw.get("capabilities") or []
    spec.capabilities = [_capability(c, where) for c in ([caps] if isinstance(caps, str) else caps)]
    for section, conv in (("kpis", _kpi_value), ("options", _option_value)):
        table = raw.get(section) or {}
        if not isinstance(table, dict):
            raise errors.ValueError(f"{where}: {section} must be a mapping of name: value")
        for k, v in table.items():
            name = _key(k, where, section[:-1])
            getattr(spec, section)[name] = conv(v, where, name)
    channels = _count(raw["channels"], where, "channels") if raw.get("channels") is not None else None
    return _finish(spec, channels)


def parse_yaml(text: str, source: str = "<spec>") -> list[DeviceSpec]:
    """A spec document: ``devices: [...]`` or a bare list of devices."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise errors.ValueError(f"{source}{line}: not valid YAML: {problem}") from None
    if doc is None:
        return []
    if isinstance(doc, dict):
        extra = sorted(str(k) for k in doc if k != "devices")
        if extra:
            raise errors.ValueError(f"{source}: unknown top-level key {extra[0]!r}; expected 'devices'")
        doc = doc.get("devices") or []
    if not isinstance(doc, list):
        raise errors.ValueError(f"{source}: expected a list of devices (or 'devices:' and a list)")
    return [parse_mapping(d, f"{source}: devices[{i}]") for i, d in enumerate(doc)]


class VduDevices(Protocol):
    """What from_vdu() needs of a VNFD's VDU (libvirt_synth.vnfd.Vdu; not imported: the XML layer
    sits below the VNFD in the data flow)."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def source(self) -> str: ...

    def spec_devices(self) -> list[dict[str, Any]]: ...


def from_vdu(vdu: VduDevices) -> list[DeviceSpec]:
    """The devices of a VNFD's VDU (``vnfd.load(path).vdu(name)``) as DeviceSpecs, checked as a
    YAML device spec is."""
    return [parse_mapping(d, f"{vdu.source}: {vdu.path}.devices[{i}]") for i, d in enumerate(vdu.spec_devices())]


def load(spec_files: Iterable[str] = (), cli: Sequence[str] = ()) -> list[DeviceSpec]:
    """Devices from spec files (in order), then from ``--device`` options."""
    out: list[DeviceSpec] = []
    for path in spec_files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise errors.NotFoundError(f"device spec {path} does not exist") from None
        except OSError as e:
            raise errors.ValueError(f"cannot read device spec {path}: {e.strerror}") from None
        out += parse_yaml(text, path)
    out += [parse_cli(t, f"--device #{i + 1}") for i, t in enumerate(cli)]
    return out
