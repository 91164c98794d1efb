# SPDX-License-Identifier: Apache-2.0
"""Define, start, read back and undefine domains through libvirt-python, on any URI.

``test:///default`` is libvirt's embedded test driver: it needs no daemon and checks the XML with
libvirt's own parser, but its domains live only as long as the connection (one process).
``qemu:///system`` is the real thing. libvirt is imported only here, and only when used."""

from __future__ import annotations

import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from libvirt_synth import errors
from libvirt_synth.hook import metadata

DEFAULT_URI = "test:///default"


class LibvirtError(errors.SynthError, RuntimeError):
    """libvirt refused a call; the message is libvirt's, with what we were doing."""


def load_libvirt() -> Any:
    """The libvirt module, its errors raised rather than printed; a clear error if it is missing."""
    try:
        import libvirt
    except ImportError:
        raise errors.NotFoundError("libvirt-python is not installed (make setup installs it)") from None
    # libvirt prints every error to stderr by default; we raise them instead.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def open_connection(uri: str = DEFAULT_URI) -> Any:
    lv = load_libvirt()
    try:
        return lv.open(uri)
    except lv.libvirtError as e:
        raise LibvirtError(f"cannot connect to {uri}: {e}") from None


def lookup(conn: Any, name: str) -> Any:
    """A domain by name or uuid."""
    lv = load_libvirt()
    ways = [conn.lookupByName]
    try:
        uuidlib.UUID(name)
        ways.append(conn.lookupByUUIDString)
    except ValueError:
        pass
    for how in ways:
        try:
            return how(name)
        except lv.libvirtError as e:
            if e.get_error_code() != lv.VIR_ERR_NO_DOMAIN:
                raise LibvirtError(f"cannot look up domain {name!r}: {e}") from None
    raise errors.NotFoundError(f"no domain {name!r} on {conn.getURI()}")


def inactive_xml(dom: Any) -> str:
    """The persistent definition, secrets included (so that redefining it loses nothing)."""
    lv = load_libvirt()
    try:
        return str(dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE | lv.VIR_DOMAIN_XML_SECURE))
    except lv.libvirtError as e:
        raise LibvirtError(f"cannot read the definition of {dom.name()}: {e}") from None


@dataclass
class Defined:
    name: str
    uuid: str
    uri: str
    devices: list[str]  # region names, as libvirt kept them
    active: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid, "uri": self.uri, "devices": self.devices,
                "active": self.active}


def define(conn: Any, xml: str, start: bool = False) -> Defined:
    """Define (or redefine) the domain, check that libvirt kept our devices and metadata, and
    start it if asked."""
    lv = load_libvirt()
    _, _, want = metadata.parse_devices(xml)
    try:
        dom = conn.defineXML(xml)
    except lv.libvirtError as e:
        raise LibvirtError(f"libvirt refused the domain: {e}") from None
    stored = inactive_xml(dom)
    _, _, kept = metadata.parse_devices(stored)
    names = [d["name"] for d in kept]
    shmem = {el.get("name") for el in ET.fromstring(stored).iterfind("devices/shmem")}
    missing = [d["name"] for d in want if d["name"] not in names or d["name"] not in shmem]
    if missing:
        raise LibvirtError(f"libvirt defined {dom.name()} but dropped the device(s) {', '.join(missing)} "
                           "(their <shmem> or their metadata)")
    if start:
        try:
            dom.create()
        except lv.libvirtError as e:
            raise LibvirtError(f"defined {dom.name()}, but it did not start: {e}") from None
    return Defined(dom.name(), dom.UUIDString(), conn.getURI(), names, bool(dom.isActive()))


def undefine(conn: Any, name: str, force: bool = False) -> dict[str, Any]:
    """Remove a domain's definition; a running domain is stopped first only with ``force``."""
    lv = load_libvirt()
    dom = lookup(conn, name)
    info = {"name": dom.name(), "uuid": dom.UUIDString(), "uri": conn.getURI(), "destroyed": False}
    try:
        if dom.isActive():
            if not force:
                raise errors.ValueError(f"domain {dom.name()} is running: shut it down first, or pass --force to "
                                        "stop it")
            dom.destroy()
            info["destroyed"] = True
        if dom.isPersistent():
            dom.undefineFlags(lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    except lv.libvirtError as e:
        raise LibvirtError(f"cannot undefine {name}: {e}") from None
    return info


def mac_models(conn: Any | None = None) -> list[str]:
    """The security models that confine QEMU: libvirt's secmodels on ``conn`` (without one: this
    host's kernel, for a domain XML written offline)."""
    if conn is not None:
        caps = ET.fromstring(conn.getCapabilities())
        return [m.text or "" for m in caps.findall("host/secmodel/model")]
    import os

    found = []
    if os.path.exists("/sys/fs/selinux/enforce"):
        found.append("selinux")
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            if f.read().strip() == "Y":
                found.append("apparmor")
    except OSError:
        pass
    return found


def taken_uids(conn: Any, domain_uuid: str | None) -> set[int]:
    """The QEMU uids the other domains defined on ``conn`` have from us (their metadata)."""
    out = set()
    for dom in conn.listAllDomains():
        if domain_uuid is not None and dom.UUIDString() == domain_uuid:
            continue
        try:
            uid = metadata.parse_domain(inactive_xml(dom), check=False)["uid"]
        except errors.SynthError:
            continue  # gone meanwhile, or metadata that is not ours to judge
        if uid is not None:
            out.add(uid)
    return out
