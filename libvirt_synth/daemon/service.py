# SPDX-License-Identifier: Apache-2.0
"""What virt-synthd does, independent of how it is called: create and destroy the devices of a
domain, re-attach them after a restart, report on them. The RPC layer maps JSON-RPC methods onto
the methods marked @rpc here."""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import Any

from libvirt_synth import __version__, capabilities, errors, log
from libvirt_synth._native import lib
from libvirt_synth.abi import DevClass
from libvirt_synth.daemon import links
from libvirt_synth.daemon.checks import UUID_RE, parse_device, wipe_file
from libvirt_synth.daemon.config import Config
from libvirt_synth.daemon.lock import StateLock
from libvirt_synth.daemon.migration import IN_PHASES, Migrations
from libvirt_synth.daemon.registry import DeviceRecord, Registry
from libvirt_synth.daemon.rpc import mutating, rpc
from libvirt_synth.daemon.sla import Sla
from libvirt_synth.host import region
from libvirt_synth.host.backend import Backend, class_stats
from libvirt_synth.host.device import (
    HostDevice,
    HostDeviceSpec,
)
from libvirt_synth.host.packet import LinkPlan
from libvirt_synth.host.plugins import catalog, choices, load_plugin_dir


class Service(Migrations):
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        os.makedirs(cfg.state_dir, mode=0o700, exist_ok=True)
        self.state_lock = StateLock(cfg.state_dir)
        self.state_lock.acquire()  # before anything else in the state directory is touched
        try:
            os.makedirs(cfg.vault_dir, mode=0o700, exist_ok=True)
            self.registry = Registry(cfg.registry_path)
        except BaseException:
            self.state_lock.release()
            raise
        self.backend = Backend(workers=cfg.workers, cpus=cfg.cpus, spin_us=cfg.spin_us,
                               max_sleep_us=cfg.max_sleep_us, deep_sleep_us=cfg.deep_sleep_us,
                               dedicated=[DevClass.parse(c) for c in cfg.dedicated])
        self.devices: dict[str, HostDevice] = {}
        self.lock = threading.RLock()
        self.started = time.time()
        self.lost: list[str] = []
        self.stalled_workers: list[int] = []  # shared workers with no poll pass for seconds (daemon.main)
        self.sla = Sla(cfg.sla_window_s)  # sampled once a second by daemon.main
        self.plugin_report = load_plugin_dir(cfg.plugin_dir)
        self._migrations_init()

    # ---- life cycle ----

    def _spec(self, rec: DeviceRecord) -> HostDeviceSpec:
        plugin = rec.plugin or self.cfg.plugin_pins.get(rec.dev_class)
        options: tuple[tuple[str, Any], ...] = ()
        alg_pins = {k: v for k, v in self.cfg.plugin_pins.items() if k not in ("crypto", "compress", "packet")}
        if rec.dev_class == "crypto" and alg_pins and not plugin:
            options = (("pins", alg_pins),)
        if rec.dev_class == "packet":  # links are set apart (daemon.links); the rest are device options
            options = tuple(sorted((k, v) for k, v in (rec.spec.get("options") or {}).items()
                                   if capabilities.link_channel(k) is None))
        return HostDeviceSpec(path=rec.region_path, dev_class=DevClass.parse(rec.dev_class), name=rec.name,
                          size=rec.size, queues=rec.queues, ring_entries=rec.ring_entries,
                          owner=self._owner(rec), plugin=plugin, options=options,
                          max_sessions=int(rec.spec.get("max_sessions", 0)),
                          vault=self.cfg.vault_file(rec.name),
                          quota=tuple(sorted(rec.quotas.items())),
                          streams=self.handed_streams(rec.name) if rec.dev_class == "compress" else b"")

    def _serve(self, records: list[DeviceRecord], attach: bool = False,
               existing: str = "fail", keep_going: bool = False, unlinked: bool = False) -> list[str]:
        """Serve the records' devices that are not served yet: packet devices joined by wires in
        one group each (one worker; links set before serving), the others one by one. All or
        nothing unless keep_going (a restart keeps what it can). A region file that exists though
        nothing serves it is, with existing="replace", left over from a dead backend and replaced
        (the prepare hook: QEMU does not run yet); with "attach", taken over (the reconnect hook:
        QEMU maps it). With unlinked, no links are set (a restart whose links cannot be made).
        Returns the names now served."""
        by_name = {r.name: r for r in records}
        if not attach and existing != "fail":
            stale = [n for n in by_name if n not in self.devices and os.path.exists(by_name[n].region_path)]
            if existing == "replace":
                for n in stale:
                    self._check_replaceable(by_name[n])
                for n in stale:
                    log.warning("device %s: replacing region %s left by a backend that is gone", n,
                                by_name[n].region_path)
                    os.unlink(by_name[n].region_path)
            elif stale:
                fresh = [r for r in records if r.name not in stale]
                taken_over = self._serve([r for r in records if r.name in stale], attach=True)
                return taken_over + self._serve(fresh)
        order = [r.name for r in records if r.name not in self.devices]
        plan = LinkPlan() if unlinked else self._links(records).plan
        packet = [n for n in order if by_name[n].dev_class == "packet"]
        # A wire to a device that is served already (another domain's, or this one's from an
        # earlier call) joins the new devices to it, and its group, on one worker.
        linked = {n for w in plan.wires for n in (w[0], w[2])} - set(order)
        groups = [[n] for n in order if by_name[n].dev_class != "packet"]
        groups += [g for g in plan.groups(packet + sorted(linked & set(self.devices))) if set(g) & set(order)]
        served: list[str] = []
        try:
            for group in groups:
                new = [n for n in group if n in order]
                join = [self.devices[n] for n in group if n not in order]
                specs = [self._spec(by_name[n]) for n in new]
                gens = {by_name[n].region_path: by_name[n].generation + 1 for n in new}
                sub = LinkPlan(wires=[w for w in plan.wires if w[0] in new or w[2] in new],
                               taps=[t for t in plan.taps if t[0] in new])
                try:
                    if len(group) == 1 and by_name[group[0]].dev_class != "packet":
                        devs = [self.backend.attach(specs[0], generation=gens[specs[0].path]) if attach
                                else self.backend.add(specs[0])]
                    else:
                        devs = self.backend.add_group(specs, sub.connect, attach=attach, generations=gens, join=join)
                except errors.SynthError as e:
                    if not keep_going:
                        raise
                    log.error("devices %s: cannot re-attach: %s", ", ".join(new), e)
                    self.lost.extend(new)
                    continue
                for n, dev in zip(new, devs, strict=True):
                    self.devices[n] = dev
                    served.append(n)
        except BaseException:
            for n in served:
                self.backend.remove(self.devices.pop(n).path, unlink=not attach)
            raise
        self.lost = [n for n in self.lost if n not in served]  # replaced or taken over: no longer lost
        return served

    def _links(self, records: list[DeviceRecord]) -> links.DomainLinks:
        """The links of one domain's devices, with the served packet devices of other domains."""
        mine = {r.name for r in records}
        others = {}
        for name, dev in list(self.devices.items()):
            if name not in mine and dev.spec.dev_class == DevClass.PACKET:
                rec = self.registry.device(name)
                if rec is not None:
                    others[name] = rec
        return links.plan(records, others)

    def _check_uid(self, uuid: str, uid: int | None) -> None:
        """A domain's own QEMU uid must be one of [isolation] uids, and no other domain's."""
        if uid is None:
            return
        first, last = self.cfg.isolation_uids
        if isinstance(uid, bool) or not isinstance(uid, int) or not first <= uid <= last:
            raise errors.ValueError(f"uid {uid!r}: the domain's QEMU identity must be one of this host's "
                                    f"[isolation] uids {first}-{last}; redefine it here (virt-synth define "
                                    "--domain NAME) to get one")
        for dom in self.registry.domains():
            if dom["uuid"] != uuid and any(r.spec.get("uid") == uid for r in self.registry.devices(dom["uuid"])):
                raise errors.BusyError(f"uid {uid} is already the QEMU identity of domain {dom['name']} "
                                       f"({dom['uuid']}); two VMs must not share one: redefine this one "
                                       "(virt-synth define --domain NAME --connect URI picks a free uid)")

    def _owner(self, rec: DeviceRecord) -> str | None:
        """Who the region belongs to: the domain's own uid with the [isolation] group, else the QEMU user."""
        uid = rec.spec.get("uid")
        if uid is None:
            return self.cfg.qemu_user
        return f"+{uid}:{self.cfg.isolation_group}"

    def _check_replaceable(self, rec: DeviceRecord) -> None:
        """Refuse to replace a file that is not a region this daemon laid out for this domain:
        it must have the device header's magic, the registry must say the device is this
        domain's, and no other backend may hold the region's lock."""
        path = rec.region_path
        what = f"device {rec.name}: {path} exists"
        if not region.is_region(path):
            raise errors.BusyError(errno.EEXIST, f"{what} and is not a synthetic device region; it is not "
                                   "replaced. Give the device another name, or remove the file if nothing uses it")
        if region.is_locked(path):
            raise errors.BusyError(f"{what} and another backend process serves it (a second "
                                   "virt-synthd with the same region directory?); it is not replaced")
        known = self.registry.device(rec.name)
        if known is None or known.domain_uuid != rec.domain_uuid:
            whose = "has no record of it" if known is None else f"records it for domain {known.domain_uuid}"
            raise errors.BusyError(errno.EEXIST, f"{what}: a region, but this daemon's registry {whose}; it is "
                                   f"not replaced. If no VM maps it (fuser -v {path}), remove it and start the "
                                   "VM again")

    def restore(self) -> None:
        """Re-attach every device of the registry whose region still exists (a daemon restart),
        with its links."""
        pending = self.migration_states()
        # Domains that left this host and wait for migration.finish: no QEMU maps their regions
        # any more, so they are not re-attached.
        left = {st["uuid"] for st in pending if st["role"] == "out" and st["phase"] != "begun"}
        for st in pending:
            if st["role"] == "in" and self.registry.domain(st["uuid"]) is not None:
                self._drop_state(st["uuid"])  # it was imported before the daemon stopped
            elif st["role"] == "in" or st["uuid"] in left:
                log.warning("domain %s (%s): %s hand-over pending (%s); see migrations.list", st["name"],
                            st["uuid"], "outgoing" if st["role"] == "out" else "incoming", st["phase"])
        for dom in self.registry.domains():
            if dom["uuid"] in left:
                continue  # it left this host: its regions wait for migration.finish, unserved
            records = []
            for rec in self.registry.devices(dom["uuid"]):
                if os.path.exists(rec.region_path):
                    records.append(rec)
                else:
                    log.warning("device %s of domain %s: region %s is gone; dropping it", rec.name,
                                rec.domain_uuid, rec.region_path)
                    self.lost.append(rec.name)
            try:
                served = self._serve(records, attach=True, keep_going=True)
            except errors.SynthError as e:  # its links cannot be made: serve it without them
                log.error("domain %s: links: %s; re-attaching without them", dom["uuid"], e)
                served = self._serve(records, attach=True, keep_going=True, unlinked=True)
            for n in served:
                gen = self.devices[n].stats().generation
                self.registry.set_generation(n, gen)
                log.info("re-attached %s (generation %d)", n, gen)
            # A domain keeps its record while a region of it is served or still there (a region
            # that could not be re-attached can then be replaced by the domain's next start).
            if not any(r.name in self.devices or os.path.exists(r.region_path) for r in records):
                self.registry.remove_domain(dom["uuid"])

    def sync_sessions(self) -> None:
        """Mirror every device's live sessions into the registry (run periodically)."""
        with self.lock:
            devices = list(self.devices.items())
        for name, dev in devices:
            if dev.spec.dev_class == DevClass.CRYPTO:
                self.registry.replace_sessions(name, dev.sessions())

    def close(self) -> None:
        """Stop serving; regions stay for the VMs that map them, and for the next daemon."""
        with self.lock:
            for dev in self.devices.values():
                self.backend.release(dev)
            self.devices.clear()
            self.backend.close(unlink=False)
            self.registry.close()
            self.state_lock.release()

    # ---- methods ----

    @rpc("health")
    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 1),
            "domains": len(self.registry.domains()),
            "devices": len(self.devices),
            "lost_devices": self.lost,
            # regions truncated under us (by their QEMU): the data path abandoned them
            "abandoned_devices": sorted(name for name, dev in list(self.devices.items())
                                        if dev.stats().dev_error == lib.SYNTH_DEVERR_REGION),
            "workers": [w.stats() for w in self.backend.workers],
            "stalled_workers": self.stalled_workers,
            # devices served by a worker of their own ([workers] dedicated), by device name
            "own_workers": {name: self.backend.own_workers[dev.path].stats() for name, dev in list(self.devices.items())
                            if dev.path in self.backend.own_workers},
            "socket": self.cfg.socket,
            "state_dir": self.cfg.state_dir,
            # hand-overs not finished (migrations.list has the detail)
            "migrations": [f"{s['role']} {s['name']} {s['phase']}" for s in self.migration_states()],
        }

    def catalog(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """This host's plugins that can run here, with what each serves here (built-in and loaded)."""
        return {p.name: (p.dev_class, tuple(p.algorithms)) for p in catalog() if p.available}

    @rpc("plugins")
    def plugins(self) -> dict[str, Any]:
        return {"plugins": [p.as_dict() for p in catalog()], "pins": self.cfg.plugin_pins,
                "choices": choices(self.cfg.plugin_pins), "loaded": self.plugin_report}

    @rpc("domain.create")
    @mutating
    def domain_create(self, uuid: str, name: str, devices: list[Any], existing: str = "fail",
                      uid: int | None = None) -> dict[str, Any]:
        """Lay out and serve every device of a domain; all or nothing. Devices the daemon already
        serves for this domain are kept (the hook may run again after a failed start). A region
        file that exists but is not served: "fail" (the default), "replace" it (the prepare hook)
        or "attach" to it (the reconnect hook). ``uid``: the domain's own QEMU uid (its static DAC
        seclabel): its regions belong to it and the [isolation] group, and no other domain may
        have it."""
        if existing not in ("fail", "replace", "attach"):
            raise errors.ValueError(f"existing: {existing!r}; expected fail, replace or attach")
        if not isinstance(uuid, str) or not UUID_RE.match(uuid):
            raise errors.ValueError(f"uuid: {uuid!r} is not a UUID")
        if not isinstance(devices, list) or not devices:
            raise errors.ValueError("devices: expected a non-empty list")
        catalog = self.catalog()
        parsed = []
        for i, d in enumerate(devices):
            dev = parse_device(d, f"devices[{i}]", catalog)
            pin = self.cfg.plugin_pins.get(dev["class"])
            if pin and not dev["plugin"]:  # the configuration's class pin serves it: it must be able to
                problems = capabilities.plugin_problems(dev["class"], pin, dev["spec"].get("capabilities", []),
                                                        catalog)
                if problems:
                    raise errors.ValueError(f"device {dev['name']}: the configuration pins {dev['class']} devices to "
                                            f"{pin}: {problems[0]}")
            parsed.append(dev)
        capabilities.check_links([{"name": d["name"], "class": d["class"], "queues": d["queues"],
                                   "options": d["spec"].get("options") or {}} for d in parsed], "devices")
        names = [d["name"] for d in parsed]
        if len(set(names)) != len(names):
            raise errors.ValueError(f"devices: duplicate names in {names}")
        with self.lock:
            st = self.incoming(uuid)
            if st is not None and st["phase"] in IN_PHASES:  # arriving: QEMU gets placeholders to map
                return {"uuid": uuid, "name": name, "incoming": True, "devices": self.place(st)}
            self._check_uid(uuid, uid)
            for d in parsed:
                rec = self.registry.device(d["name"])
                if rec is not None and rec.domain_uuid != uuid:
                    raise errors.ValueError(f"device {d['name']} belongs to domain {rec.domain_uuid}, not {uuid}")
            records = [DeviceRecord(
                name=d["name"], domain_uuid=uuid, dev_class=d["class"],
                region_path=os.path.join(self.cfg.region_dir, d["name"]), size=d["size"],
                queues=d["queues"], ring_entries=d["ring_entries"], plugin=d["plugin"],
                quotas=d["quotas"] or dict(self.cfg.quotas),
                spec=d["spec"] | ({"max_sessions": d["max_sessions"]} if d["max_sessions"] else {})
                | ({"uid": uid} if uid is not None else {}),
            ) for d in parsed]
            self._serve(records, existing=existing)
            for rec in records:  # devices served before keep serving, with the quotas asked now
                self.devices[rec.name].set_quota(rec.quotas)
            # Devices the domain had before and no longer lists go away.
            for old in self.registry.devices(uuid):
                if old.name not in names and old.name in self.devices:
                    self.backend.remove(self.devices.pop(old.name).path)
            self.registry.add_domain(uuid, name, records)
            log.info("domain %s (%s): serving %s", name, uuid, ", ".join(names))
            return {"uuid": uuid, "name": name, "devices": [self._describe(n) for n in names]}

    @rpc("domain.destroy")
    @mutating
    def domain_destroy(self, uuid: str) -> dict[str, Any]:
        """Stop serving a domain's devices and remove their regions; idempotent."""
        with self.lock:
            st = self.migration_state(uuid)
            if st is not None and st["role"] == "out":  # it is leaving: keep its devices for the hand-over
                return self.leaving_stopped(uuid) or {}
            if st is not None:  # an incoming move that failed
                return {"uuid": uuid, "destroyed": self.unplace(st), "existed": True}
            gone = []
            for rec in self.registry.devices(uuid):
                dev = self.devices.pop(rec.name, None)
                if dev is not None:
                    self.backend.remove(dev.path)
                else:
                    if os.path.exists(rec.region_path):
                        os.unlink(rec.region_path)
                    wipe_file(self.cfg.vault_file(rec.name))
                    wipe_file(self.cfg.vault_file(rec.name, "streams"))
                gone.append(rec.name)
            self.lost = [n for n in self.lost if n not in gone]  # its domain is gone: nothing is lost any more
            existed = self.registry.remove_domain(uuid)
            if existed:
                log.info("domain %s: destroyed %s", uuid, ", ".join(gone) or "no devices")
            return {"uuid": uuid, "destroyed": gone, "existed": existed}

    @rpc("domains.list")
    def domains_list(self) -> list[dict[str, Any]]:
        return [d | {"devices": [r.name for r in self.registry.devices(d["uuid"])]} for d in self.registry.domains()]

    @rpc("devices.list")
    def devices_list(self, domain: str | None = None) -> list[dict[str, Any]]:
        return [self._describe(r.name) for r in self.registry.devices(domain)]

    @rpc("device.show")
    def device_show(self, name: str) -> dict[str, Any]:
        if self.registry.device(name) is None:
            raise errors.NotFoundError(f"no device {name!r} (see devices.list)")
        return self._describe(name, full=True)

    @rpc("sla")
    def sla_report(self, domain: str | None = None) -> dict[str, Any]:
        """Each device's KPIs: asked, achieved over the window, and whether it is in violation
        (daemon/sla.py has the rule). ``domain``: a uuid or name."""
        if not self.lock.acquire(timeout=5.0):  # a consistent look: the sampler writes under the same lock
            raise errors.BusyError("virt-synthd is busy changing devices; ask again")
        try:
            rows = self.sla.report(self, domain)
        finally:
            self.lock.release()
        return {"window_s": self.cfg.sla_window_s, "violations": sum(r["violation"] for r in rows), "kpis": rows}

    @rpc("stats")
    def stats(self, name: str | None = None) -> dict[str, Any]:
        names = [name] if name else list(self.devices)
        out = {}
        for n in names:
            dev = self.devices.get(n)
            if dev is None:
                raise errors.NotFoundError(f"no device {n!r} is served")
            out[n] = dev.stats().as_dict() | class_stats(dev)
        return {"devices": out, "workers": [w.stats() for w in self.backend.workers]}

    def _describe(self, name: str, full: bool = False) -> dict[str, Any]:
        rec = self.registry.device(name)
        dev = self.devices.get(name)
        d: dict[str, Any] = {"name": name, "served": dev is not None}
        if rec is not None:
            d |= {"domain": rec.domain_uuid, "class": rec.dev_class, "path": rec.region_path, "size": rec.size,
                  "queues": rec.queues, "ring_entries": rec.ring_entries}
            if full:
                d |= {"spec": rec.spec, "quotas": rec.quotas, "created": rec.created}
        if dev is not None:
            st = dev.stats()
            d |= {"plugin": dev.plugin, "status": st.status, "generation": st.generation, "ops": st.ops,
                  "sessions": st.sessions, "driver_attached": st.active}
            if full:
                d["stats"] = st.as_dict()
                d["sessions_live"] = dev.sessions()
                try:
                    d["region"] = region.read_header(dev.path).as_dict()
                except errors.SynthError as e:
                    d["region_error"] = str(e)
        return d
