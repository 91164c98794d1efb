# SPDX-License-Identifier: Apache-2.0
"""Handing a domain's devices over to another virt-synthd: a live migration, or a save restored
on another host (docs/migration.md). The orchestrator (``virt-synth migrate``, ``save``,
``restore``) drives both daemons; they never talk to each other, and the orchestrator sees the
devices' state only sealed (daemon/handover.py).

On the source::

    migration.begin    the domain is leaving: its devices keep serving, and the stop hooks that
                       follow the move (stopped, release) stop serving them but keep their region
                       and vault files instead of destroying them
    migration.export   (once the source QEMU has stopped) stop serving, seal the final region and
                       vault files to the destination daemon's key
    migration.read     the sealed blob, in pieces
    migration.finish   the destination serves the devices: destroy them here
    migration.cancel   the move failed before the source QEMU stopped: carry on as before

On the destination::

    migration.expect   a domain with these devices is coming: the migrate and restore hooks let
                       it in, and the prepare hook lays out an unserved placeholder region of the
                       right size and owner for QEMU to map (the incoming migration fills it)
    migration.write    the sealed blob, in pieces
    migration.import   write the final regions and vaults, serve them (the generation goes up,
                       as after a daemon restart: sessions keep their ids, keys and IV counters)
    migration.cancel   the move failed: remove the placeholders

Each step is recorded in ``state_dir/migrations/UUID.json`` before it takes effect, so that a
daemon killed part-way knows after its restart what it was doing: the source keeps the region
and vault files of a domain that left until ``finish`` or ``cancel``, and the destination keeps
its placeholders until ``import`` or ``cancel``. ``migrations.list`` shows what is pending."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from libvirt_synth import capabilities, errors, log
from libvirt_synth.daemon import handover
from libvirt_synth.daemon.checks import UUID_RE, parse_device, write_private
from libvirt_synth.daemon.registry import DeviceRecord
from libvirt_synth.daemon.rpc import mutating, rpc
from libvirt_synth.host import region
from libvirt_synth.host.device import owner_ids

if TYPE_CHECKING:
    from libvirt_synth.daemon.config import Config
    from libvirt_synth.daemon.registry import Registry
    from libvirt_synth.host.backend import Backend
    from libvirt_synth.host.device import HostDevice

CHUNK = 512 * 1024  # bytes of blob per read/write call (well under the RPC line limit, base64 included)
MAX_BLOB = 1 << 31
OUT_PHASES = ("begun", "stopped", "exported")
IN_PHASES = ("expected", "placed")


class Migrations:
    """The hand-over half of the Service (mixed into it)."""

    if TYPE_CHECKING:  # what it uses of the Service
        cfg: Config
        devices: dict[str, HostDevice]
        backend: Backend
        registry: Registry
        lock: threading.RLock

        def _owner(self, rec: DeviceRecord) -> str | None: ...
        def _check_uid(self, uuid: str, uid: int | None) -> None: ...
        def _serve(self, records: list[DeviceRecord], attach: bool = False) -> list[str]: ...
        def _describe(self, name: str, full: bool = False) -> dict[str, Any]: ...
        def catalog(self) -> dict[str, tuple[str, tuple[str, ...]]]: ...
        def domain_destroy(self, uuid: str) -> dict[str, Any]: ...

    def _migrations_init(self) -> None:
        self.migration_dir = os.path.join(self.cfg.state_dir, "migrations")
        os.makedirs(self.migration_dir, mode=0o700, exist_ok=True)
        self._keys: handover.KeyPair | None = None
        self._blobs: dict[str, bytearray] = {}  # uuid -> sealed blob (the outgoing one, or the one arriving)
        self._handed: dict[str, bytes] = {}  # device -> its compression streams, while an import serves it
        self._mig_lock = threading.Lock()

    # ---- persisted state ----

    def _state_path(self, uuid: str) -> str:
        return os.path.join(self.migration_dir, uuid + ".json")

    def migration_state(self, uuid: str) -> dict[str, Any] | None:
        try:
            with open(self._state_path(uuid)) as f:
                st: dict[str, Any] = json.load(f)
                return st
        except FileNotFoundError:
            return None

    def _save_state(self, st: dict[str, Any]) -> None:
        write_private(self._state_path(st["uuid"]), json.dumps(st | {"updated": time.time()}).encode())

    def _drop_state(self, uuid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._state_path(uuid))
        self._blobs.pop(uuid, None)

    def migration_states(self) -> list[dict[str, Any]]:
        out = []
        for f in sorted(os.listdir(self.migration_dir)):
            if f.endswith(".json"):
                st = self.migration_state(f[:-5])
                if st is not None:
                    out.append(st)
        return out

    def handed_streams(self, name: str) -> bytes:
        """The compression streams handed over for a device, while migration.import serves it."""
        return self._handed.get(name, b"")

    def keys(self) -> handover.KeyPair:
        if self._keys is None:
            self._keys = handover.KeyPair.load_or_create(self.cfg.state_dir)
        return self._keys

    # ---- what the hooks and domain.create/destroy ask ----

    def incoming(self, uuid: str) -> dict[str, Any] | None:
        st = self.migration_state(uuid)
        return st if st is not None and st["role"] == "in" else None

    def place(self, st: dict[str, Any]) -> list[str]:
        """The prepare hook of an expected domain: unserved placeholder regions for QEMU to map."""
        records = [DeviceRecord(**r) for r in st["records"]]
        for rec in records:
            if rec.name in self.devices:
                raise errors.BusyError(f"device {rec.name} is served here already; the incoming domain cannot "
                                       "have it")
        for rec in records:
            path = rec.region_path
            if os.path.exists(path) and not region.is_locked(path):
                os.unlink(path)  # left by an earlier attempt: QEMU does not map it yet
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.ftruncate(fd, rec.size)
                owner = self._owner(rec)
                if owner is not None:
                    uid, gid = owner_ids(owner)
                    os.fchown(fd, uid, gid)
            finally:
                os.close(fd)
        self._save_state(st | {"phase": "placed"})
        log.info("domain %s (%s): incoming; placeholders %s", st["name"], st["uuid"],
                 ", ".join(r.name for r in records))
        return [r.name for r in records]

    def unplace(self, st: dict[str, Any]) -> list[str]:
        """An incoming domain that will not come: its placeholders and whatever arrived go."""
        gone = []
        for r in st["records"]:
            for path in (r["region_path"], self.cfg.vault_file(r["name"]),
                         self.cfg.vault_file(r["name"], "streams")):
                if r["name"] not in self.devices and os.path.exists(path):
                    os.unlink(path)
            gone.append(r["name"])
        self._drop_state(st["uuid"])
        log.info("domain %s (%s): incoming move called off; removed %s", st["name"], st["uuid"], ", ".join(gone))
        return gone

    def leaving_stopped(self, uuid: str) -> dict[str, Any] | None:
        """The stop hooks of a domain that is leaving: stop serving its devices, keep their files."""
        st = self.migration_state(uuid)
        if st is None or st["role"] != "out":
            return None
        self._release(st)
        return {"uuid": uuid, "destroyed": [], "deferred": [r["name"] for r in st["records"]], "existed": True}

    def _release(self, st: dict[str, Any]) -> None:
        if st["phase"] == "begun":
            self._save_state(st | {"phase": "stopped"})
            st["phase"] = "stopped"
        for r in st["records"]:
            dev = self.devices.pop(r["name"], None)
            if dev is not None:
                if dev.worker is not None:
                    dev.worker.remove(dev)
                streams = dev.export_streams()
                if streams:  # compression streams at rest: host-only, beside the vault
                    write_private(self.cfg.vault_file(r["name"], "streams"), streams)
                self.backend.release(dev)
                log.info("device %s: stopped serving; kept for the hand-over of domain %s", r["name"], st["uuid"])

    # ---- methods: both sides ----

    @rpc("daemon.key")
    def daemon_key(self) -> dict[str, Any]:
        """This daemon's public key: what a hand-over to it is sealed to, and what peers pin."""
        return {"public_key": self.keys().public_hex}

    @rpc("migration.incoming")
    def migration_incoming(self, uuid: str) -> dict[str, Any]:
        """Whether a domain is expected here (the migrate and restore hooks ask, and let in only
        a domain whose devices' hand-over is arranged)."""
        st = self.incoming(uuid)
        return {"uuid": uuid, "expected": st is not None, "phase": st["phase"] if st else None}

    @rpc("migrations.list")
    def migrations_list(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in s.items() if k != "records"} | {"devices": [r["name"] for r in s["records"]]}
                for s in self.migration_states()]

    @rpc("migration.cancel")
    @mutating
    def migration_cancel(self, uuid: str, force: bool = False) -> dict[str, Any]:
        """Call a move off. Outgoing: the devices keep serving (the move failed while the source
        QEMU ran); once the source QEMU has stopped this is refused unless ``force``, since the
        devices' state exists nowhere else (``force`` then destroys it). Incoming: the placeholders
        go. Idempotent."""
        with self.lock:
            st = self.migration_state(uuid)
            if st is None:
                return {"uuid": uuid, "cancelled": False}
            if st["role"] == "in":
                return {"uuid": uuid, "cancelled": True, "removed": self.unplace(st)}
            if st["phase"] != "begun":
                if not force:
                    raise errors.BusyError(
                        f"domain {st['name']} ({uuid}) has left this host (its QEMU stopped) and its devices' "
                        "state exists only here: hand it over (virt-synth migrate ... resumes it) or, to "
                        "give the devices up, cancel with force")
                self._drop_state(uuid)
                res = self.domain_destroy(uuid)
                log.warning("domain %s (%s): hand-over given up; destroyed %s", st["name"], uuid,
                            ", ".join(res["destroyed"]))
                return {"uuid": uuid, "cancelled": True, "destroyed": res["destroyed"]}
            self._drop_state(uuid)
            log.info("domain %s (%s): move called off; its devices serve on here", st["name"], uuid)
            return {"uuid": uuid, "cancelled": True}

    # ---- methods: the source ----

    @rpc("migration.begin")
    @mutating
    def migration_begin(self, uuid: str, peer_key: str) -> dict[str, Any]:
        """The domain is about to leave for the daemon with public key ``peer_key``."""
        peer = handover.parse_public(peer_key, "peer_key")
        with self.lock:
            dom = self.registry.domain(uuid)
            if dom is None:
                raise errors.NotFoundError(f"no domain {uuid} is served here (see domains.list)")
            st = self.migration_state(uuid)
            if st is not None and (st["role"] != "out" or st["phase"] != "begun"):
                raise errors.BusyError(f"domain {dom['name']} ({uuid}) is already being handed over "
                                       f"({st['role']}, {st['phase']}); see migrations.list")
            records = self.registry.devices(uuid)
            lost = [r.name for r in records if r.name not in self.devices]
            if lost:
                raise errors.DeviceError(f"domain {dom['name']}: devices {', '.join(lost)} are not served "
                                         "here; they cannot be handed over")
            wired = [r.name for r in records if r.dev_class == "packet" and any(
                capabilities.link_channel(k) is not None for k in (r.spec.get("options") or {}))]
            if wired:
                raise errors.NotSupportedError(
                    f"domain {dom['name']}: packet devices {', '.join(wired)} have wires or taps (host "
                    "state joining them to this host's other devices); such a domain cannot move")
            for r in records:
                r.generation = self.devices[r.name].stats().generation
            st = {"role": "out", "uuid": uuid, "name": dom["name"], "phase": "begun", "peer": peer.hex(),
                  "started": time.time(), "records": [r.as_dict() for r in records]}
            self._save_state(st)
            log.info("domain %s (%s): leaving for daemon %s...", dom["name"], uuid, peer.hex()[:16])
            return {"uuid": uuid, "name": dom["name"], "sender": self.keys().public_hex, "records": st["records"]}

    @rpc("migration.export")
    @mutating
    def migration_export(self, uuid: str) -> dict[str, Any]:
        """The source QEMU has stopped: stop serving the devices and seal their final state."""
        with self.lock:
            st = self.migration_state(uuid)
            if st is None or st["role"] != "out":
                raise errors.NotFoundError(f"domain {uuid} is not leaving this host (migration.begin first)")
            self._release(st)
            t0 = time.monotonic()
            files = {}
            for r in st["records"]:
                with open(r["region_path"], "rb") as f:
                    files[r["name"] + ".region"] = f.read()
                for kind, path in (("vault", self.cfg.vault_file(r["name"])),
                                   ("streams", self.cfg.vault_file(r["name"], "streams"))):
                    if os.path.exists(path):
                        with open(path, "rb") as f:
                            files[f"{r['name']}.{kind}"] = f.read()
            header = {"uuid": uuid, "name": st["name"], "records": st["records"], "made": time.time()}
            blob = handover.seal(header, handover.pack(files), self.keys(), bytes.fromhex(st["peer"]))
            self._blobs[uuid] = bytearray(blob)
            self._save_state(st | {"phase": "exported"})
            ms = (time.monotonic() - t0) * 1e3
            log.info("domain %s (%s): sealed %d bytes of device state for the hand-over in %.0f ms",
                     st["name"], uuid, len(blob), ms)
            return {"uuid": uuid, "size": len(blob), "seal_ms": round(ms, 1)}

    @rpc("migration.read")
    def migration_read(self, uuid: str, offset: int = 0, length: int = CHUNK) -> dict[str, Any]:
        blob = self._blobs.get(uuid)
        if blob is None:
            raise errors.NotFoundError(f"no sealed hand-over of domain {uuid} here (migration.export first)")
        length = max(0, min(int(length), CHUNK))
        piece = bytes(blob[offset:offset + length])
        return {"offset": offset, "data": base64.b64encode(piece).decode(), "size": len(blob)}

    @rpc("migration.finish")
    @mutating
    def migration_finish(self, uuid: str) -> dict[str, Any]:
        """The destination serves the devices now: destroy them here (regions, vaults, records)."""
        with self.lock:
            st = self.migration_state(uuid)
            if st is None or st["role"] != "out":
                return {"uuid": uuid, "finished": False}
            if st["phase"] == "begun":
                raise errors.BusyError(f"domain {st['name']} ({uuid}) has not been handed over yet "
                                       "(migration.export)")
            self._drop_state(uuid)
            res = self.domain_destroy(uuid)
            log.info("domain %s (%s): handed over; destroyed %s here", st["name"], uuid, ", ".join(res["destroyed"]))
            return {"uuid": uuid, "finished": True, "destroyed": res["destroyed"]}

    # ---- methods: the destination ----

    @rpc("migration.expect")
    @mutating
    def migration_expect(self, uuid: str, name: str, records: list[Any], sender: str) -> dict[str, Any]:
        """A domain with these devices is coming from the daemon with public key ``sender``."""
        sender_key = handover.parse_public(sender, "sender")
        if self.cfg.migration_peers and sender_key.hex() not in self.cfg.migration_peers:
            raise errors.PermissionError(f"daemon key {sender_key.hex()[:16]}... is not among this daemon's "
                                         "[migration] peers; hand-overs from it are refused")
        if not isinstance(uuid, str) or not UUID_RE.match(uuid):
            raise errors.ValueError(f"uuid: {uuid!r} is not a UUID")
        if not isinstance(records, list) or not records:
            raise errors.ValueError("records: expected a non-empty list")
        catalog = self.catalog()
        mine = []
        for i, raw in enumerate(records):
            if not isinstance(raw, dict):
                raise errors.ValueError(f"records[{i}]: expected an object")
            spec = raw.get("spec") or {}
            d = parse_device({"name": raw.get("name"), "class": raw.get("dev_class"), "size": raw.get("size"),
                              "queues": raw.get("queues"), "ring_entries": raw.get("ring_entries"),
                              "plugin": raw.get("plugin"), "quotas": raw.get("quotas") or {},
                              **{k: spec[k] for k in ("capabilities", "kpis", "options") if k in spec}},
                             f"records[{i}]", catalog)
            gen = raw.get("generation", 1)
            if isinstance(gen, bool) or not isinstance(gen, int) or gen < 1:
                raise errors.ValueError(f"records[{i}].generation: expected a whole number >= 1")
            mine.append(DeviceRecord(name=d["name"], domain_uuid=uuid, dev_class=d["class"],
                                     region_path=os.path.join(self.cfg.region_dir, d["name"]), size=d["size"],
                                     queues=d["queues"], ring_entries=d["ring_entries"], plugin=d["plugin"],
                                     quotas=d["quotas"], spec=spec, generation=gen))
        with self.lock:
            if self.registry.domain(uuid) is not None:
                raise errors.BusyError(f"domain {uuid} is served here already; it cannot arrive")
            st = self.migration_state(uuid)
            if st is not None and st["role"] == "out":
                raise errors.BusyError(f"domain {uuid} is leaving this host; it cannot arrive at the same time")
            self._check_uid(uuid, mine[0].spec.get("uid"))
            for r in mine:
                known = self.registry.device(r.name)
                if known is not None or r.name in self.devices:
                    raise errors.BusyError(f"device {r.name} exists here already (domain "
                                           f"{known.domain_uuid if known else '?'}); the domain cannot arrive")
            st = {"role": "in", "uuid": uuid, "name": name, "phase": "expected", "sender": sender_key.hex(),
                  "started": time.time(), "records": [r.as_dict() for r in mine]}
            self._save_state(st)
            self._blobs[uuid] = bytearray()
            log.info("domain %s (%s): expected from daemon %s... with %s", name, uuid, sender_key.hex()[:16],
                     ", ".join(r.name for r in mine))
            return {"uuid": uuid, "expected": [r.name for r in mine], "public_key": self.keys().public_hex}

    @rpc("migration.write")
    @mutating
    def migration_write(self, uuid: str, offset: int, data: str) -> dict[str, Any]:
        if self.incoming(uuid) is None:
            raise errors.NotFoundError(f"domain {uuid} is not expected here (migration.expect first)")
        with self._mig_lock:
            blob = self._blobs.setdefault(uuid, bytearray())
            if offset == 0:
                blob.clear()
            if offset != len(blob):
                raise errors.ValueError(f"offset {offset}: {len(blob)} bytes have arrived so far")
            try:
                piece = base64.b64decode(data, validate=True)
            except ValueError:
                raise errors.ValueError("data: not base64") from None
            if len(blob) + len(piece) > MAX_BLOB:
                raise errors.ValueError("the hand-over is larger than any device state can be")
            blob += piece
            return {"size": len(blob)}

    @rpc("migration.import")
    @mutating
    def migration_import(self, uuid: str) -> dict[str, Any]:
        """Serve the arrived devices from the sealed state that was written (migration.write)."""
        with self.lock:
            st = self.migration_state(uuid)
            if st is None:
                dom = self.registry.domain(uuid)
                if dom is not None and all(r.name in self.devices for r in self.registry.devices(uuid)):
                    return {"uuid": uuid, "imported": False, "served": True,  # done before (a retry)
                            "devices": [self._describe(r.name) for r in self.registry.devices(uuid)]}
                raise errors.NotFoundError(f"domain {uuid} is not expected here (migration.expect first)")
            if st["role"] != "in":
                raise errors.BusyError(f"domain {uuid} is leaving this host, not arriving")
            if st["phase"] != "placed":
                raise errors.BusyError(f"domain {st['name']}: its QEMU has not been prepared here yet (no "
                                       "placeholder regions); the move must start before the import")
            senders = {bytes.fromhex(st["sender"])}
            head, payload = handover.open_blob(bytes(self._blobs.get(uuid, b"")), self.keys(), senders)
            if head.get("uuid") != uuid:
                raise handover.HandoverError(f"the hand-over is of domain {head.get('uuid')}, not {uuid}")
            files = handover.unpack(payload)
            records = [DeviceRecord(**r) for r in st["records"]]
            sent = {r["name"]: r for r in head.get("records", [])}
            for rec in records:
                if rec.name not in sent or rec.name + ".region" not in files:
                    raise handover.HandoverError(f"the hand-over lacks device {rec.name}")
                data = files[rec.name + ".region"]
                if len(data) != rec.size:
                    raise handover.HandoverError(f"device {rec.name}: {len(data)} bytes of region, expected {rec.size}")
                rec.generation = max(rec.generation, int(sent[rec.name].get("generation", 1)))
            t0 = time.monotonic()
            for rec in records:
                fd = os.open(rec.region_path, os.O_RDWR | os.O_NOFOLLOW)
                try:
                    if os.fstat(fd).st_size != rec.size:
                        raise errors.DeviceError(f"device {rec.name}: the placeholder {rec.region_path} is not "
                                                 f"{rec.size} bytes any more")
                    os.pwrite(fd, files[rec.name + ".region"], 0)
                finally:
                    os.close(fd)
                if rec.name + ".vault" in files:
                    write_private(self.cfg.vault_file(rec.name), files[rec.name + ".vault"])
                self._handed[rec.name] = files.get(rec.name + ".streams", b"")
            self.registry.add_domain(uuid, st["name"], records)
            try:
                self._serve(records, attach=True)
            except BaseException:
                self.registry.remove_domain(uuid)  # still expected: the import may be tried again
                raise
            finally:
                self._handed.clear()
            for rec in records:
                self.registry.set_generation(rec.name, self.devices[rec.name].stats().generation)
            self._drop_state(uuid)
            ms = (time.monotonic() - t0) * 1e3
            log.info("domain %s (%s): arrived; serving %s (written and attached in %.0f ms)", st["name"], uuid,
                     ", ".join(f"{r.name} with {self.devices[r.name].plugin}" for r in records), ms)
            return {"uuid": uuid, "imported": True, "attach_ms": round(ms, 1),
                    "devices": [self._describe(r.name) for r in records]}
