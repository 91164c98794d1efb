# SPDX-License-Identifier: Apache-2.0
"""Hot-plug: a synthetic device added to, or taken from, a domain (running, defined, or both),
in the style of ``virt-xml --add-device --update``. No libvirt hook runs for attach-device, so
the daemon's side comes first on attach (the region must exist before QEMU maps it) and last on
detach (after the guest has let go of it):

    attach   daemon: serve the domain's devices with the new one; libvirt: attach its <shmem>
             and write the new <metadata>. If libvirt refuses, the daemon drops the new device.
    detach   libvirt: detach the <shmem> (the guest's ACPI eject) and wait until it is gone,
             write the new <metadata>; daemon: destroy the device.

The device is checked as ``virt-synth xml`` checks one (the designer and libvirt's schema) before
anything changes."""

from __future__ import annotations

import time
from typing import Any

from lxml import etree

from libvirt_synth import errors
from libvirt_synth.hook import metadata
from libvirt_synth.move.orchestrate import Endpoint
from libvirt_synth.xml import designer, spec
from libvirt_synth.xml.config import ShmemConfig, SynthDevicesConfig


def _current(dom: Any, live: bool) -> tuple[str, SynthDevicesConfig]:
    """The domain's XML (live, or its definition) and our devices in it."""
    from libvirt_synth.xml import connect

    xml = dom.XMLDesc(0) if live else connect.inactive_xml(dom)
    root = etree.fromstring(xml.encode())
    ours = SynthDevicesConfig.find(root.find("metadata"))
    return xml, SynthDevicesConfig.parse_dom(ours) if ours is not None else SynthDevicesConfig()


def _plan(xml: str, have: SynthDevicesConfig, specs: list[spec.DeviceSpec]) -> designer.Result:
    iso = designer.Isolation(uids=(have.uid, have.uid)) if have.uid is not None else None
    return designer.inject(xml, specs, "the domain's XML", isolation=iso)


def _element(xml: str, path: str) -> str:
    root = etree.fromstring(xml.encode())
    found = root.xpath(path, namespaces={metadata.PREFIX: metadata.NAMESPACE})
    if not found:
        raise errors.NotFoundError(f"no {path} in the domain's XML")
    return str(etree.tostring(found[0]).decode())


def _shmem_names(xml: str) -> set[str]:
    return {str(e.get("name")) for e in etree.fromstring(xml.encode()).iterfind(f"devices/{ShmemConfig.TAG}")}


def _metadata_xml(devices: SynthDevicesConfig) -> str | None:
    """Our <metadata> element as setMetadata takes it: without its namespace, which libvirt
    gives every element of it."""
    if not devices.devices:
        return None
    el = devices.format_dom()
    for e in el.iter():
        e.tag = etree.QName(e).localname
    etree.cleanup_namespaces(el)
    return str(etree.tostring(el).decode())


def _set_metadata(dom: Any, devices: SynthDevicesConfig, flags: int) -> None:
    from libvirt_synth.xml.connect import load_libvirt

    lv = load_libvirt()
    dom.setMetadata(lv.VIR_DOMAIN_METADATA_ELEMENT, _metadata_xml(devices), metadata.PREFIX, metadata.NAMESPACE,
                    flags)


def _serve(daemon: Endpoint, dom: Any, devices: list[Any], uid: int | None) -> None:
    if devices:
        params: dict[str, Any] = {"uuid": dom.UUIDString(), "name": dom.name(),
                                  "devices": [d.as_dict() for d in devices]}
        if uid is not None:
            params["uid"] = uid
        daemon.call("domain.create", **params)
    else:
        daemon.call("domain.destroy", uuid=dom.UUIDString())


def _side_flag(side: str) -> int:
    from libvirt_synth.xml.connect import load_libvirt

    lv = load_libvirt()
    return int(lv.VIR_DOMAIN_AFFECT_LIVE if side == "live" else lv.VIR_DOMAIN_AFFECT_CONFIG)


def _sides(dom: Any, live: bool, config: bool, verb: str) -> list[str]:
    live = live and bool(dom.isActive())
    if not live and not config:
        raise errors.ValueError(f"domain {dom.name()} is not running: {verb} with --config to change its definition")
    return (["live"] if live else []) + (["config"] if config else [])


def attach(dom: Any, text: str, daemon: Endpoint, live: bool = True, config: bool = False) -> dict[str, Any]:
    """Add the device ``text`` (``--device`` syntax) to the domain: the running domain, its
    definition, or both (each side gets the device in its own XML and metadata)."""
    from libvirt_synth.xml.connect import LibvirtError, load_libvirt

    lv = load_libvirt()
    sides = _sides(dom, live, config, "attach")
    plans: dict[str, tuple[SynthDevicesConfig, designer.Result]] = {}
    dev = None
    for side in sides:
        xml, have = _current(dom, side == "live")
        if dev is None:
            r = _plan(xml, have, [designer.as_spec(d) for d in have.devices] + [spec.parse_cli(text)])
            added = [d for d in r.devices if d.name not in {o.name for o in have.devices}]
            if len(added) != 1:
                raise errors.ValueError(f"{text!r} adds {len(added)} devices to {dom.name()}; expected one")
            dev = added[0]
        else:  # the same device, by the name the first side gave it
            if dev.name in {d.name for d in have.devices}:
                raise errors.ValueError(f"the definition of {dom.name()} has a device {dev.name} already")
            r = _plan(xml, have, [designer.as_spec(d) for d in have.devices] + [designer.as_spec(dev)])
        plans[side] = (have, r)
    assert dev is not None
    if "live" in plans:
        _serve(daemon, dom, plans["live"][1].devices, plans["live"][1].uid)
    done: list[tuple[str, str]] = []
    try:
        for side, (_, r) in plans.items():
            _set_metadata(dom, SynthDevicesConfig(r.devices, r.uid), _side_flag(side))
            done.append((side, "metadata"))
            shmem = _element(r.xml, f"/domain/devices/{ShmemConfig.TAG}[@name='{dev.name}']")
            dom.attachDeviceFlags(shmem, _side_flag(side))
            done.append((side, "shmem"))
    except lv.libvirtError as e:
        for side, what in reversed(done):  # undo, side by side
            have, r = plans[side]
            if what == "metadata":
                _set_metadata(dom, have, _side_flag(side))
            else:
                dom.detachDeviceFlags(_element(r.xml, f"/domain/devices/{ShmemConfig.TAG}[@name='{dev.name}']"),
                                      _side_flag(side))
        if "live" in plans:
            have = plans["live"][0]
            _serve(daemon, dom, have.devices, have.uid)  # the new device goes again
        raise LibvirtError(f"attaching {dev.name} to {dom.name()}: {e.get_error_message()}; nothing changed") from None
    return {"domain": dom.name(), "uuid": dom.UUIDString(), "attached": dev.as_dict(), "live": "live" in plans,
            "config": "config" in plans}


def detach(dom: Any, name: str, daemon: Endpoint, live: bool = True, config: bool = False,
           timeout: float = 30.0) -> dict[str, Any]:
    """Take the device ``name`` from the domain (running, definition, or both); waits until the
    guest has let go of it."""
    from libvirt_synth.xml.connect import LibvirtError, load_libvirt

    lv = load_libvirt()
    sides = _sides(dom, live, config, "detach")
    plans: dict[str, tuple[str, SynthDevicesConfig, list[Any]]] = {}
    for side in sides:
        xml, have = _current(dom, side == "live")
        if name not in {d.name for d in have.devices}:
            continue
        keep = [d for d in have.devices if d.name != name]
        _plan(xml, have, [designer.as_spec(d) for d in keep])  # the domain without it still checks
        plans[side] = (xml, have, keep)
    if not plans:
        raise errors.NotFoundError(f"domain {dom.name()} has no synthetic device {name!r} "
                                   f"({' or '.join(sides)})")
    path = f"/domain/devices/{ShmemConfig.TAG}[@name='{name}']"
    for side in ("config", "live"):  # the definition first: the live side waits for the guest
        if side not in plans:
            continue
        xml, have, keep = plans[side]
        try:
            if name in _shmem_names(xml):
                dom.detachDeviceFlags(_element(xml, path), _side_flag(side))
        except lv.libvirtError as e:
            raise LibvirtError(f"detaching {name} from {dom.name()} ({side}): {e.get_error_message()}") from None
        if side == "live":
            deadline = time.monotonic() + timeout
            while name in _shmem_names(dom.XMLDesc(0)):
                if time.monotonic() > deadline:
                    raise errors.TimeoutError(f"the guest of {dom.name()} did not let go of {name} within "
                                              f"{timeout:.0f} s (its ACPI eject); the device is still served")
                time.sleep(0.05)
        _set_metadata(dom, SynthDevicesConfig(keep, have.uid), _side_flag(side))
        if side == "live":
            _serve(daemon, dom, keep, have.uid)
    return {"domain": dom.name(), "uuid": dom.UUIDString(), "detached": name, "live": "live" in plans,
            "config": "config" in plans}
