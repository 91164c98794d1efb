# SPDX-License-Identifier: Apache-2.0
"""One class per element the generator writes or reads, doing only object <-> XML
(``format_dom`` / ``parse_dom``). No policy here: names, sizes and defaults are the designer's.

The metadata element's names come from ``libvirt_synth.hook.metadata``, the standard-library reader
that the hook uses, so writer and reader cannot disagree on them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lxml import etree

from libvirt_synth import errors
from libvirt_synth.hook import metadata
from libvirt_synth.xml.validate import Problem, XmlError

MiB = 1 << 20

# libvirt's scaled-integer units (docs/formatdomain: "memory allocation"), for sizes we read.
UNITS = {
    "b": 1, "bytes": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 10**3,
    "m": 1 << 20, "mib": 1 << 20, "mb": 10**6,
    "g": 1 << 30, "gib": 1 << 30, "gb": 10**9,
    "t": 1 << 40, "tib": 1 << 40, "tb": 10**12,
}


def _fail(el: Any, reason: str) -> XmlError:
    return XmlError("<domain XML>", [Problem(getattr(el, "sourceline", None), reason)])


def format_number(value: int | float | str) -> str:
    """A KPI value as written in the metadata (12.0 -> "12"; metadata.parse_number reads it back)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class ShmemConfig:
    """``<shmem name=.. role=..><model type=../><size unit='M'>N</size>...</shmem>``. Children
    other than model and size (libvirt's ``<address>``, ``<alias>``, ...) are kept in ``extra``."""

    TAG: ClassVar[str] = "shmem"
    MODEL_IVSHMEM = "ivshmem"
    MODEL_IVSHMEM_PLAIN = "ivshmem-plain"
    MODEL_IVSHMEM_DOORBELL = "ivshmem-doorbell"
    MODELS = (MODEL_IVSHMEM, MODEL_IVSHMEM_PLAIN, MODEL_IVSHMEM_DOORBELL)
    ROLE_MASTER = "master"
    ROLE_PEER = "peer"
    ROLES = (ROLE_MASTER, ROLE_PEER)
    SIZE_UNIT = "M"

    def __init__(self, name: str, role: str | None = None, model: str | None = None, size: int | None = None,
                 extra: list[Any] | None = None) -> None:
        self.name = name
        self.role = role
        self.model = model
        self.size = size  # bytes
        self.extra = list(extra or [])

    def format_dom(self) -> Any:
        el = etree.Element(self.TAG, name=self.name)
        if self.role is not None:
            el.set("role", self.role)
        if self.model is not None:
            etree.SubElement(el, "model", type=self.model)
        if self.size is not None:
            if self.size % MiB:
                raise errors.ValueError(f"shmem {self.name}: size {self.size} is not a whole number of MiB")
            etree.SubElement(el, "size", unit=self.SIZE_UNIT).text = str(self.size // MiB)
        for child in self.extra:
            el.append(copy.deepcopy(child))
        return el

    @classmethod
    def parse_dom(cls, el: Any) -> ShmemConfig:
        name = el.get("name")
        if not name:
            raise _fail(el, "<shmem> without a name")
        obj = cls(name, role=el.get("role"))
        for child in el:
            if child.tag == "model":
                obj.model = child.get("type")
            elif child.tag == "size":
                obj.size = cls.parse_size(child)
            elif isinstance(child.tag, str):
                obj.extra.append(child)
        return obj

    @staticmethod
    def parse_size(el: Any) -> int:
        unit = (el.get("unit") or "b").lower()
        if unit not in UNITS:
            raise _fail(el, f"<size unit={unit!r}>: unknown unit")
        try:
            return int((el.text or "").strip()) * UNITS[unit]
        except ValueError:
            raise _fail(el, f"<size>{el.text}</size> is not an integer") from None


@dataclass
class SynthDeviceConfig:
    """``<synth:device name class size queues ring-entries [plugin]>`` with its capabilities,
    KPIs and class-specific options."""

    TAG: ClassVar[str] = metadata.DEVICE_TAG
    CLASSES: ClassVar[tuple[str, ...]] = metadata.CLASSES

    name: str
    dev_class: str
    size: int
    queues: int
    ring_entries: int
    plugin: str | None = None
    capabilities: list[str] = field(default_factory=list)
    kpis: dict[str, int | float | str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    def format_dom(self) -> Any:
        q = metadata.qname
        el = etree.Element(q(self.TAG), nsmap={metadata.PREFIX: metadata.NAMESPACE})
        el.set("name", self.name)
        el.set("class", self.dev_class)
        el.set("size", str(self.size))
        el.set("queues", str(self.queues))
        el.set("ring-entries", str(self.ring_entries))
        if self.plugin:
            el.set("plugin", self.plugin)
        for cap in self.capabilities:
            etree.SubElement(el, q(metadata.CAPABILITY_TAG)).text = cap
        for k, v in self.kpis.items():
            etree.SubElement(el, q(metadata.KPI_TAG), name=k, value=format_number(v))
        for k, s in self.options.items():
            etree.SubElement(el, q(metadata.OPTION_TAG), name=k, value=s)
        return el

    @classmethod
    def parse_dom(cls, el: Any) -> SynthDeviceConfig:
        # The hook's reader is the reference: what it accepts is what we accept.
        from xml.etree import ElementTree as ET

        try:
            d = metadata.parse_device(ET.fromstring(etree.tostring(el)), f"<{metadata.PREFIX}:{cls.TAG}>")
        except ValueError as e:
            raise _fail(el, str(e)) from None
        return cls(name=d["name"], dev_class=d["class"], size=d["size"], queues=d["queues"],
                   ring_entries=d["ring_entries"], plugin=d.get("plugin"), capabilities=d["capabilities"],
                   kpis=d["kpis"], options=d["options"])

    def as_dict(self) -> dict[str, Any]:
        """The device as virt-synthd's ``domain.create`` takes it (and metadata.parse_devices returns)."""
        d: dict[str, Any] = {"name": self.name, "class": self.dev_class, "size": self.size, "queues": self.queues,
                             "ring_entries": self.ring_entries}
        if self.plugin:
            d["plugin"] = self.plugin
        d |= {"capabilities": list(self.capabilities), "kpis": dict(self.kpis), "options": dict(self.options)}
        return d


@dataclass
class SynthDevicesConfig:
    """``<synth:devices xmlns:synth=...>``: the project's element in ``<metadata>``."""

    TAG: ClassVar[str] = metadata.DEVICES_TAG

    devices: list[SynthDeviceConfig] = field(default_factory=list)
    uid: int | None = None  # the domain's own QEMU uid (its <seclabel model='dac'>), if it has one

    def format_dom(self) -> Any:
        el = etree.Element(metadata.qname(self.TAG), nsmap={metadata.PREFIX: metadata.NAMESPACE})
        if self.uid is not None:
            el.set(metadata.UID_ATTR, str(self.uid))
        for dev in self.devices:
            el.append(dev.format_dom())
        return el

    @classmethod
    def parse_dom(cls, el: Any) -> SynthDevicesConfig:
        devices = [SynthDeviceConfig.parse_dom(c) for c in el if c.tag == metadata.qname(SynthDeviceConfig.TAG)]
        names = [d.name for d in devices]
        if len(set(names)) != len(names):
            raise _fail(el, f"<{metadata.PREFIX}:{cls.TAG}> names a device twice: {names}")
        try:
            uid = metadata.parse_uid(el.get(metadata.UID_ATTR))
        except ValueError as e:
            raise _fail(el, str(e)) from None
        return cls(devices, uid)

    @staticmethod
    def find(metadata_el: Any) -> Any | None:
        """Our element among a ``<metadata>``'s children, or None."""
        if metadata_el is None:
            return None
        found = [c for c in metadata_el if c.tag == metadata.qname(SynthDevicesConfig.TAG)]
        if len(found) > 1:
            raise _fail(found[1], f"<metadata> has {len(found)} <{metadata.PREFIX}:{SynthDevicesConfig.TAG}> "
                        "elements; expected one")
        return found[0] if found else None


@dataclass
class SeclabelConfig:
    """``<seclabel type=.. model=.. relabel=..><label>..</label></seclabel>``: a security label of
    the domain. With model='dac' and type='static', QEMU runs as the label's ``+UID:GROUP``."""

    TAG: ClassVar[str] = "seclabel"
    TYPE_STATIC = "static"
    MODEL_DAC = "dac"

    type: str
    model: str | None = None
    relabel: str | None = None
    label: str | None = None

    def format_dom(self) -> Any:
        el = etree.Element(self.TAG, type=self.type)
        if self.model is not None:
            el.set("model", self.model)
        if self.relabel is not None:
            el.set("relabel", self.relabel)
        if self.label is not None:
            etree.SubElement(el, "label").text = self.label
        return el

    @classmethod
    def parse_dom(cls, el: Any) -> SeclabelConfig:
        return cls(type=el.get("type", ""), model=el.get("model"), relabel=el.get("relabel"),
                   label=el.findtext("label"))

    @property
    def dac_uid(self) -> int | None:
        """The uid of a static DAC label written ``+UID:...``, else None."""
        if self.model != self.MODEL_DAC or self.type != self.TYPE_STATIC or not self.label:
            return None
        user = self.label.partition(":")[0]
        return int(user[1:]) if user.startswith("+") and user[1:].isdigit() else None
