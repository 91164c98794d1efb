# SPDX-License-Identifier: Apache-2.0
"""The moves, step by step (docs/migration.md).

Live migration (``migrate``):

1. Ask the destination daemon for its public key (and check it against the operator's pin).
2. ``migration.begin`` on the source daemon: the devices keep serving while the guest runs; the
   stop hooks that follow the move keep their state instead of destroying it.
3. ``migration.expect`` on the destination daemon: its migrate hook lets the domain in, and its
   prepare hook lays out placeholder regions for the incoming QEMU.
4. libvirt migrates with the destination left paused (VIR_MIGRATE_PAUSED). QEMU copies the
   regions as guest RAM, but not the daemon's own writes reliably: those come in step 5.
5. The source QEMU has stopped. The source daemon stops serving and seals the final regions and
   vaults (sessions with their keys and IV counters) to the destination daemon's key; the blob is
   carried across (``migration.read`` / ``migration.write``) and the destination daemon writes it
   over the placeholders and serves them, with the generation bumped.
6. The destination domain resumes; the source daemon destroys its copy (``migration.finish``).

A failure before step 5 calls the move off on both daemons: the VM and its devices go on at the
source. From step 5 on the VM exists only on the destination, paused, and the devices' state only
in the source daemon: the hand-over is retried until ``handover_timeout``, and if it still fails
the error says how to finish it (``virt-synth migrate --resume``)."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import errors
from libvirt_synth.daemon import client, handover

Progress = Callable[[str], None]
RETRY_SLEEP_S = 0.5


class MoveError(errors.SynthError):
    """A move failed; the message says where the VM and its devices are."""


@dataclass
class Endpoint:
    """A virt-synthd to call: a socket path or ssh://[user@]host[:port][/socket] (None: the default)."""

    where: str | None = None
    timeout: float = 30.0

    def call(self, method: str, **params: Any) -> Any:
        return client.call(method, self.where, self.timeout, **params)

    def describe(self) -> str:
        return self.where or client.socket_path()


@dataclass
class Report:
    domain: str
    uuid: str
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    blob_bytes: int = 0
    devices: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "uuid": self.uuid, "steps_s": {k: round(v, 3) for k, v in self.steps.items()},
                "blob_bytes": self.blob_bytes, "devices": self.devices}


def _quiet(_: str) -> None:
    pass


def peer_key(dst: Endpoint, pin: str | None) -> str:
    """The destination daemon's public key, which must be the pinned one if one is given."""
    key = str(dst.call("daemon.key")["public_key"])
    if pin is not None and handover.parse_public(pin, "--dest-key").hex() != key:
        raise MoveError(f"the daemon at {dst.describe()} has key {key[:16]}..., not the pinned "
                        f"{pin[:16]}...: refusing to hand device state to it")
    return key


def pieces(src: Endpoint, uuid: str) -> Iterator[tuple[int, str, bytes]]:
    """The sealed blob the daemon made for a domain, piece by piece: (offset, base64, bytes)."""
    offset, size = 0, None
    while size is None or offset < size:
        piece = src.call("migration.read", uuid=uuid, offset=offset)
        size = int(piece["size"])
        raw = base64.b64decode(piece["data"])
        if not raw and offset < size:
            raise MoveError(f"the source daemon returned no data at offset {offset} of {size}")
        yield offset, piece["data"], raw
        offset += len(raw)


def transfer(src: Endpoint, dst: Endpoint, uuid: str, progress: Progress = _quiet) -> int:
    """Carry the sealed blob from the source daemon to the destination daemon; its size."""
    size = 0
    for offset, data, raw in pieces(src, uuid):
        dst.call("migration.write", uuid=uuid, offset=offset, data=data)
        size = offset + len(raw)
    progress(f"carried {size} bytes of sealed device state")
    return size


def hand_over(src: Endpoint, dst: Endpoint, uuid: str, report: Report, progress: Progress = _quiet,
              timeout: float = 60.0) -> dict[str, Any]:
    """Steps 5: export, carry, import; retried while a daemon is unreachable (restarting)."""
    deadline = time.monotonic() + timeout
    exported = False
    last: Exception | None = None
    while True:
        try:
            if not exported:
                t0 = time.monotonic()
                src.call("migration.export", uuid=uuid)
                report.steps["seal"] = time.monotonic() - t0
                exported = True
            t0 = time.monotonic()
            report.blob_bytes = transfer(src, dst, uuid, progress)
            report.steps["carry"] = time.monotonic() - t0
            t0 = time.monotonic()
            res: dict[str, Any] = dst.call("migration.import", uuid=uuid)
            report.steps["attach"] = time.monotonic() - t0
            return res
        except client.RpcError as e:
            if e.code is not None:  # the daemon answered: no point in retrying
                raise
            last = e
        if time.monotonic() > deadline:
            raise MoveError(f"the hand-over did not complete within {timeout:.0f} s: {last}")
        progress(f"hand-over: {last}; retrying")
        time.sleep(RETRY_SLEEP_S)


def _call_off(src: Endpoint | None, dst: Endpoint | None, uuid: str) -> list[str]:
    """Cancel on both sides after a failure before the source stopped; problems, if any."""
    problems = []
    for ep in (src, dst):
        if ep is None:
            continue
        try:
            ep.call("migration.cancel", uuid=uuid)
        except client.RpcError as e:
            problems.append(f"{ep.describe()}: {e}")
    return problems


def _watch_job(dom: Any, progress: Progress, done: threading.Event) -> None:
    """Progress of a libvirt job (memory copied) every second while it runs."""
    while not done.wait(1.0):
        try:
            info = dom.jobInfo()
        except Exception:  # the domain is gone from the source: the job ended
            return
        total, processed = info[3], info[4]  # memory total, processed (bytes)
        if total:
            progress(f"memory {processed >> 20}/{total >> 20} MiB ({100 * processed // total}%)")


def migrate(dom: Any, dconn: Any, src: Endpoint, dst: Endpoint, *, live: bool = True, persistent: bool = False,
            undefine_source: bool = False, migrate_uri: str | None = None, listen_address: str | None = None,
            dest_key: str | None = None, handover_timeout: float = 60.0,
            progress: Progress = _quiet) -> Report:
    """Move a running domain (a libvirt virDomain) to the libvirt connection ``dconn``."""
    import libvirt

    name, uuid = dom.name(), dom.UUIDString()
    report = Report(name, uuid)
    t_start = time.monotonic()
    try:
        key = peer_key(dst, dest_key)
    except client.RpcError as e:
        raise MoveError(f"the destination daemon ({dst.describe()}): {e}; nothing moved, {name} runs on here") from None
    try:
        begin = src.call("migration.begin", uuid=uuid, peer_key=key)
    except client.RpcError as e:
        raise MoveError(f"the source daemon ({src.describe()}) cannot hand {name} over: {e}; nothing moved") from None
    progress(f"source daemon: {len(begin['records'])} devices to hand over")
    try:
        dst.call("migration.expect", uuid=uuid, name=name, records=begin["records"], sender=begin["sender"])
    except client.RpcError as e:
        _call_off(src, None, uuid)
        raise MoveError(f"the destination daemon refuses {name}: {e}; nothing moved, {name} runs on here") from None
    flags = libvirt.VIR_MIGRATE_PAUSED
    flags |= libvirt.VIR_MIGRATE_LIVE if live else 0
    flags |= libvirt.VIR_MIGRATE_PERSIST_DEST if persistent else 0
    flags |= libvirt.VIR_MIGRATE_UNDEFINE_SOURCE if undefine_source else 0
    params: dict[str, Any] = {}
    if migrate_uri:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = migrate_uri
    if listen_address:
        params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] = listen_address
    progress("libvirt: migrating (the destination stays paused until the devices arrive)")
    done = threading.Event()
    watcher = threading.Thread(target=_watch_job, args=(dom, progress, done), daemon=True)
    watcher.start()
    t0 = time.monotonic()
    try:
        ddom = dom.migrate3(dconn, params, flags)
    except libvirt.libvirtError as e:
        problems = _call_off(src, dst, uuid)
        more = f" (and calling the move off: {'; '.join(problems)})" if problems else ""
        raise MoveError(f"libvirt: {e.get_error_message()}; nothing moved, {name} runs on at the "
                        f"source{more}") from None
    finally:
        done.set()
        watcher.join()
    report.steps["libvirt"] = time.monotonic() - t0
    progress(f"libvirt: done in {report.steps['libvirt']:.1f} s; handing the devices over")
    finish(ddom, src, dst, uuid, report, progress, handover_timeout)
    report.steps["total"] = time.monotonic() - t_start
    return report


def finish(ddom: Any, src: Endpoint, dst: Endpoint, uuid: str, report: Report, progress: Progress = _quiet,
           timeout: float = 60.0) -> None:
    """Steps 5 and 6 (also what ``--resume`` runs after a hand-over that failed part-way)."""
    try:
        res = hand_over(src, dst, uuid, report, progress, timeout)
    except (client.RpcError, MoveError, handover.HandoverError) as e:
        raise MoveError(f"{report.domain} is paused at the destination and its devices' state is kept by the "
                        f"source daemon ({src.describe()}), but the hand-over failed: {e}. Fix the cause, then "
                        f"run: virt-synth migrate --resume {report.uuid} ... with the same endpoints") from None
    report.devices = [{k: d.get(k) for k in ("name", "class", "plugin", "generation", "sessions")}
                      for d in res.get("devices", [])]
    t0 = time.monotonic()
    ddom.resume()
    report.steps["resume"] = time.monotonic() - t0
    try:
        src.call("migration.finish", uuid=uuid)
    except client.RpcError as e:
        progress(f"source daemon: could not remove the old copy ({e}); run virt-synth migrations finish {uuid} there")
    progress(f"{report.domain} runs at the destination")


def save(dom: Any, path: str, daemon: Endpoint, for_daemon: Endpoint | None = None, for_key: str | None = None,
         progress: Progress = _quiet) -> Report:
    """Save a running domain to ``path`` (libvirt's save image) and its devices' sealed state to
    ``path + '.synth'``, sealed to the daemon that will restore it (by default this one)."""
    name, uuid = dom.name(), dom.UUIDString()
    report = Report(name, uuid)
    key = peer_key(for_daemon, for_key) if for_daemon is not None else (
        handover.parse_public(for_key, "--for-key").hex() if for_key else str(daemon.call("daemon.key")["public_key"]))
    daemon.call("migration.begin", uuid=uuid, peer_key=key)
    t0 = time.monotonic()
    try:
        dom.save(path)
    except Exception as e:
        _call_off(daemon, None, uuid)
        raise MoveError(f"libvirt: {e}; nothing saved, {name} runs on") from None
    report.steps["libvirt"] = time.monotonic() - t0
    progress(f"libvirt: saved {name} to {path} in {report.steps['libvirt']:.1f} s")
    t0 = time.monotonic()
    daemon.call("migration.export", uuid=uuid)
    blob = b"".join(raw for _, _, raw in pieces(daemon, uuid))
    tmp = path + ".synth.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path + ".synth")
    report.blob_bytes = len(blob)
    report.steps["seal"] = time.monotonic() - t0
    daemon.call("migration.finish", uuid=uuid)
    progress(f"devices' state sealed to daemon key {key[:16]}... in {path}.synth ({len(blob)} bytes)")
    return report


def restore(conn: Any, path: str, daemon: Endpoint, progress: Progress = _quiet) -> Report:
    """Restore a domain saved by ``save`` (on this host or another)."""
    import libvirt

    try:
        with open(path + ".synth", "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise MoveError(f"{path}.synth is missing: the devices' state of a save made by virt-synth save "
                        "lies next to the image") from None
    head = handover.header_of(blob)
    uuid, name = str(head.get("uuid")), str(head.get("name"))
    report = Report(name, uuid)
    daemon.call("migration.expect", uuid=uuid, name=name, records=head.get("records"), sender=head.get("sender"))
    try:
        step = 256 * 1024
        for off in range(0, len(blob), step):
            daemon.call("migration.write", uuid=uuid, offset=off, data=base64.b64encode(blob[off:off + step]).decode())
        t0 = time.monotonic()
        conn.restoreFlags(path, None, libvirt.VIR_DOMAIN_SAVE_PAUSED)
        report.steps["libvirt"] = time.monotonic() - t0
    except (libvirt.libvirtError, client.RpcError) as e:
        _call_off(None, daemon, uuid)
        msg = e.get_error_message() if isinstance(e, libvirt.libvirtError) else str(e)
        raise MoveError(f"cannot restore {name}: {msg}; nothing restored") from None
    t0 = time.monotonic()
    res = daemon.call("migration.import", uuid=uuid)
    report.steps["attach"] = time.monotonic() - t0
    report.devices = [{k: d.get(k) for k in ("name", "class", "plugin", "generation", "sessions")}
                      for d in res.get("devices", [])]
    conn.lookupByUUIDString(uuid).resume()
    report.blob_bytes = len(blob)
    progress(f"{name} restored and running, devices served by {daemon.describe()}")
    return report
