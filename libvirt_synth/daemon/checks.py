# SPDX-License-Identifier: Apache-2.0
"""What a domain's devices must be before the daemon takes them (domain.create, migration.expect),
and the wiping of host-only files."""

from __future__ import annotations

import os
import re
from typing import Any

from libvirt_synth import capabilities, defaults, errors
from libvirt_synth.abi import DevClass
from libvirt_synth.host.device import DEFAULT_QUEUES, DEFAULT_REGION_SIZE, DEFAULT_RING_ENTRIES

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _count(raw: dict[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.ValueError(f"{where}.{key}: expected a whole number >= 0, got {value!r}")
    return value


def wipe_file(path: str) -> None:
    """Overwrite a host-only file (a vault: keys) with zeros, then remove it; nothing if absent."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    try:
        os.pwrite(fd, bytes(os.fstat(fd).st_size), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.unlink(path)


def parse_device(raw: Any, where: str, catalog: dict[str, tuple[str, tuple[str, ...]]] | None = None) -> dict[str, Any]:
    """Check one device entry of a domain.create call against the vocabulary and, if given, the
    host's plugin catalog; returns it normalised."""
    if not isinstance(raw, dict):
        raise errors.ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise errors.ValueError(f"{where}.name: {name!r} is not a valid region name (letters, digits, '.', "
                                "'_', '-'; at most 31 characters)")
    try:
        cls = DevClass.parse(str(raw.get("class", "")))
    except ValueError as e:
        raise errors.ValueError(f"{where}.class: {e}") from None
    spec = {k: raw[k] for k in ("capabilities", "kpis", "options") if k in raw}
    for key, kind in (("capabilities", list), ("kpis", dict), ("options", dict)):
        if not isinstance(spec.get(key, kind()), kind):
            raise errors.ValueError(f"{where}.{key}: expected {'a list' if kind is list else 'an object'}")
    plugin = raw.get("plugin")
    if plugin is not None and not isinstance(plugin, str):
        raise errors.ValueError(f"{where}.plugin: expected a plugin name, got {plugin!r}")
    quotas = raw.get("quotas", {})
    if not isinstance(quotas, dict):
        raise errors.ValueError(f"{where}.quotas: expected an object")
    queues = _count(raw, "queues", defaults.PACKET_QUEUES if cls == DevClass.PACKET else DEFAULT_QUEUES, where)
    capabilities.check_device(f"device {name}", cls.name.lower(), spec.get("capabilities", []), spec.get("kpis"),
                              spec.get("options"), plugin, queues, catalog)
    return {
        "name": name,
        "class": cls.name.lower(),
        "size": _count(raw, "size", DEFAULT_REGION_SIZE, where),
        "queues": queues,
        "ring_entries": _count(raw, "ring_entries", DEFAULT_RING_ENTRIES, where),
        "plugin": plugin,
        "max_sessions": _count(raw, "max_sessions", 0, where),  # crypto sessions (0: CRYPTO_SESSIONS)
        "quotas": dict(quotas),
        "spec": spec,
    }


def write_private(path: str, data: bytes) -> None:
    """Write a host-only file (mode 0600) whole, or not at all."""
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
