# SPDX-License-Identifier: Apache-2.0
"""PCI accelerators and SR-IOV NICs of a host.

On the real host, devices are enumerated with pyudev (libudev): their attributes, driver and child
network interfaces. libudev accepts only paths under /sys, so a fake sysfs tree (the tests' QAT and
CCP hosts under tests/data/sysfs/) is read directly, file by file, with the same layout:
``ROOT/sys/bus/pci/devices/<address>`` linking to ``ROOT/sys/devices/pci.../<address>``, which holds
``vendor``, ``device``, ``class``, ``numa_node``, ``sriov_totalvfs``, ``sriov_numvfs``, the
``driver``, ``physfn`` and ``virtfnN`` links and ``net/<interface>``. Both readers produce the same
``PciNode``; what a device *is* is decided once, here, from those.

An accelerator is a known device (``KNOWN``: Intel QAT of every generation, AMD CCP, Marvell NITROX,
Intel IAA, HiSilicon ZIP/SEC) or any device of an encryption-controller (0x10), processing-accelerator
(0x12) or co-processor (0x0b40) class. Virtual functions are counted under their physical function.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from libvirt_synth import log


@dataclass(frozen=True)
class Known:
    vendor: str        # "Intel"
    name: str          # "QAT 4xxx"
    family: str        # qat, ccp, nitrox, iaa, hisi-zip, hisi-sec: the OpenStack trait uses it
    generation: str    # "gen4", "v5b", "" when it means nothing
    capabilities: tuple[str, ...]  # what the hardware offers (not what this host's plugins serve)
    vf: bool = False   # a virtual function id


_QAT_SYM = ("aes-128-gcm", "aes-256-gcm", "aes-256-cbc-hmac-sha256", "hmac-sha256")
_QAT_COMP = ("deflate", "zlib", "gzip")
_QAT_GEN4 = (*_QAT_SYM, "chacha20-poly1305", *_QAT_COMP, "lz4")


def _qat(pf: int, vf: int, name: str, gen: str, caps: tuple[str, ...]) -> dict[tuple[int, int], Known]:
    return {(0x8086, pf): Known("Intel", f"QuickAssist {name}", "qat", gen, caps),
            (0x8086, vf): Known("Intel", f"QuickAssist {name} VF", "qat", gen, caps, vf=True)}


#: (vendor id, device id) -> what it is. Ids from the Linux drivers (qat_*, ccp, n5pf, idxd, hisi_*).
KNOWN: dict[tuple[int, int], Known] = {
    **_qat(0x0435, 0x0443, "DH895xCC", "gen1", (*_QAT_SYM, *_QAT_COMP)),
    **_qat(0x37C8, 0x37C9, "C62x", "gen2", (*_QAT_SYM, *_QAT_COMP)),
    **_qat(0x19E2, 0x19E3, "C3xxx", "gen2", (*_QAT_SYM, *_QAT_COMP)),
    **_qat(0x6F54, 0x6F55, "D15xx", "gen2", (*_QAT_SYM, *_QAT_COMP)),
    **_qat(0x18A0, 0x18A1, "C4xxx", "gen3", (*_QAT_SYM, *_QAT_COMP)),
    **_qat(0x4940, 0x4941, "4xxx", "gen4", _QAT_GEN4),
    **_qat(0x4942, 0x4943, "401xx", "gen4", _QAT_GEN4),
    **_qat(0x4944, 0x4945, "402xx", "gen4", _QAT_GEN4),
    **_qat(0x4946, 0x4947, "420xx", "gen4", _QAT_GEN4),
    **{(0x1022, d): Known("AMD", f"Cryptographic Coprocessor {g}", "ccp", g, ("aes-128-gcm", "aes-256-gcm",
                                                                               "hmac-sha256"))
       for d, g in ((0x1537, "v3"), (0x1456, "v5a"), (0x1468, "v5b"), (0x1486, "v5"), (0x15DF, "v5"),
                    (0x1649, "v5"), (0x14CA, "v5"), (0x15C7, "v5"), (0x17E0, "v5"), (0x156E, "v5"))},
    (0x177D, 0x0012): Known("Marvell", "NITROX V CNN55XX", "nitrox", "v", ("aes-128-gcm", "aes-256-gcm",
                                                                          "aes-256-cbc-hmac-sha256")),
    (0x177D, 0x0013): Known("Marvell", "NITROX V CNN55XX VF", "nitrox", "v", ("aes-128-gcm", "aes-256-gcm",
                                                                             "aes-256-cbc-hmac-sha256"), vf=True),
    (0x8086, 0x0CFE): Known("Intel", "In-Memory Analytics Accelerator", "iaa", "", ("deflate",)),
    (0x19E5, 0xA250): Known("HiSilicon", "SEC engine", "hisi-sec", "v2", ("aes-128-gcm", "aes-256-gcm",
                                                                         "hmac-sha256")),
    (0x19E5, 0xA255): Known("HiSilicon", "ZIP engine", "hisi-zip", "v2", ("deflate", "zlib", "gzip")),
}

#: PCI class prefixes (class >> 8 as 4 hex digits, or class >> 16 as 2) that mark accelerators.
ACCEL_CLASSES = {"0b40": "co-processor", "10": "encryption controller", "12": "processing accelerator"}
NET_CLASS = "02"  # network controller


@dataclass
class PciNode:
    """One PCI function as sysfs describes it."""

    address: str
    vendor: int
    device: int
    pci_class: int
    driver: str | None = None
    numa_node: int | None = None
    sriov_totalvfs: int | None = None
    sriov_numvfs: int | None = None
    physfn: str | None = None    # a VF: the address of its PF
    interfaces: list[str] = field(default_factory=list)
    subsystem: tuple[int, int] | None = None


def _int(text: str | None, base: int = 0) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), base)
    except ValueError:
        return None


def _numa(text: str | None) -> int | None:
    n = _int(text, 10)
    return n if n is not None and n >= 0 else None  # -1: no NUMA affinity


def _link_name(path: str) -> str | None:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _net_children(sys_path: str) -> list[str]:
    """Network interfaces of a PCI function: net/<if>, or <child>/net/<if> (virtio-net)."""
    import glob

    return sorted({os.path.basename(p) for pattern in ("net/*", "*/net/*")
                   for p in glob.glob(os.path.join(glob.escape(sys_path), pattern))})


# ---- readers ----

def from_tree(root: str) -> Iterator[PciNode]:
    """Read ROOT/sys/bus/pci/devices/* directly (a fake tree, or the real /sys with root='/')."""
    base = os.path.join(root, "sys/bus/pci/devices")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return

    def attr(d: str, name: str) -> str | None:
        try:
            with open(os.path.join(d, name)) as f:
                return f.read().strip()
        except OSError:
            return None

    for name in names:
        d = os.path.join(base, name)
        vendor, device, cls = _int(attr(d, "vendor"), 16), _int(attr(d, "device"), 16), _int(attr(d, "class"), 16)
        if vendor is None or device is None or cls is None:
            log.debug("pci %s: no vendor/device/class; skipped", d)
            continue
        sv, sd = _int(attr(d, "subsystem_vendor"), 16), _int(attr(d, "subsystem_device"), 16)
        yield PciNode(address=name, vendor=vendor, device=device, pci_class=cls, driver=_link_name(f"{d}/driver"),
                      numa_node=_numa(attr(d, "numa_node")), sriov_totalvfs=_int(attr(d, "sriov_totalvfs"), 10),
                      sriov_numvfs=_int(attr(d, "sriov_numvfs"), 10), physfn=_link_name(f"{d}/physfn"),
                      interfaces=_net_children(d), subsystem=(sv, sd) if sv is not None and sd is not None else None)


def from_udev() -> Iterator[PciNode]:
    """Enumerate the real host's PCI devices through pyudev."""
    import pyudev

    ctx = pyudev.Context()
    for dev in ctx.list_devices(subsystem="pci"):
        a = dev.attributes

        def attr(name: str, a: Any = a) -> str | None:
            try:
                return str(a.asstring(name))
            except (KeyError, UnicodeDecodeError, OSError):
                return None

        vendor, device, cls = _int(attr("vendor"), 16), _int(attr("device"), 16), _int(attr("class"), 16)
        if vendor is None or device is None or cls is None:
            continue
        sv, sd = _int(attr("subsystem_vendor"), 16), _int(attr("subsystem_device"), 16)
        interfaces = sorted(c.sys_name for c in dev.children if c.subsystem == "net")
        yield PciNode(address=dev.sys_name, vendor=vendor, device=device, pci_class=cls, driver=dev.driver,
                      numa_node=_numa(attr("numa_node")), sriov_totalvfs=_int(attr("sriov_totalvfs"), 10),
                      sriov_numvfs=_int(attr("sriov_numvfs"), 10), physfn=_link_name(f"{dev.sys_path}/physfn"),
                      interfaces=interfaces, subsystem=(sv, sd) if sv is not None and sd is not None else None)


def nodes(root: str | None = None) -> list[PciNode]:
    """Every PCI function: pyudev on the real host (root None), else the tree under root."""
    found = from_udev() if root is None else from_tree(root)
    return sorted(found, key=lambda n: n.address)


# ---- what they are ----

def accel_class(pci_class: int) -> str | None:
    hexcls = f"{pci_class:06x}"
    for prefix, what in ACCEL_CLASSES.items():
        if hexcls.startswith(prefix):
            return what
    return None


@dataclass
class Accelerator:
    address: str
    vendor_id: str
    device_id: str
    pci_class: str
    class_name: str
    vendor: str
    name: str
    family: str | None
    generation: str | None
    capabilities: list[str]
    driver: str | None
    numa_node: int | None
    sriov: dict[str, int] | None  # total_vfs, num_vfs (VFs enabled), vfs_found
    known: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Nic:
    address: str
    vendor_id: str
    device_id: str
    driver: str | None
    numa_node: int | None
    interfaces: list[str]
    sriov: dict[str, int] | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PciReport:
    accelerators: list[Accelerator]
    nics: list[Nic]
    source: str  # "udev" or the tree's root

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "accelerators": [a.as_dict() for a in self.accelerators],
                "nics": [n.as_dict() for n in self.nics]}


def _sriov(n: PciNode, vfs: int) -> dict[str, int] | None:
    if n.sriov_totalvfs is None:
        return None
    return {"total_vfs": n.sriov_totalvfs, "num_vfs": n.sriov_numvfs or 0, "vfs_found": vfs}


def classify(all_nodes: Iterable[PciNode], source: str) -> PciReport:
    """Accelerators and NICs among PCI functions; VFs are counted under their PF (a VF whose PF is
    not in the list, as in a VM given a VF, is listed itself)."""
    nodes_list = list(all_nodes)
    addresses = {n.address for n in nodes_list}
    vf_count: dict[str, int] = {}
    for n in nodes_list:
        if n.physfn and n.physfn in addresses:
            vf_count[n.physfn] = vf_count.get(n.physfn, 0) + 1
    accels, nics = [], []
    for n in nodes_list:
        if n.physfn and n.physfn in addresses:
            continue
        known = KNOWN.get((n.vendor, n.device))
        what = accel_class(n.pci_class)
        ids = {"vendor_id": f"0x{n.vendor:04x}", "device_id": f"0x{n.device:04x}"}
        if known is not None or what is not None:
            accels.append(Accelerator(
                address=n.address, **ids, pci_class=f"0x{n.pci_class:06x}", class_name=what or "other",
                vendor=known.vendor if known else "",
                name=known.name if known else f"PCI {n.vendor:04x}:{n.device:04x}",
                family=known.family if known else None, generation=(known.generation or None) if known else None,
                capabilities=list(known.capabilities) if known else [], driver=n.driver, numa_node=n.numa_node,
                sriov=_sriov(n, vf_count.get(n.address, 0)), known=known is not None))
        elif f"{n.pci_class:06x}".startswith(NET_CLASS):
            nics.append(Nic(address=n.address, **ids, driver=n.driver, numa_node=n.numa_node,
                            interfaces=n.interfaces, sriov=_sriov(n, vf_count.get(n.address, 0))))
    return PciReport(accels, nics, source)


def discover(root: str | None = None) -> PciReport:
    """This host's accelerators and NICs (root None: the real host, through pyudev)."""
    return classify(nodes(root), "udev" if root is None else root)
