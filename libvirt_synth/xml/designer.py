# SPDX-License-Identifier: Apache-2.0
"""Policy: which ``<shmem>`` elements and which metadata a domain gets for a list of device specs.

- Region names are ``synth-<first 12 hex digits of the domain uuid>-<index>``: unique per host,
  valid virt-synthd names (at most 31 characters), and stable: a device keeps its name while the
  list keeps it. A spec that matches a device the metadata already has (first exactly, then by
  class, in order) takes over its name; a new device gets an index above every index in use, so a
  name just removed is not handed to a different device in the same edit.
- Sizes: 4 MiB unless the spec says otherwise; a power of two from 1 MiB (libvirt sizes shmem in
  MiB) to 1 GiB. Queues: 1 (packet: 2, one channel); ring entries: 256.
- Our ``<shmem>`` elements are those whose name the metadata lists; they are updated in place
  (keeping libvirt's ``<address>``) and removed with their device. Every other element is left
  as it was.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree

from libvirt_synth import capabilities, defaults, errors
from libvirt_synth.hook import metadata
from libvirt_synth.xml import tree as xtree
from libvirt_synth.xml import validate
from libvirt_synth.xml.config import MiB, SeclabelConfig, ShmemConfig, SynthDeviceConfig, SynthDevicesConfig
from libvirt_synth.xml.spec import DeviceSpec

NAME_PREFIX = "synth"
UUID_DIGITS = 12
DEFAULT_SIZE = defaults.REGION_SIZE
MIN_SIZE = 1 * MiB
MAX_SIZE = 1024 * MiB
DEFAULT_QUEUES = defaults.QUEUES
DEFAULT_PACKET_QUEUES = defaults.PACKET_QUEUES
MAX_QUEUES = defaults.MAX_QUEUES
DEFAULT_RING_ENTRIES = defaults.RING_ENTRIES
MIN_RING_ENTRIES, MAX_RING_ENTRIES = defaults.MIN_RING_ENTRIES, defaults.MAX_RING_ENTRIES
# Children of <shmem> that only the ivshmem-doorbell model has; dropped from our plain regions.
DOORBELL_ONLY = ("server", "msi")
# <metadata> goes after these, as libvirt writes it.
METADATA_AFTER = ("name", "uuid", "genid", "title", "description")

ADDED, UPDATED, KEPT = "added", "updated", "kept"


@dataclass(frozen=True)
class Isolation:
    """Each domain's QEMU runs as a uid of its own (a static DAC <seclabel>), and its regions
    belong to that uid, mode 0600: a compromised QEMU cannot open another VM's region. The group
    stays libvirt's QEMU group, which libvirt's own directories need (/var/lib/libvirt/qemu is
    0750 for it); 0600 regions give the group nothing. ``taken``: uids other domains have."""

    uids: tuple[int, int] = defaults.ISOLATION_UIDS
    group: str = defaults.ISOLATION_GROUP
    taken: frozenset[int] = frozenset()

    def allocate(self, domain_uuid: str, current: int | None) -> int:
        """The domain's uid: the one it has if it is in the range and nobody else's, else the first
        free one from a point the uuid picks (so that domains defined offline rarely collide)."""
        first, last = self.uids
        if current is not None and first <= current <= last and current not in self.taken:
            return current
        size = last - first + 1
        start = uuidlib.UUID(domain_uuid).int % size
        for i in range(size):
            uid = first + (start + i) % size
            if uid not in self.taken:
                return uid
        raise errors.ValueError(f"no free uid left in {first}-{last} ([isolation] uids): every one is a "
                                "domain's; widen the range")

    def label(self, uid: int) -> str:
        return f"+{uid}:{self.group}"


def isolation_for(mode: str, mac_models: Collection[str], uids: tuple[int, int] = defaults.ISOLATION_UIDS,
                  group: str = defaults.ISOLATION_GROUP, taken: Collection[int] = ()) -> Isolation | None:
    """The policy: ``dac`` always, ``none`` never, ``auto`` unless the host confines QEMU with a
    MAC model already (its secmodels, as libvirt's capabilities list them)."""
    if mode not in defaults.ISOLATION_MODES:
        raise errors.ValueError(f"isolation {mode!r}: expected one of {', '.join(defaults.ISOLATION_MODES)}")
    if mode == "none" or (mode == "auto" and set(mac_models) & set(defaults.MAC_MODELS)):
        return None
    return Isolation(uids, group, frozenset(taken))


def region_prefix(domain_uuid: str) -> str:
    return f"{NAME_PREFIX}-{uuidlib.UUID(domain_uuid).hex[:UUID_DIGITS]}-"


def _index(name: str, prefix: str) -> int | None:
    tail = name[len(prefix):] if name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def fill_defaults(spec: DeviceSpec) -> SynthDeviceConfig:
    """A spec -> the device it asks for, every default filled and every limit checked; no name yet."""
    where = spec.where or f"{spec.dev_class} device"
    size = DEFAULT_SIZE if spec.size is None else spec.size
    if not _power_of_two(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise errors.ValueError(f"{where}: size {size} bytes must be a power of two from 1M to 1G "
                                "(libvirt sizes shmem regions in MiB): e.g. 1M, 2M, 4M, 8M")
    packet = spec.dev_class == metadata.CLASS_PACKET
    queues = spec.queues or (DEFAULT_PACKET_QUEUES if packet else DEFAULT_QUEUES)
    if not 1 <= queues <= MAX_QUEUES:
        raise errors.ValueError(f"{where}: queues must be 1..{MAX_QUEUES}, got {queues}")
    if packet and queues % 2:
        raise errors.ValueError(f"{where}: a packet device has an even number of queues (a channel is a TX and "
                                f"an RX queue), got {queues}; or give channels")
    ring = spec.ring_entries or DEFAULT_RING_ENTRIES
    if not _power_of_two(ring) or not MIN_RING_ENTRIES <= ring <= MAX_RING_ENTRIES:
        raise errors.ValueError(f"{where}: ring entries must be a power of two in {MIN_RING_ENTRIES}.."
                                f"{MAX_RING_ENTRIES}, got {ring}")
    capabilities.check_device(where, spec.dev_class, spec.capabilities, spec.kpis, spec.options, spec.plugin,
                              queues)
    return SynthDeviceConfig(name="", dev_class=spec.dev_class, size=size, queues=queues, ring_entries=ring,
                             plugin=spec.plugin, capabilities=list(spec.capabilities), kpis=dict(spec.kpis),
                             options=dict(spec.options))


def _same_device(old: SynthDeviceConfig, wanted: SynthDeviceConfig) -> bool:
    return replace(old, name="") == wanted


def _same_class(old: SynthDeviceConfig, wanted: SynthDeviceConfig) -> bool:
    return old.dev_class == wanted.dev_class


@dataclass
class Plan:
    devices: list[SynthDeviceConfig]
    status: dict[str, str]  # name -> added | updated | kept
    removed: list[str]


def plan(specs: Sequence[DeviceSpec], domain_uuid: str, old: Sequence[SynthDeviceConfig],
         foreign: Collection[str] = ()) -> Plan:
    """Name every device of ``specs``, reusing the names of ``old`` (the metadata's devices) where
    a spec matches one. ``foreign`` are shmem names the metadata does not list (the user's own)."""
    wanted = [fill_defaults(s) for s in specs]
    names: list[str | None] = [None] * len(specs)
    old_by_name = {d.name: d for d in old}
    taken: set[str] = set()
    for i, s in enumerate(specs):
        if s.name is None:
            continue
        if s.name in foreign:
            raise errors.ValueError(f"{s.where}: name {s.name!r} is already the name of a <shmem> that is not a "
                                    "synthetic device of this domain")
        if s.name in taken:
            raise errors.ValueError(f"{s.where}: name {s.name!r} is given to two devices")
        names[i] = s.name
        taken.add(s.name)
    # The same device as before keeps its name; then a changed device of the same class does.
    for same in (_same_device, _same_class):
        for i, w in enumerate(wanted):
            if names[i] is not None:
                continue
            for o in old:
                if o.name not in taken and same(o, w):
                    names[i] = o.name
                    taken.add(o.name)
                    break
    prefix = region_prefix(domain_uuid)
    in_use = [_index(n, prefix) for n in [*old_by_name, *foreign, *taken]]
    next_index = max((i for i in in_use if i is not None), default=-1) + 1
    devices, status = [], {}
    for i, w in enumerate(wanted):
        name = names[i]
        if name is None:
            name = f"{prefix}{next_index}"
            next_index += 1
        dev = replace(w, name=name)
        devices.append(dev)
        prev = old_by_name.get(name)
        status[name] = ADDED if prev is None else KEPT if prev == dev else UPDATED
    capabilities.check_links([d.as_dict() for d in devices], "devices")
    return Plan(devices, status, [n for n in old_by_name if n not in status])


@dataclass
class Result:
    """What inject() produced: the new XML and what changed."""

    xml: str
    uuid: str
    name: str
    devices: list[SynthDeviceConfig]
    status: dict[str, str]
    removed: list[str]
    uuid_generated: bool = False
    notes: list[str] = field(default_factory=list)
    uid: int | None = None  # the domain's own QEMU uid (Isolation), None: none

    @property
    def changed(self) -> bool:
        return self.uuid_generated or bool(self.removed) or any(s != KEPT for s in self.status.values())

    def as_dict(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "name": self.name, "uuid_generated": self.uuid_generated, "uid": self.uid,
                "devices": [d.as_dict() | {"status": self.status[d.name]} for d in self.devices],
                "removed": self.removed}


def _ensure_uuid(root: Any, unit: str | None) -> tuple[str, bool]:
    el = root.find("uuid")
    if el is not None and (el.text or "").strip():
        text = el.text.strip()
        try:
            return str(uuidlib.UUID(text)), False
        except ValueError:
            raise validate.XmlError("<domain XML>", [validate.Problem(el.sourceline, f"<uuid>{text}</uuid> is not "
                                                                      "a UUID")]) from None
    new = str(uuidlib.uuid4())
    if el is None:
        el = etree.Element("uuid")
        xtree.insert(root, root.index(root.find("name")) + 1, el, unit)
    el.text = new
    return new, True


def _metadata(root: Any, unit: str | None) -> Any:
    md = root.find("metadata")
    if md is None:
        md = etree.Element("metadata")
        after = [c for c in root if c.tag in METADATA_AFTER]
        xtree.insert(root, root.index(after[-1]) + 1 if after else 0, md, unit)
    return md


def _apply_shmem(root: Any, devices: list[SynthDeviceConfig], removed: list[str], unit: str | None) -> None:
    devs_el = root.find("devices")
    if devs_el is None:
        if not devices:
            return
        devs_el = etree.Element("devices")
        xtree.append(root, devs_el, unit)
    by_name = {s.get("name"): s for s in devs_el.findall(ShmemConfig.TAG)}
    for name in removed:
        if name in by_name:
            xtree.remove(by_name.pop(name))
    if removed and not devices and len(devs_el) == 0:
        xtree.remove(devs_el)  # it held only our devices
        return
    for dev in devices:
        existing = by_name.get(dev.name)
        if existing is not None:
            cfg = ShmemConfig.parse_dom(existing)
            cfg.extra = [c for c in cfg.extra if c.tag not in DOORBELL_ONLY]
        else:
            cfg = ShmemConfig(dev.name)
        cfg.role, cfg.model, cfg.size = ShmemConfig.ROLE_MASTER, ShmemConfig.MODEL_IVSHMEM_PLAIN, dev.size
        el = cfg.format_dom()
        if existing is not None:
            xtree.replace(existing, el, unit)
        else:
            shmems = devs_el.findall(ShmemConfig.TAG)
            xtree.insert(devs_el, devs_el.index(shmems[-1]) + 1 if shmems else len(devs_el), el, unit)
        by_name[dev.name] = el


def as_spec(dev: SynthDeviceConfig) -> DeviceSpec:
    """A device the metadata already has, as the spec that keeps it as it is."""
    return DeviceSpec(dev_class=dev.dev_class, name=dev.name, size=dev.size, queues=dev.queues,
                      ring_entries=dev.ring_entries, plugin=dev.plugin, capabilities=list(dev.capabilities),
                      kpis=dict(dev.kpis), options=dict(dev.options), where=f"device {dev.name}")  # type: ignore[arg-type]


def _apply_seclabel(root: Any, ours: int | None, uid: int | None, isolation: Isolation | None,
                    unit: str | None) -> None:
    """Give the domain our static DAC label for ``uid`` (None: take ours away). A DAC label that is
    not ours (the metadata does not name its uid) is the user's: it is never touched."""
    labels = [(el, SeclabelConfig.parse_dom(el)) for el in root.findall(SeclabelConfig.TAG)]
    dac = [(el, c) for el, c in labels if c.model == SeclabelConfig.MODEL_DAC]
    mine = [el for el, c in dac if ours is not None and c.dac_uid == ours]
    if len(dac) > len(mine) and uid is not None:
        el = next(e for e, c in dac if e not in mine)
        raise validate.XmlError("<domain XML>", [validate.Problem(el.sourceline, (
            "the domain has a <seclabel model='dac'> of its own: its QEMU identity is the user's. Give "
            "--isolation none to keep it (its regions then belong to virt-synthd's qemu_user), or remove it"))])
    for el in mine:
        if uid is None:
            xtree.remove(el)
    if uid is None or isolation is None:
        return
    new = SeclabelConfig(SeclabelConfig.TYPE_STATIC, SeclabelConfig.MODEL_DAC, "yes", isolation.label(uid)).format_dom()
    if mine:
        xtree.replace(mine[0], new, unit)
    else:
        xtree.append(root, new, unit)


def inject(data: str | bytes, specs: Sequence[DeviceSpec] | None, source: str = "<domain XML>",
           check: bool = True, isolation: Isolation | None = None) -> Result:
    """Give the domain in ``data`` exactly the synthetic devices of ``specs`` (None: keep those it
    has): one ``<shmem role='master'>`` each and the project's ``<metadata>`` element. Injecting
    the same specs again gives the same XML. With ``isolation``, a domain with devices gets a QEMU
    uid of its own (kept once it has one); without, a uid we gave it is taken away. The input and
    the output are both checked against libvirt's schema (``check``); errors name the line and
    the reason."""
    raw = data.encode() if isinstance(data, str) else data
    doc = validate.parse(raw, source)
    if check:
        validate.check_domain(doc, source)
    root = doc.getroot()
    unit = xtree.indent_unit(doc)
    try:
        domain_uuid, generated = _ensure_uuid(root, unit)
        md = root.find("metadata")
        ours = SynthDevicesConfig.find(md)
        prev = SynthDevicesConfig.parse_dom(ours) if ours is not None else SynthDevicesConfig()
        old = prev.devices
    except validate.XmlError as e:
        raise validate.XmlError(source, e.problems) from None
    devs_el = root.find("devices")
    shmem_names = {s.get("name") for s in devs_el.findall(ShmemConfig.TAG)} if devs_el is not None else set()
    if specs is None:
        specs = [as_spec(d) for d in old]
    p = plan(specs, domain_uuid, old, foreign=shmem_names - {d.name for d in old})
    uid = isolation.allocate(domain_uuid, prev.uid) if isolation is not None and p.devices else None
    try:
        _apply_seclabel(root, prev.uid, uid, isolation, unit)
    except validate.XmlError as e:
        raise validate.XmlError(source, e.problems) from None
    if p.devices:
        new = SynthDevicesConfig(p.devices, uid).format_dom()
        if ours is not None:
            xtree.replace(ours, new, unit)
        else:
            xtree.append(_metadata(root, unit), new, unit)
    elif ours is not None:
        xtree.remove(ours)
        if md is not None and len(md) == 0:
            xtree.remove(md)
    _apply_shmem(root, p.devices, p.removed, unit)
    text = xtree.serialize(doc, raw)
    if check:
        validate.check_domain(validate.parse(text, "generated XML"), "generated XML")
    name = (root.findtext("name") or "").strip()
    notes = [f"generated uuid {domain_uuid}"] if generated else []
    notes += [f"device {d.name}: plugin {d.plugin!r} is not one this build carries; virt-synthd checks, when the "
              "VM starts, that it has loaded it and that it serves every capability asked"
              for d in p.devices if d.plugin and d.plugin not in capabilities.PLUGINS]
    return Result(text, domain_uuid, name, p.devices, p.status, p.removed, generated, notes, uid)
