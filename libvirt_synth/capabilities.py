# SPDX-License-Identifier: Apache-2.0
"""What a synthetic device may ask for, and the one check of it.

The vocabulary that a VNFD, the XML generator, the libvirt hook, virt-synthd, a host inventory and
the placement share: the device classes, the capabilities and the class that offers each, the
KPIs, each class's host options, and the plugins this build carries with what each can serve.
``device_problems()`` is the one check of a device against it; ``check_device()`` raises on the
first problem. ``virt-synth xml``/``define`` (through ``xml.spec``), the VNFD loader, the hook
(through ``metadata``) and the daemon (with its live plugin catalog) all call it, so that a device
refused by one is refused by all, and as early as the operator's first command.

The libvirt hook imports this module before every VM start: standard library only, and none of
the slow parts of it (no ``re``, ``dataclasses`` or ``typing``). Algorithm names, limits and the
plugin table restate the C core's; tests pin them to it (the C core is not imported here)."""

from __future__ import annotations

from libvirt_synth import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

CRYPTO, COMPRESS, PACKET = "crypto", "compress", "packet"
CLASSES = (CRYPTO, COMPRESS, PACKET)

MANDATORY, PREFERRED = "mandatory", "preferred"
SUPPORT = (MANDATORY, PREFERRED)


class Capability:
    __slots__ = ("name", "dev_class", "kind")

    def __init__(self, name: str, dev_class: str, kind: str) -> None:
        self.name = name            # as written in a VNFD and in the domain metadata: "aes-256-gcm"
        self.dev_class = dev_class  # crypto | compress | packet
        self.kind = kind            # aead | cipher-auth | auth | compression | io

    def __repr__(self) -> str:
        return f"Capability({self.name!r}, {self.dev_class!r}, {self.kind!r})"


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


class Kpi:
    __slots__ = ("name", "unit", "summed", "classes", "description")

    def __init__(self, name: str, unit: str, summed: bool, classes: tuple[str, ...], description: str) -> None:
        self.name = name
        self.unit = unit                # for people: "Gb/s"
        self.summed = summed            # several asks add up (throughput) or the strictest wins (latency)
        self.classes = classes
        self.description = description

    def __repr__(self) -> str:
        return f"Kpi({self.name!r})"


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


def kpi_key(capability: str, kpi: str, first: bool) -> str:
    """A device's KPI as its ``kpis`` mapping keys it: those of its first capability by name, those
    of the others as ``<capability>.<kpi>``."""
    return kpi if first else f"{capability}.{kpi}"


def split_kpi_key(key: str, first: str | None) -> tuple[str | None, str]:
    """(capability, KPI) of a key kpi_key wrote; a bare name belongs to ``first``, the device's first
    capability (None: not known)."""
    cap, dot, kpi = key.rpartition(".")
    return (cap, kpi) if dot else (first, key)


#: The plugins this build carries: class and every capability each can serve where it runs (the
#: C catalog, native/src/plugins/catalog.c; whether it runs on a host is that host's business).
PLUGINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "openssl": (CRYPTO, ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305", "aes-256-cbc-hmac-sha256",
                         "hmac-sha256")),
    "ipsec-mb": (CRYPTO, ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305", "aes-256-cbc-hmac-sha256")),
    "af-alg": (CRYPTO, ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305")),
    "zlib": (COMPRESS, ("deflate", "zlib", "gzip")),
    "isal": (COMPRESS, ("deflate", "zlib", "gzip")),
    "zstd": (COMPRESS, ("zstd",)),
    "lz4": (COMPRESS, ("lz4",)),
}

# ---- host options, per class ----

PKT_MIN_FRAME, PKT_MAX_FRAME = 14, 9216  # synth/packet_core.h
IFNAMSIZ = 16
NAME_MAX_LEN = 31  # virt-synthd's region names: what the device header holds
#: Option -> (lowest, highest, what it is). Compression limits: synth/compress_core.h.
RANGES: dict[str, dict[str, tuple[int, int, str]]] = {
    CRYPTO: {},
    COMPRESS: {
        "max_streams": (1, 4096, "streams a device holds at once"),
        "max_chunk": (4096, 64 << 20, "longest input of one op (bytes)"),
        "max_stream_output": (1, 2**64 - 1, "most bytes one stream may produce (bytes)"),
        "max_stream_memory": (1, 2**64 - 1, "host memory all streams of a device may hold (bytes)"),
        "zstd_window_log": (10, 30, "largest zstd window, log2 of bytes"),
    },
    PACKET: {"max_frame": (PKT_MIN_FRAME, PKT_MAX_FRAME, "longest frame in bytes")},
}
LINK_OPTION = "link"  # packet: link[.CHANNEL] = wire:DEVICE[.CHANNEL] | tap:IFNAME


def option_names(dev_class: str) -> list[str]:
    names = list(RANGES.get(dev_class, {}))
    return names + ["link", "link.CHANNEL"] if dev_class == PACKET else names


def is_region_name(name: object) -> bool:
    """A virt-synthd region name: letters, digits, '.', '_', '-', not first; at most 31 characters."""
    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX_LEN or not name.isascii():
        return False
    return name[0].isalnum() and all(c.isalnum() or c in "._-" for c in name)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def link_channel(key: str) -> int | None:
    """``link`` -> 0, ``link.2`` -> 2; None if the key is not a link option."""
    if key == LINK_OPTION:
        return 0
    head, dot, tail = key.partition(".")
    if head == LINK_OPTION and dot and tail.isdigit() and tail.isascii():
        return int(tail)
    return None


def parse_link(value: str) -> tuple[str, str, int]:
    """``wire:PEER[.CHANNEL]`` -> ("wire", PEER, CHANNEL); ``tap:IFNAME`` -> ("tap", IFNAME, 0).
    A wire's PEER.CHANNEL split is only a guess here (a device may have a dot in its name); the
    daemon resolves it against the devices it knows. Raises ValueError."""
    kind, colon, target = str(value).partition(":")
    if kind == "wire" and colon:
        base, dot, chan = target.rpartition(".")
        if dot and chan.isdigit() and chan.isascii() and is_region_name(base):
            return kind, base, int(chan)
        if is_region_name(target):
            return kind, target, 0
        raise errors.ValueError(f"wire peer {target!r} is not a device name (letters, digits, '.', '_', '-'; "
                                f"at most {NAME_MAX_LEN} characters), optionally with .CHANNEL")
    if kind == "tap" and colon:
        if not 0 < len(target.encode()) < IFNAMSIZ or "/" in target or any(c.isspace() for c in target):
            raise errors.ValueError(f"TAP interface {target!r} is not an interface name (1..{IFNAMSIZ - 1} "
                                    "characters, no '/' or spaces)")
        return kind, target, 0
    raise errors.ValueError(f"{value!r} is not a link: expected wire:DEVICE[.CHANNEL] or tap:IFNAME")


# ---- the check ----


def _suggest(word: str, choices: Iterable[str]) -> str:
    """'; did you mean X?' when one choice differs by a letter or two (no difflib: it imports re)."""
    def close(a: str, b: str) -> bool:
        if abs(len(a) - len(b)) > 2:
            return False
        common = sum(1 for x, y in zip(a, b, strict=False) if x == y)
        return len(set(a) ^ set(b)) <= 2 and common >= min(len(a), len(b)) - 2

    near = [c for c in choices if close(word, c)]
    return f"; did you mean {near[0]}?" if near else ""


def plugin_problems(dev_class: str, plugin: str, capabilities: Iterable[str],
                    catalog: Mapping[str, tuple[str, tuple[str, ...]]] | None) -> list[str]:
    """A pinned plugin must be of the device's class and serve every capability asked. ``catalog``
    is a host's (name -> class, what it serves there); None: the plugins this build carries, and
    a name it does not know is left to the host (an external plugin)."""
    if dev_class == PACKET:
        return [f"plugin {plugin!r}: packet devices are served by the data path itself and take no plugin"]
    known = PLUGINS if catalog is None else catalog
    if plugin not in known:
        if catalog is None:
            return []
        mine = sorted(n for n, (c, _) in known.items() if c == dev_class)
        return [f"plugin {plugin!r} is not in this host's catalog{_suggest(plugin, mine)} ({dev_class} plugins "
                f"here: {', '.join(mine) or 'none'}; see virt-synth plugins)"]
    cls, serves = known[plugin]
    if cls != dev_class:
        return [f"plugin {plugin!r} is a {cls} plugin, not a {dev_class} one"]
    missing = [c for c in capabilities if c not in serves]
    if not missing:
        return []
    able = sorted(n for n, (c, s) in known.items() if c == dev_class and all(x in s for x in capabilities))
    alt = f"; {', '.join(able)} serve{'s' if len(able) == 1 else ''} all of them" if able else ""
    return [f"plugin {plugin!r} does not serve {', '.join(missing)} (it serves {', '.join(serves) or 'nothing'}"
            f"{' here' if catalog is not None else ''}): give no plugin, or one that serves every capability "
            f"asked{alt}"]


def device_problems(dev_class: str, capabilities: Iterable[str] = (), kpis: Mapping[str, Any] | None = None,
                    options: Mapping[str, Any] | None = None, plugin: str | None = None,
                    queues: int | None = None,
                    catalog: Mapping[str, tuple[str, tuple[str, ...]]] | None = None) -> list[str]:
    """Every problem of one device, each a phrase that says what is wrong and what is expected."""
    if dev_class not in CLASSES:
        return [f"unknown device class {dev_class!r}; expected one of: {', '.join(CLASSES)}"]
    out: list[str] = []
    caps = list(capabilities)
    mine = of_class(dev_class)
    for cap in caps:
        if cap in mine:
            continue
        if cap in CAPABILITIES:
            out.append(f"capability {cap!r} is a {CAPABILITIES[cap].dev_class} capability, not a {dev_class} one; "
                       f"{dev_class} capabilities: {', '.join(mine)}")
        else:
            out.append(f"unknown capability {cap!r}{_suggest(cap, mine)}; {dev_class} capabilities: "
                       f"{', '.join(mine)}")
    if len(set(caps)) != len(caps):
        out.append(f"a capability is listed twice: {', '.join(caps)}")
    applicable = kpis_of_class(dev_class)
    for key, value in (kpis or {}).items():
        of, name = split_kpi_key(key, None)
        if of is not None and of not in caps:
            out.append(f"KPI {key!r}: {of!r} is not a capability this device asks for ({', '.join(caps) or 'none'})")
            continue
        if name not in KPIS:
            out.append(f"unknown KPI {name!r}{_suggest(name, KPIS)}; {dev_class} KPIs: {', '.join(applicable)}")
        elif name not in applicable:
            out.append(f"KPI {name!r} does not apply to {dev_class} devices; {dev_class} KPIs: "
                       f"{', '.join(applicable)}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            out.append(f"KPI {key} = {value!r} is not a non-negative number")
    ranges = RANGES[dev_class]
    channels = queues // 2 if queues and dev_class == PACKET else None
    for key, value in (options or {}).items():
        chan = link_channel(key) if dev_class == PACKET else None
        if chan is not None:
            try:
                parse_link(str(value))
            except errors.ValueError as e:
                out.append(f"option {key}: {e}")
            if channels is not None and chan >= channels:
                out.append(f"option {key}: the device has {channels} channel{'s' if channels != 1 else ''} "
                           f"(0..{channels - 1}); link.N names channel N")
            continue
        if key not in ranges:
            known = option_names(dev_class)
            out.append(f"unknown {dev_class} option {key!r}{_suggest(key, known)}; {dev_class} options: "
                       f"{', '.join(known) or 'none'}")
            continue
        lo, hi, what = ranges[key]
        n = _int(value)
        if n is None or not lo <= n <= hi:
            out.append(f"option {key} = {value!r}: expected {lo}..{hi} ({what})")
    if plugin is not None:
        out += plugin_problems(dev_class, plugin, caps, catalog)
    return out


def check_device(where: str, dev_class: str, capabilities: Iterable[str] = (), kpis: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None, plugin: str | None = None, queues: int | None = None,
                 catalog: Mapping[str, tuple[str, tuple[str, ...]]] | None = None) -> None:
    """device_problems(), raised: ``errors.ValueError("WHERE: problem; problem")``."""
    problems = device_problems(dev_class, capabilities, kpis, options, plugin, queues, catalog)
    if problems:
        raise errors.ValueError(f"{where}: " + "; ".join(problems))


def check_links(devices: Iterable[Mapping[str, Any]], where: str = "devices") -> None:
    """Rules across one domain's devices (dicts in virt-synthd's ``domain.create`` form): a wire to
    a device of the same domain ends on a packet device's existing channel, and no channel has two
    links (a wire named from both ends is one link). A peer outside the domain is another VM's
    device: the daemon links the two when both run."""
    devs = list(devices)
    by_name = {str(d.get("name")): d for d in devs}
    used: dict[tuple[str, int], tuple[object, str]] = {}

    def claim(end: tuple[str, int], link: object, what: str) -> None:
        if end in used and used[end][0] != link:
            raise errors.ValueError(f"{where}: {end[0]} channel {end[1]} is linked twice ({used[end][1]} and {what})")
        used[end] = (link, what)

    for d in devs:
        if d.get("class") != PACKET:
            continue
        name = str(d.get("name"))
        for key, value in (d.get("options") or {}).items():
            chan = link_channel(key)
            if chan is None:
                continue
            what = f"{name} {key}={value}"
            try:
                kind, target, pchan = parse_link(str(value))
            except errors.ValueError as e:
                raise errors.ValueError(f"{where}: {what}: {e}") from None
            if kind == "tap":
                claim((name, chan), ("tap", target), what)
                continue
            if target not in by_name and f"{target}.{pchan}" in by_name:
                target, pchan = f"{target}.{pchan}", 0  # a device name with a dot in it
            peer = by_name.get(target)
            if peer is not None:
                if peer.get("class") != PACKET:
                    raise errors.ValueError(f"{where}: {what}: {target} is a {peer.get('class')} device, not a "
                                            "packet device")
                pq = _int(peer.get("queues"))
                if pq is not None and pchan >= pq // 2:
                    raise errors.ValueError(f"{where}: {what}: {target} has no channel {pchan} (it has {pq // 2})")
            wire = ("wire", tuple(sorted([(name, chan), (target, pchan)])))
            claim((name, chan), wire, what)
            claim((target, pchan), wire, what)
