# SPDX-License-Identifier: Apache-2.0
"""A fleet of host inventories, read for placement: each reduced once to a ``Host`` (per
capability, a row of what is free, the capacity, what one worker core serves, latency, sessions
per device), kept in an index between runs so that only the files that changed are read again.

A cold load's time is mostly parsing (only the members placement needs: model.read_head), then
this precompute; a warm one is a scan of the directories and a read of the index. See
docs/inventory.md, and bench/place for the figures.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from libvirt_synth import errors
from libvirt_synth.inventory import model

# (free throughput Gb/s, free ops/s, capacity Gb/s, capacity ops/s, latency us, sessions per device,
#  Gb/s of one worker core, ops/s of one worker core); for packet I/O the ops are packets.
Row = tuple[float | None, float | None, float | None, float | None, float | None, float | None, float | None,
            float | None]
# The rate KPI each class is counted in (capacity, committed and asked alike).
OPS_KPI = {"packet": "packets_per_s"}


_EMPTY: dict[str, Any] = {}


class Host(NamedTuple):
    """What placement needs of one inventory, precomputed (a tuple: cheap to build by the
    thousand, and what the index stores)."""

    name: str
    caps: dict[str, Row]
    source: str = ""

    @classmethod
    def from_inventory(cls, doc: dict[str, Any], source: str = "") -> Host:
        # What model.number() says of each value, with the common cases (None, a finite float)
        # inline: this runs for every capability of every host of a cold load.
        num = model.number
        c = doc.get("committed")
        used = c.get("by_capability") if isinstance(c, dict) else None
        if not isinstance(used, dict):
            used = _EMPTY
        caps: dict[str, Row] = {}
        for cap, e in doc["capacity"].items():
            if not isinstance(e, dict):
                continue
            u = used.get(cap, _EMPTY)
            if not isinstance(u, dict):
                u = _EMPTY
            ops_kpi = "packets_per_s" if e.get("class") == "packet" else "ops_per_s"  # OPS_KPI
            gbps = e.get("throughput_gbps")
            ops = e.get(ops_kpi)
            core = e.get("gbps_per_core")
            lat = e.get("latency_us")
            per_dev = e.get("sessions_per_device")
            if gbps is not None and (type(gbps) is not float or gbps - gbps):  # nan - nan, inf - inf: nan
                gbps = num(gbps)
            if ops is not None and (type(ops) is not float or ops - ops):
                ops = num(ops)
            if core is not None and (type(core) is not float or core - core):
                core = num(core)
            if lat is not None and (type(lat) is not float or lat - lat):
                lat = num(lat)
            if per_dev is not None and (type(per_dev) is not float or per_dev - per_dev):
                per_dev = num(per_dev)
            if gbps is not None:
                took = u.get("throughput_gbps")
                free_gbps: float | None = gbps - (num(took) or 0.0) if took is not None else gbps
            else:
                free_gbps = None
            if ops is not None:
                took = u.get(ops_kpi)
                free_ops: float | None = ops - (num(took) or 0.0) if took is not None else ops
            else:
                free_ops = None
            caps[cap] = (free_gbps, free_ops, gbps, ops, lat, per_dev, core,
                         ops * core / gbps if ops is not None and core is not None and gbps else None)
        return cls(str(doc["host"]), caps, source)


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Bulk work that allocates many small acyclic objects (a verdict per host, a host per inventory)
    runs with the cyclic garbage collector paused: its passes over the whole fleet, triggered by
    allocation counts alone, cost 3-4 times the work itself. Restored on exit, with what is
    tracked moved to the oldest generation (freeze, then unfreeze): otherwise the first
    allocation after it would start a young collection over everything allocated meanwhile (30-40
    ms after a cold load of 10,000 inventories, bench/place). Cyclic garbage among it is only
    collected later, by a full collection."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


@dataclass
class Fleet:
    hosts: list[Host]
    unreadable: list[tuple[str, str]]  # (path, why)
    parsed: int = 0      # documents parsed in this load
    from_index: int = 0  # hosts taken from the index

    def problems(self) -> list[str]:
        return [f"{p}: {why}" for p, why in self.unreadable]


INDEX_VERSION = 3
#: How recent a file's last change (mtime or ctime) may be, against the clock when the index was
#: taken, for its entry still to be trusted: a file rewritten within one timestamp tick of the
#: scan keeps its mtime and ctime (Linux stamps files from a clock that moves in ticks of a
#: jiffy; FAT's are 2 s), so such an entry is parsed again on the next load, as git does with
#: "racily clean" files.
RACY_NS = 2_000_000_000

# (mtime_ns, ctime_ns, size, inode) of a file: any write changes the ctime, a rename the inode.
Key = tuple[int, int, int, int]


def _files(paths: Sequence[str]) -> list[tuple[str, Key]]:
    """(path, key) of every inventory, sorted: files given, and *.json of directories given (one
    that vanishes while this runs is left out)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            with os.scandir(p) as it:
                for e in it:
                    if e.name.endswith(".json") and not e.name.startswith(".") and e.is_file():
                        try:
                            st = e.stat()
                        except FileNotFoundError:
                            continue
                        out.append((e.path, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)))
        elif os.path.exists(p):
            st = os.stat(p)
            out.append((p, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)))
        else:
            raise errors.NotFoundError(f"inventory {p} does not exist (give a directory of <host>.json "
                                          "documents or a file)")
    out.sort()
    return out


def _parse(path: str, size: int) -> tuple[str, Any]:
    """One inventory file -> ("ok", host as a plain tuple), ("error", why) or ("gone", path).
    Only the members placement needs are read (model.read_head: the writer puts them first, in
    the first few KiB)."""
    try:
        doc = model.check(model.read_head(path, size), path)
        return "ok", tuple(Host.from_inventory(doc, path))
    except FileNotFoundError:
        return "gone", path
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return "error", str(e).removeprefix(f"{path}: ")


def load(paths: Sequence[str], index: str | None = None) -> Fleet:
    """Every inventory under ``paths`` (directories of ``*.json``, or files). With ``index`` (a file
    path), the precomputed hosts of unchanged files are taken from it (same mtime, ctime, size and
    inode, and not changed within RACY_NS of the scan that indexed them), and it is rewritten when
    anything changed, appeared or disappeared. The index is this Python's ``marshal`` format
    (plain data, no code), about ten times faster to read than JSON; a missing, corrupt or stale
    one is rebuilt."""
    with no_gc():
        return _load(paths, index)


def _load(paths: Sequence[str], index: str | None = None) -> Fleet:
    stamp = time.time_ns()  # before the scan: a change after this shows in a later one
    files = _files(paths)
    cached, trusted_before, later, whole = _read_index(index) if index else ({}, 0, {}, False)
    fresh: dict[str, Any] = {}
    todo = []
    for path, key in files:
        hit = cached.get(path)
        if hit is not None and hit[0] == key and max(key[0], key[1]) < later.get(path, trusted_before):
            fresh[path] = hit
        else:
            todo.append((path, key))
    news: dict[str, Any] = {}
    for path, key in todo:
        status, value = _parse(path, key[2])
        if status != "gone":
            fresh[path] = news[path] = (key, status, value)
    fleet = Fleet([], [], parsed=len(todo), from_index=len(files) - len(todo))
    make = Host._make
    for path, _ in files:
        entry = fresh.get(path)
        if entry is None:
            continue
        if entry[1] == "ok":
            fleet.hosts.append(make(entry[2]))
        else:
            fleet.unreadable.append((path, entry[2]))
    if index and (todo or fresh.keys() != cached.keys()):
        if whole and cached.keys() <= fresh.keys() and len(later) + len(news) <= max(JOURNAL_MIN, len(fresh) // 8):
            _append_journal(index, stamp - RACY_NS, news)
        else:
            _write_index(index, stamp - RACY_NS, fresh)
    return fleet


def _index_tag() -> str:
    import sys

    return f"libvirt-synth place index {INDEX_VERSION} python {sys.version_info[0]}.{sys.version_info[1]}"


#: The index is a file of every entry, and beside it (``<index>.journal``) the entries parsed
#: again since, appended: a load that parsed a few files appends them instead of rewriting the
#: whole index, until the journal holds more than an eighth of the entries (or JOURNAL_MIN).
#: Each journal record is its length (8 bytes, little-endian) and then a marshal'd document as the
#: index's, with the scan's own trusted_before. A record cut short or corrupt ends the journal: the
#: entries after it are parsed again, as are a stale record's (each entry carries its file's key).
JOURNAL_MIN = 64


def _valid(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("tag") == _index_tag() and isinstance(doc.get("files"), dict) \
        and isinstance(doc.get("trusted_before"), int)


def _read_index(path: str) -> tuple[dict[str, Any], int, dict[str, int], bool]:
    """The entries of an index and its journal, the time before which a change is sure to show in
    the keys of the index's entries, that time for each entry of the journal, and whether both were
    read whole (a record appended after a damaged one would never be read); nothing when the index
    is missing, corrupt or of another version."""
    import marshal

    try:
        with open(path, "rb") as f:
            doc = marshal.loads(f.read())
        if not _valid(doc):
            return {}, 0, {}, False
    except (OSError, EOFError, ValueError, TypeError):
        return {}, 0, {}, False
    files, later = doc["files"], {}
    try:
        with open(path + ".journal", "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    at = 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at:at + 8], "little")
        if at + 8 + size > len(data):
            break
        try:
            rec = marshal.loads(data[at + 8:at + 8 + size])
        except (EOFError, ValueError, TypeError):
            break
        if not _valid(rec):
            break
        files.update(rec["files"])
        later.update(dict.fromkeys(rec["files"], rec["trusted_before"]))
        at += 8 + size
    return files, doc["trusted_before"], later, at == len(data)


def _doc(trusted_before: int, files: dict[str, Any]) -> bytes:
    import marshal

    # Version 2: no back-references, which cost more to write than they save on entries
    # built fresh (about 2.5x, bench/place); reading is as fast.
    return marshal.dumps({"tag": _index_tag(), "trusted_before": trusted_before, "files": files}, 2)


def _write_index(path: str, trusted_before: int, files: dict[str, Any]) -> None:
    import tempfile

    d = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".place-index-", dir=d)
        with os.fdopen(fd, "wb") as f:
            f.write(_doc(trusted_before, files))
        os.replace(tmp, path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + ".journal")  # in the index now
    except (OSError, ValueError) as e:
        _cannot(path, e)


def _append_journal(path: str, trusted_before: int, files: dict[str, Any]) -> None:
    blob = _doc(trusted_before, files)
    try:
        fd = os.open(path + ".journal", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, len(blob).to_bytes(8, "little") + blob)  # one write: appended whole
        finally:
            os.close(fd)
    except (OSError, ValueError) as e:
        _cannot(path + ".journal", e)


def _cannot(path: str, e: Exception) -> None:
    from libvirt_synth import log

    log.warning("cannot write the placement index %s: %s", path, e)


def default_index(paths: Sequence[str]) -> str:
    """The index file for a set of inventory paths, in the cache directory."""
    import hashlib

    from libvirt_synth.inventory.plugins import default_cache_dir

    key = hashlib.sha256("\0".join(os.path.realpath(p) for p in paths).encode()).hexdigest()[:16]
    return os.path.join(default_cache_dir(), f"place-index-{key}.marshal")
