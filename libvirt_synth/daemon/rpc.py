# SPDX-License-Identifier: Apache-2.0
"""JSON-RPC 2.0 over a Unix stream socket, one JSON document per line. Callers are identified
with SO_PEERCRED: methods marked as changing state are allowed to root and to members of the
configured group; the others to anyone who can connect."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import inspect
import json
import os
import pwd
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libvirt_synth import errors, log
from libvirt_synth.daemon import protocol

MAX_REQUEST = 1 << 20


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int

    def describe(self) -> str:
        try:
            user = pwd.getpwuid(self.uid).pw_name
        except KeyError:
            user = str(self.uid)
        return f"pid {self.pid} ({user})"


def peer_of(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


def mutating(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a service method as changing state (root or the configured group only)."""
    fn.__synth_mutating__ = True  # type: ignore[attr-defined]
    return fn


def group_members(group: str | None) -> tuple[int | None, set[str]]:
    if not group:
        return None, set()
    try:
        g = grp.getgrnam(group)
    except KeyError:
        raise errors.NotFoundError(f"group {group!r} (allowed to change state) does not exist") from None
    return g.gr_gid, set(g.gr_mem)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def allowed_to_change(peer: Peer, group: str | None) -> bool:
    if peer.uid == 0 or peer.uid == os.getuid():
        return True
    gid, members = group_members(group)
    if gid is None:
        return False
    if peer.gid == gid:
        return True
    try:
        return pwd.getpwuid(peer.uid).pw_name in members
    except KeyError:
        return False


ERROR_CODES: list[tuple[type[BaseException], int]] = [
    (errors.PermissionError, protocol.PERMISSION_DENIED),
    (errors.NotFoundError, protocol.NOT_FOUND),
    (errors.NotSupportedError, protocol.NOT_SUPPORTED),
    (errors.ValueError, protocol.INVALID_VALUE),
    (errors.SynthError, protocol.DEVICE_ERROR),
]


class RpcServer:
    def __init__(self, service: Any, path: str, group: str | None) -> None:
        self.service = service
        self.path = path
        self.group = group
        self.server: asyncio.AbstractServer | None = None
        self._bound: tuple[int, int] | None = None
        self.methods: dict[str, Callable[..., Any]] = {}
        for _name, fn in inspect.getmembers(service, inspect.ismethod):
            rpc_name = getattr(fn, "__synth_rpc__", None)
            if rpc_name:
                self.methods[rpc_name] = fn

    def claim(self) -> None:
        """Make sure the socket path is free: a socket nobody answers on is left by a daemon that
        died and goes; one that answers belongs to a running daemon, and this one refuses."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        if not os.path.lexists(self.path):
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)  # stale
            return
        else:
            owner = peer_of(probe).describe()
        finally:
            probe.close()
        raise errors.BusyError(f"another virt-synthd ({owner}) answers on {self.path}; stop it "
                               "first, or give this one its own --socket")

    async def start(self) -> None:
        self.claim()
        self.server = await asyncio.start_unix_server(self._client, path=self.path, limit=MAX_REQUEST)
        st = os.stat(self.path)
        self._bound = (st.st_dev, st.st_ino)
        # Anyone may connect and read; changing state is checked per call.
        os.chmod(self.path, 0o666)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        # Only the socket this server bound goes: another daemon's stays where it is.
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._bound:
                os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        peer = peer_of(sock)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._send(writer, self._error(None, protocol.INVALID_REQUEST, "request too large"))
                    break
                if not line:
                    break
                resp = await self._handle(line, peer)
                if resp is not None:
                    await self._send(writer, resp)
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, resp: dict[str, Any]) -> None:
        writer.write(json.dumps(resp, default=str).encode() + b"\n")
        await writer.drain()

    @staticmethod
    def _error(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
        err: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        return {"jsonrpc": "2.0", "id": rid, "error": err}

    async def _handle(self, line: bytes, peer: Peer) -> dict[str, Any] | None:
        try:
            req = json.loads(line)
        except ValueError:
            return self._error(None, protocol.PARSE_ERROR, "parse error: not JSON")
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            return self._error(req.get("id") if isinstance(req, dict) else None, protocol.INVALID_REQUEST,
                               "invalid request: expected a JSON-RPC 2.0 object with a method")
        rid = req.get("id")
        method = req["method"]
        params = req.get("params", {})
        if not isinstance(params, dict):
            return self._error(rid, protocol.INVALID_PARAMS, "params must be an object (named parameters)")
        fn = self.methods.get(method)
        if fn is None:
            return self._error(rid, protocol.METHOD_NOT_FOUND, f"no method {method!r}; methods: "
                               f"{', '.join(sorted(self.methods))}")
        if getattr(fn, "__synth_mutating__", False) and not allowed_to_change(peer, self.group):
            log.warning("refused %s from %s", method, peer.describe())
            who = "root" if os.getuid() == 0 else f"root, {_user_name(os.getuid())}"
            who += f" or members of group {self.group}" if self.group else ""
            return self._error(rid, protocol.PERMISSION_DENIED,
                               f"permission denied: {method} changes state; only {who} may call it")
        try:
            inspect.signature(fn).bind(**params)
        except TypeError as e:
            return self._error(rid, protocol.INVALID_PARAMS, f"invalid params for {method}: {e}")
        try:
            if getattr(fn, "__synth_mutating__", False):
                result = await asyncio.get_running_loop().run_in_executor(None, lambda: fn(**params))
            else:
                result = fn(**params)
        except Exception as e:  # every failure becomes an error answer, never a dead daemon
            for cls, code in ERROR_CODES:
                if isinstance(e, cls):
                    return self._error(rid, code, str(e))
            log.exception("internal error in %s", method)
            return self._error(rid, protocol.INTERNAL_ERROR, f"internal error in {method}: {e}")
        if rid is None:
            return None  # a notification
        return {"jsonrpc": "2.0", "id": rid, "result": result}


def rpc(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Expose a service method under a JSON-RPC method name."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__synth_rpc__ = name  # type: ignore[attr-defined]
        return fn

    return deco
