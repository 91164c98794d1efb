# SPDX-License-Identifier: Apache-2.0
"""The daemon's registry: SQLite in the state directory (WAL, one transaction per change).

It holds what must survive a daemon restart: every domain and device the daemon serves, with
everything needed to re-attach the device's region (class, path, layout, plugin, quotas) and the
metadata of its crypto sessions. Session keys never come here: they live in the per-device key
vault files (root-only, see the C data path), never in the region and never in logs."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS domains (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    name TEXT PRIMARY KEY,
    domain_uuid TEXT NOT NULL REFERENCES domains(uuid) ON DELETE CASCADE,
    dev_class TEXT NOT NULL,
    region_path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    queues INTEGER NOT NULL,
    ring_entries INTEGER NOT NULL,
    plugin TEXT,
    quotas TEXT NOT NULL DEFAULT '{}',
    spec TEXT NOT NULL DEFAULT '{}',
    generation INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_by_domain ON devices(domain_uuid);
CREATE TABLE IF NOT EXISTS sessions (
    device TEXT NOT NULL REFERENCES devices(name) ON DELETE CASCADE,
    session_id INTEGER NOT NULL,
    alg TEXT NOT NULL,
    iv_gen INTEGER NOT NULL,
    plugin TEXT NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (device, session_id)
);
"""


@dataclass
class DeviceRecord:
    name: str
    domain_uuid: str
    dev_class: str
    region_path: str
    size: int
    queues: int
    ring_entries: int
    plugin: str | None = None
    quotas: dict[str, int] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)  # capabilities, KPIs, options: as the metadata said
    generation: int = 1
    created: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Registry:
    """Thread-safe wrapper over one SQLite connection."""

    def __init__(self, path: str) -> None:
        self.path = path
        new = not os.path.exists(path)
        old_umask = os.umask(0o077)  # the database is for the daemon's eyes only
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        finally:
            os.umask(old_umask)
        if new:
            os.chmod(path, 0o600)
        self._lock = threading.RLock()
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(SCHEMA)  # idempotent; executescript manages its own transaction
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- domains and devices ----

    def add_domain(self, uuid: str, name: str, devices: list[DeviceRecord]) -> None:
        """Record a domain and its devices in one transaction (replacing a previous record)."""
        now = time.time()
        with self.transaction() as db:
            db.execute("DELETE FROM domains WHERE uuid = ?", (uuid,))
            db.execute("INSERT INTO domains VALUES (?, ?, ?)", (uuid, name, now))
            for d in devices:
                db.execute(
                    "INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (d.name, uuid, d.dev_class, d.region_path, d.size, d.queues, d.ring_entries, d.plugin,
                     json.dumps(d.quotas), json.dumps(d.spec), d.generation, d.created or now),
                )

    def remove_domain(self, uuid: str) -> bool:
        with self.transaction() as db:
            cur = db.execute("DELETE FROM domains WHERE uuid = ?", (uuid,))
            return cur.rowcount > 0

    def domains(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT uuid, name, created FROM domains ORDER BY created").fetchall()
        return [dict(r) for r in rows]

    def domain(self, uuid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT uuid, name, created FROM domains WHERE uuid = ?", (uuid,)).fetchone()
        return dict(row) if row else None

    def devices(self, domain_uuid: str | None = None) -> list[DeviceRecord]:
        q = "SELECT * FROM devices"
        args: tuple[Any, ...] = ()
        if domain_uuid is not None:
            q += " WHERE domain_uuid = ?"
            args = (domain_uuid,)
        with self._lock:
            rows = self._db.execute(q + " ORDER BY created, name", args).fetchall()
        return [self._record(r) for r in rows]

    def device(self, name: str) -> DeviceRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM devices WHERE name = ?", (name,)).fetchone()
        return self._record(row) if row else None

    def replace_sessions(self, device: str, sessions: list[dict[str, Any]]) -> None:
        """Record a device's live crypto sessions (metadata only: keys stay in its vault)."""
        now = time.time()
        with self.transaction() as db:
            db.execute("DELETE FROM sessions WHERE device = ?", (device,))
            db.executemany("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                           [(device, s["id"], s["alg"], int(s["iv_gen"]), s["plugin"], now) for s in sessions])

    def sessions(self, device: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT session_id, alg, iv_gen, plugin, seen FROM sessions WHERE device = ? "
                                    "ORDER BY session_id", (device,)).fetchall()
        return [dict(r) for r in rows]

    def set_generation(self, name: str, generation: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE devices SET generation = ? WHERE name = ?", (generation, name))

    @staticmethod
    def _record(r: sqlite3.Row) -> DeviceRecord:
        return DeviceRecord(
            name=r["name"], domain_uuid=r["domain_uuid"], dev_class=r["dev_class"], region_path=r["region_path"],
            size=r["size"], queues=r["queues"], ring_entries=r["ring_entries"], plugin=r["plugin"],
            quotas=json.loads(r["quotas"]), spec=json.loads(r["spec"]), generation=r["generation"],
            created=r["created"],
        )
