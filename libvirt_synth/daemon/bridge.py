# SPDX-License-Identifier: Apache-2.0
"""The remote end of an ssh:// connection (client.py): copy what arrives on one file descriptor
(ssh's stdin) to the daemon's socket and the daemon's answers to another (ssh's stdout), bytes as
they are, until either side closes, as libvirt's virt-ssh-helper or ``nc -U`` do. The daemon sees
the bridge as its caller: SO_PEERCRED names the user ssh logged in as."""

from __future__ import annotations

import contextlib
import os
import select
import socket

from libvirt_synth.daemon import client

CHUNK = 65536
# What poll reports for a descriptor that is gone: stdout's reader closed it, or stdin was closed.
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


def relay(path: str, stdin: int = 0, stdout: int = 1, timeout: float = 10.0) -> None:
    """Connect to the daemon's socket at path (RpcError if it cannot be reached, timeout seconds
    at most) and copy stdin to it and its answers to stdout. Returns when stdout's reader goes
    away, or when the daemon closes after stdin's end (the daemon answers what it has read,
    then closes); RpcError if the daemon closes while stdin is still open."""
    sock = client.connect_unix(path, timeout)
    try:
        sock.settimeout(None)
        _copy(sock, stdin, stdout, path)
    finally:
        sock.close()


def _copy(sock: socket.socket, stdin: int, stdout: int, path: str) -> None:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(stdin, select.POLLIN)
    if stdout != stdin:
        poller.register(stdout, 0)  # errors only: POLLERR once nobody reads what we write
    reading = True
    while True:
        for fd, event in poller.poll():
            if fd == sock.fileno():
                data = sock.recv(CHUNK)
                if not data:
                    if reading:
                        raise client.RpcError(f"virt-synthd at {path} closed the connection")
                    return
                if not _write_all(stdout, data):
                    return
            elif fd == stdin and reading:
                data = b""
                if event & select.POLLIN or not event & select.POLLNVAL:
                    with contextlib.suppress(OSError):
                        data = os.read(stdin, CHUNK)
                if data:
                    try:
                        sock.sendall(data)
                    except OSError:  # the daemon went: its end of the socket says why, if it can
                        raise client.RpcError(f"virt-synthd at {path} closed the connection") from None
                else:  # stdin's end: the daemon answers what it has, then closes
                    reading = False
                    poller.unregister(stdin)
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_WR)
            elif fd == stdout and event & _GONE:
                return


def _write_all(fd: int, data: bytes) -> bool:
    """Write all of data; False if fd's reader has gone."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True
