# SPDX-License-Identifier: Apache-2.0
"""The project's element in a domain's ``<metadata>``: what each synthetic device of the domain is.

This is the contract between the XML generator (``libvirt_synth.xml``, which writes it with lxml)
and the libvirt hook (which reads only this to ask virt-synthd for the devices). It is read here
with the standard library alone, so that the hook imports it in a few milliseconds::

    <metadata>
      <synth:devices xmlns:synth="https://libvirt-synth.org/xmlns/domain/1">
        <synth:device name="synth-5a1b6c3e0d2f-0" class="crypto" size="4194304" queues="1"
                      ring-entries="256" plugin="openssl">
          <synth:capability>aes-256-gcm</synth:capability>
          <synth:kpi name="throughput_gbps" value="12"/>
          <synth:option name="link" value="wire:peer"/>
        </synth:device>
      </synth:devices>
    </metadata>

``name`` is the region name, also the ``<shmem name>`` of the device; ``size`` is in bytes.
"""

from __future__ import annotations

import pyexpat

from libvirt_synth import capabilities, errors

TYPE_CHECKING = False  # typing costs milliseconds to import; the hook imports this module
if TYPE_CHECKING:
    import xml.etree.ElementTree as ET
    from typing import Any

#: The namespace of the element; the trailing number is the format's version.
NAMESPACE = "https://libvirt-synth.org/xmlns/domain/1"
NAMESPACE_BASE = "https://libvirt-synth.org/xmlns/domain/"
PREFIX = "synth"

DEVICES_TAG = "devices"
UID_ATTR = "uid"  # of <synth:devices>: the domain's own QEMU uid, which its regions must belong to
DEVICE_TAG = "device"
CAPABILITY_TAG = "capability"
KPI_TAG = "kpi"
OPTION_TAG = "option"

#: The device classes the metadata may name (``class`` attribute).
CLASS_CRYPTO = capabilities.CRYPTO
CLASS_COMPRESS = capabilities.COMPRESS
CLASS_PACKET = capabilities.PACKET
CLASSES = capabilities.CLASSES


def qname(tag: str) -> str:
    """``devices`` -> ``{https://libvirt-synth.org/xmlns/domain/1}devices`` (ElementTree and lxml)."""
    return f"{{{NAMESPACE}}}{tag}"


def parse_number(text: str) -> int | float | str:
    """A KPI value as written in the metadata: an int or a float when it is one, else the text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_uid(text: str | None) -> int | None:
    """The ``uid`` attribute of ``<synth:devices>`` (absent: None)."""
    if text is None:
        return None
    if not text.isdigit() or not 0 < int(text) < 2**32 - 1:
        raise errors.ValueError(f"<{PREFIX}:{DEVICES_TAG}> uid={text!r} is not a uid")
    return int(text)


def _int_attr(el: ET.Element, attr: str, where: str) -> int:
    text = el.get(attr)
    if text is None:
        raise errors.ValueError(f"{where}: attribute {attr!r} is missing")
    try:
        value = int(text)
    except ValueError:
        raise errors.ValueError(f"{where}: attribute {attr}={text!r} is not an integer") from None
    if value <= 0:
        raise errors.ValueError(f"{where}: attribute {attr}={text!r} must be positive")
    return value


def _named(el: ET.Element, where: str) -> tuple[str, str]:
    name, value = el.get("name"), el.get("value")
    if not name or value is None:
        raise errors.ValueError(f"{where}: needs both 'name' and 'value' attributes")
    return name, value


def parse_device(el: ET.Element, where: str) -> dict[str, Any]:
    """One ``<synth:device>`` -> a device dict in virt-synthd's ``domain.create`` format."""
    name = el.get("name")
    if not name:
        raise errors.ValueError(f"{where}: attribute 'name' is missing")
    where = f"{where} {name!r}"
    cls = el.get("class")
    if cls not in CLASSES:
        raise errors.ValueError(f"{where}: class {cls!r} is not one of {', '.join(CLASSES)}")
    dev: dict[str, Any] = {
        "name": name,
        "class": cls,
        "size": _int_attr(el, "size", where),
        "queues": _int_attr(el, "queues", where),
        "ring_entries": _int_attr(el, "ring-entries", where),
    }
    if el.get("plugin"):
        dev["plugin"] = el.get("plugin")
    caps: list[str] = []
    kpis: dict[str, Any] = {}
    options: dict[str, str] = {}
    for child in el:
        if child.tag == qname(CAPABILITY_TAG):
            cap = (child.text or "").strip()
            if not cap:
                raise errors.ValueError(f"{where}: empty <{PREFIX}:{CAPABILITY_TAG}>")
            caps.append(cap)
        elif child.tag == qname(KPI_TAG):
            k, v = _named(child, f"{where}: <{PREFIX}:{KPI_TAG}>")
            kpis[k] = parse_number(v)
        elif child.tag == qname(OPTION_TAG):
            k, v = _named(child, f"{where}: <{PREFIX}:{OPTION_TAG}>")
            options[k] = v
        # Anything else is from a later minor revision of the format; the hook ignores it.
    dev["capabilities"] = caps
    dev["kpis"] = kpis
    dev["options"] = options
    return dev


def find_devices_element(metadata: ET.Element | None) -> ET.Element | None:
    """The ``<synth:devices>`` child of a ``<metadata>`` element, or None."""
    if metadata is None:
        return None
    found = [el for el in metadata if isinstance(el.tag, str) and el.tag == qname(DEVICES_TAG)]
    if len(found) > 1:
        raise errors.ValueError(f"<metadata> has {len(found)} <{PREFIX}:{DEVICES_TAG}> elements; expected one")
    for el in metadata:
        if (isinstance(el.tag, str) and el.tag.startswith("{" + NAMESPACE_BASE)
                and not el.tag.startswith("{" + NAMESPACE + "}")):
            raise errors.ValueError(f"<metadata> has {el.tag}, written by a newer libvirt-synth: this one reads "
                                    f"namespace {NAMESPACE}")
    return found[0] if found else None


class _Element:
    """The little of ElementTree's Element that this module reads (tag in Clark notation, get,
    text, children, findtext), built with pyexpat: importing xml.etree costs the hook ~10 ms."""

    __slots__ = ("tag", "attrib", "text", "children")

    def __init__(self, tag: str, attrib: dict[str, str]) -> None:
        self.tag = tag
        self.attrib = attrib
        self.text: str | None = None
        self.children: list[_Element] = []

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrib.get(key, default)

    def __iter__(self) -> Any:
        return iter(self.children)

    def find(self, tag: str) -> _Element | None:
        return next((c for c in self.children if c.tag == tag), None)

    def findtext(self, tag: str) -> str | None:
        el = self.find(tag)
        return None if el is None else (el.text or "")


def _fromstring(text: str) -> _Element:
    """Parse a document into _Elements; raises pyexpat.ExpatError."""
    stack: list[_Element] = []
    root: list[_Element] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        el = _Element("{" + name if "}" in name else name, attrs)
        if stack:
            stack[-1].children.append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(name: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        # Only leaf text matters here (<uuid>, <name>, <synth:capability>).
        el = stack[-1]
        el.text = (el.text or "") + data

    p = pyexpat.ParserCreate(namespace_separator="}")
    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = chars
    p.Parse(text, True)
    return root[0]


def parse_devices(domain_xml: str, check: bool = True) -> tuple[str, str, list[dict[str, Any]]]:
    """A domain's XML -> (uuid, name, [device dicts as virt-synthd's ``domain.create`` takes them]).

    A domain without the project's metadata has no synthetic devices: the list is empty. With
    ``check``, each device is also checked against the vocabulary (``capabilities.check_device``,
    ``check_links``): what the XML generator would refuse, the hook refuses too.
    Raises ``libvirt_synth.errors.ValueError`` (also a builtin ValueError) on malformed input."""
    d = parse_domain(domain_xml, check)
    return d["uuid"], d["name"], d["devices"]


def parse_domain(domain_xml: str, check: bool = True) -> dict[str, Any]:
    """As parse_devices, as a dict: ``uuid``, ``name``, ``devices`` and ``uid`` (the domain's own
    QEMU uid, which its regions must belong to; None: the daemon's QEMU user)."""
    try:
        root = _fromstring(domain_xml)
    except pyexpat.ExpatError as e:
        raise errors.ValueError(f"domain XML is not well-formed: {e}") from None
    if root.tag != "domain":
        raise errors.ValueError(f"expected a <domain> document, got <{root.tag}>")
    uuid = (root.findtext("uuid") or "").strip()
    name = (root.findtext("name") or "").strip()
    if not uuid or not name:
        raise errors.ValueError("the domain XML has no <uuid> or no <name>")
    devices_el = find_devices_element(root.find("metadata"))  # type: ignore[arg-type]
    if devices_el is None:
        return {"uuid": uuid, "name": name, "devices": [], "uid": None}
    devices = [parse_device(el, f"<{PREFIX}:{DEVICE_TAG}> #{i}")
               for i, el in enumerate(d for d in devices_el if d.tag == qname(DEVICE_TAG))]
    names = [d["name"] for d in devices]
    if len(set(names)) != len(names):
        raise errors.ValueError(f"<{PREFIX}:{DEVICES_TAG}> names a device twice: {names}")
    if check:
        for d in devices:
            capabilities.check_device(f"device {d['name']}", d["class"], d["capabilities"], d["kpis"], d["options"],
                                      d.get("plugin"), d["queues"])
        capabilities.check_links(devices, f"<{PREFIX}:{DEVICES_TAG}>")
    return {"uuid": uuid, "name": name, "devices": devices, "uid": parse_uid(devices_el.get(UID_ATTR))}
