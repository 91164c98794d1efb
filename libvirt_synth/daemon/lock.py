# SPDX-License-Identifier: Apache-2.0
"""One daemon per state directory: an exclusive lock on ``<state_dir>/virt-synthd.pid``, held for
the daemon's life (the kernel drops it when the process dies, however it dies). The file holds the
owner's pid, so that a second daemon can say whom it found."""

from __future__ import annotations

import fcntl
import os

from libvirt_synth import errors

LOCK_NAME = "virt-synthd.pid"


class StateLock:
    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, LOCK_NAME)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise BusyError naming the daemon that has it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise errors.BusyError(f"virt-synthd is already running (pid {owner}) with state "
                                   f"directory {os.path.dirname(self.path)}; stop it first, or give this one "
                                   "its own --state-dir, --socket and --region-dir") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock back. The file stays: unlinking it would let a daemon that opened it
        before the unlink and one that opens it after both hold 'the' lock."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None
