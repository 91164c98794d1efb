# SPDX-License-Identifier: Apache-2.0
"""virt-synthd and its supervisor: systemd's notification protocol (sd_notify, written here:
one datagram to $NOTIFY_SOCKET) for readiness, reloads, stopping and the watchdog, and what a
configuration reload (SIGHUP) may change while the daemon runs.

Ready means: the socket answers and every region of the registry is re-attached. The watchdog
is fed only while the event loop runs and every shared worker thread makes progress, so a
daemon stuck in either is restarted by systemd (WatchdogSec= in the unit)."""

from __future__ import annotations

import os
import socket
from typing import Any

from libvirt_synth import log

# Configuration fields a reload applies at once (for what is created from then on); the others
# need a restart, and a reload that changes them says so.
LIVE = ("plugin_pins", "quotas", "migration_peers", "group", "qemu_user", "isolation_uids", "isolation_group",
        "sla_window_s")


def notify(message: str) -> bool:
    """Send one sd_notify message (e.g. "READY=1"); False if no supervisor listens."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # the abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as s:
            s.connect(path)
            s.send(message.encode())  # never waits: a supervisor that does not read must not stop the daemon
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        log.warning("cannot notify the supervisor at %s: %s", path, e.strerror)
        return False


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of what systemd asked for), or None for no watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 2e6, 0.01)
    except ValueError:
        return None


class Progress:
    """Which shared workers made no progress for ``limit`` seconds. A worker that runs makes poll
    passes (an idle one still several times a second); a parked one makes none, and its progress is
    the watcher's rounds of looks at its devices (``watch_rounds``), unless it has no device, when
    there is nothing to watch and nothing to be late for."""

    def __init__(self, limit: float = 5.0) -> None:
        self.limit = limit
        self.last: list[tuple[tuple[str, int], float]] = []  # (progress mark, when it last changed)

    def stalled(self, workers: list[dict[str, Any]], now: float, watch_rounds: int = 0) -> list[int]:
        marks = [(("parked", watch_rounds) if w.get("parked") else ("passes", int(w["passes"]))) for w in workers]
        if len(self.last) != len(marks):
            self.last = [(m, now) for m in marks]
        self.last = [(m, now if m != old or (w.get("parked") and not w.get("devices")) else since)
                     for m, w, (old, since) in zip(marks, workers, self.last, strict=True)]
        return [i for i, (_, since) in enumerate(self.last) if now - since > self.limit]


def apply(service: Any, new: Any) -> tuple[list[str], list[str]]:
    """Put a reloaded configuration in force: (fields applied, fields that need a restart)."""
    old = service.cfg
    changed = [f for f in vars(new) if getattr(new, f) != getattr(old, f)]
    live = [f for f in changed if f in LIVE]
    later = [f for f in changed if f not in LIVE]
    for f in live:
        setattr(old, f, getattr(new, f))
    return live, later
