# SPDX-License-Identifier: Apache-2.0
"""JSON-RPC 2.0 client for virt-synthd over its Unix socket, for the CLI and the inventory. Light
(socket and json): ``virt-synth`` subcommands that only ask the daemon start fast. The libvirt
hook does not import it: it speaks the same protocol with ``_socket`` alone (hook/run.py)."""

from __future__ import annotations

import itertools
import json
import os
import socket
from typing import Any

from libvirt_synth import defaults, errors


class RpcError(errors.SynthError):
    """The daemon answered with an error, or could not be reached (code None)."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


def socket_path(explicit: str | None = None) -> str:
    """The socket to call: the one given, else $LIBVIRT_SYNTH_SOCKET, else the default."""
    return explicit or os.environ.get(defaults.SOCKET_ENV) or defaults.SOCKET


class Client:
    """One connection; calls are sequential. Use as a context manager or call close()."""

    def __init__(self, path: str | None = None, timeout: float = 30.0) -> None:
        self.path = socket_path(path)
        self._ids = itertools.count(1)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
        except FileNotFoundError:
            self._sock.close()
            raise RpcError(f"virt-synthd is not running (no socket at {self.path})") from None
        except ConnectionRefusedError:
            self._sock.close()
            raise RpcError(f"virt-synthd is not running (connection refused at {self.path})") from None
        except PermissionError:
            self._sock.close()
            raise RpcError(f"permission denied connecting to virt-synthd at {self.path}") from None
        except OSError as e:
            self._sock.close()
            raise RpcError(f"cannot reach virt-synthd at {self.path}: {e.strerror}") from None
        self._buf = b""

    def call(self, method: str, **params: Any) -> Any:
        req = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            self._sock.sendall(json.dumps(req).encode() + b"\n")
            while b"\n" not in self._buf:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise RpcError("virt-synthd closed the connection")
                self._buf += chunk
        except TimeoutError:
            raise RpcError(f"virt-synthd did not answer {method} in time") from None
        except OSError as e:
            raise RpcError(f"lost the connection to virt-synthd: {e.strerror}") from None
        line, _, self._buf = self._buf.partition(b"\n")
        resp = json.loads(line)
        if "error" in resp:
            err = resp["error"]
            raise RpcError(err.get("message", "error"), err.get("code"), err.get("data"))
        return resp.get("result")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def call(method: str, socket_file: str | None = None, timeout: float = 30.0, **params: Any) -> Any:
    """One call on a fresh connection."""
    with Client(socket_file, timeout) as c:
        return c.call(method, **params)
