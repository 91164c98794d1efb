# SPDX-License-Identifier: Apache-2.0
"""JSON-RPC 2.0 client for virt-synthd, for the CLI, the inventory and the orchestration of moves.
It reaches the daemon of this host over its Unix socket, or another host's over ssh:

    ssh://[user@]host[:port][/path/to/remote.sock][?keyfile=..&known_hosts=..&no_verify=1
                                                    &command=..&ssh=..]

runs ``ssh -T -o BatchMode=yes ... [user@]host -- virt-synth bridge --socket SOCK`` and speaks the
same lines over its stdin and stdout (docs/daemon.md, "Reaching a remote daemon"). Light (socket and
json; ssh's modules are imported only for an ssh:// address): ``virt-synth`` subcommands that only
ask the daemon start fast. The libvirt hook does not import it: it speaks the same protocol with
``_socket`` alone (hook/run.py)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import socket
from typing import IO, Any, NamedTuple

from libvirt_synth import defaults, errors


class RpcError(errors.SynthError):
    """The daemon answered with an error, or could not be reached (code None)."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


def socket_path(explicit: str | None = None) -> str:
    """The daemon to call: the socket path or ssh:// address given, else $LIBVIRT_SYNTH_SOCKET,
    else the default socket."""
    return explicit or os.environ.get(defaults.SOCKET_ENV) or defaults.SOCKET


def connect_unix(path: str, timeout: float) -> socket.socket:
    """A connection to the daemon's socket at path; RpcError saying why there is none."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except FileNotFoundError:
        sock.close()
        raise RpcError(f"virt-synthd is not running (no socket at {path})") from None
    except ConnectionRefusedError:
        sock.close()
        raise RpcError(f"virt-synthd is not running (connection refused at {path})") from None
    except PermissionError:
        sock.close()
        raise RpcError(f"permission denied connecting to virt-synthd at {path}") from None
    except OSError as e:
        sock.close()
        raise RpcError(f"cannot reach virt-synthd at {path}: {e.strerror}") from None
    return sock


# -- ssh:// ----------------------------------------------------------------------------------------

SSH_SCHEME = "ssh"
#: What the remote host runs, followed by ``--socket SOCK``; a command line for its shell.
BRIDGE_COMMAND = "virt-synth bridge"
SSH_BINARY = "ssh"
SSH_PARAMS = ("keyfile", "known_hosts", "no_verify", "command", "ssh")
URI_FORM = "ssh://[user@]host[:port][/path/to/remote.sock][?keyfile=PATH&known_hosts=PATH&no_verify=1" \
           "&command=CMD&ssh=PATH]"
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# How long close() lets ssh end by itself (the remote bridge sees stdin's end, then the daemon's).
_CLOSE_GRACE = 2.0
# Remote shells exit so when the command is missing (127) or not executable (126).
_NOT_FOUND = (126, 127)


def is_uri(where: str) -> bool:
    """Whether where is an address such as ssh://host/ rather than a socket path."""
    return _URI.match(where) is not None


class SshTarget(NamedTuple):
    """A remote daemon, as an ssh:// address names it; every field filled in."""

    host: str
    user: str | None
    port: int | None
    socket: str  # on the remote host
    keyfile: str | None
    known_hosts: str | None
    verify: bool  # StrictHostKeyChecking: an unknown or changed host key fails
    command: str
    ssh: str

    @property
    def destination(self) -> str:
        """user@host:port, for messages."""
        dest = f"{self.user}@{self.host}" if self.user else self.host
        return f"{dest}:{self.port}" if self.port else dest

    def remote_command(self) -> str:
        import shlex

        return f"{self.command} --socket {shlex.quote(self.socket)}"

    def argv(self, timeout: float) -> list[str]:
        """The ssh command line: batch mode (never a prompt), no tty, no escape character."""
        argv = [self.ssh, "-T", "-e", "none", "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={max(1, int(timeout + 0.999))}"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.keyfile:
            argv += ["-i", _ssh_path(self.keyfile), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={_ssh_quote(_ssh_path(self.known_hosts))}"]
        if not self.verify:
            argv += ["-o", "StrictHostKeyChecking=no"]
        dest = f"{self.user}@{self.host}" if self.user else self.host
        return [*argv, dest, "--", self.remote_command()]


def _ssh_path(path: str) -> str:
    """A file name as ssh reads it in IdentityFile and UserKnownHostsFile: % starts a token."""
    return path.replace("%", "%%")


def _ssh_quote(value: str) -> str:
    """An -o value with blanks, quoted (UserKnownHostsFile takes a list of files)."""
    return f'"{value}"' if any(c.isspace() for c in value) else value


def parse_uri(uri: str) -> SshTarget:
    """The remote daemon an ssh:// address names; RpcError saying what is wrong with it."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    def bad(what: str) -> RpcError:
        return RpcError(f"{uri}: {what}; expected {URI_FORM}, e.g. ssh://root@host2/?keyfile=/root/.ssh/id_ed25519")

    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as e:
        raise bad(str(e)) from None
    if parts.scheme.lower() != SSH_SCHEME:
        raise bad(f"unsupported transport {parts.scheme!r}")
    if not parts.hostname:
        raise bad("no host")
    if parts.hostname.startswith("-"):
        raise bad(f"bad host {parts.hostname!r}")
    if parts.password is not None:
        raise bad("a password in the address is not supported (ssh runs in batch mode): use a key, ?keyfile=PATH")
    if parts.fragment:
        raise bad(f"unexpected fragment #{parts.fragment}")
    path = unquote(parts.path)
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True) if parts.query else []
    except ValueError as e:
        raise bad(str(e)) from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key not in SSH_PARAMS:
            raise bad(f"unknown parameter {key!r} (parameters: {', '.join(SSH_PARAMS)})")
        if key in params:
            raise bad(f"parameter {key!r} given twice")
        if not value.strip():
            raise bad(f"parameter {key!r} is empty")
        params[key] = value
    if params.get("no_verify", "0") not in ("0", "1"):
        raise bad(f"no_verify={params['no_verify']}: expected 1 (do not check the host key) or 0")
    if "keyfile" in params and not os.path.isfile(params["keyfile"]):
        raise bad(f"keyfile={params['keyfile']}: no such file")
    if "known_hosts" in params and not os.path.isdir(os.path.dirname(os.path.abspath(params["known_hosts"]))):
        raise bad(f"known_hosts={params['known_hosts']}: no such directory")  # ssh may create the file
    return SshTarget(host=parts.hostname, user=unquote(parts.username) if parts.username else None, port=port,
                     socket=path if path not in ("", "/") else defaults.SOCKET,
                     keyfile=params.get("keyfile"), known_hosts=params.get("known_hosts"),
                     verify=params.get("no_verify", "0") == "0", command=params.get("command", BRIDGE_COMMAND),
                     ssh=params.get("ssh", SSH_BINARY))


class SshChannel:
    """ssh running the bridge on the remote host, with the socket's sendall/recv/close; recv
    and sendall raise TimeoutError after the timeout, as a socket's do."""

    def __init__(self, target: SshTarget, timeout: float) -> None:
        import subprocess
        import tempfile

        self.target = target
        self.timeout = timeout
        # ssh's and the bridge's messages: a file, not a pipe that could fill up while we talk.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the channel
        try:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                target.argv(timeout), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        except FileNotFoundError:
            self._stderr.close()
            raise RpcError(f"cannot reach virt-synthd on {target.destination}: no ssh client {target.ssh!r} "
                           "here; install openssh-client, or name one with ?ssh=/path/to/ssh") from None
        except OSError as e:
            self._stderr.close()
            raise RpcError(f"cannot reach virt-synthd on {target.destination}: cannot run {target.ssh!r}: "
                           f"{e.strerror}") from None
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()

    def sendall(self, data: bytes) -> None:
        import select

        view = memoryview(data)
        while view:
            if not select.select([], [self._in], [], self.timeout)[1]:
                raise TimeoutError
            try:
                view = view[os.write(self._in, view[:65536]):]
            except BrokenPipeError:
                raise self.ended() from None

    def recv(self, size: int) -> bytes:
        import select

        if not select.select([self._out], [], [], self.timeout)[0]:
            raise TimeoutError
        return os.read(self._out, size)

    def ended(self) -> RpcError:
        """Why the other end is gone: ssh's exit status and the last line it (or the remote
        bridge) wrote on stderr."""
        import subprocess

        try:
            rc: int | None = self.proc.wait(_CLOSE_GRACE)
        except subprocess.TimeoutExpired:
            rc = None
        self._stderr.seek(0)
        lines = [ln.strip() for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        last = lines[-1] if lines else "(nothing on stderr)"
        dest = self.target.destination
        if rc == 255:  # ssh's own failures: no route, refused, host key, authentication
            return RpcError(f"cannot reach virt-synthd on {dest}: ssh failed: {last}")
        if rc in _NOT_FOUND:
            return RpcError(f"cannot reach virt-synthd on {dest}: no {self.target.command.split()[0]!r} there "
                            f"(the remote shell said: {last}); install virt-synth on {self.target.host}, or give "
                            "the bridge's full path with ?command=/path/to/virt-synth%20bridge")
        if rc is not None and rc < 0:
            return RpcError(f"cannot reach virt-synthd on {dest}: ssh was killed by signal {-rc}")
        if rc:
            return RpcError(f"cannot reach virt-synthd on {dest}: the remote bridge failed (exit {rc}): {last}")
        return RpcError(f"virt-synthd on {dest} closed the connection" + (f": {last}" if lines else ""))

    def close(self) -> None:
        """End the session: the remote bridge sees stdin's end and stops; ssh is stopped if it
        lingers."""
        import subprocess

        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        try:
            self.proc.wait(_CLOSE_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(_CLOSE_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


# -- the client ------------------------------------------------------------------------------------


class Client:
    """One connection; calls are sequential. Use as a context manager or call close().

    path is a socket path or an ssh:// address (module docstring). A socket that is not there
    fails here; over ssh, the connection is made while the first call waits for its answer, and
    what went wrong (ssh, the remote shell, the remote bridge) is that call's RpcError."""

    def __init__(self, path: str | None = None, timeout: float = 30.0) -> None:
        self.path = socket_path(path)
        self._ids = itertools.count(1)
        self._conn: socket.socket | SshChannel
        self._conn = SshChannel(parse_uri(self.path), timeout) if is_uri(self.path) \
            else connect_unix(self.path, timeout)
        self._buf = b""

    def call(self, method: str, **params: Any) -> Any:
        req = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            self._conn.sendall(json.dumps(req).encode() + b"\n")
            while b"\n" not in self._buf:
                chunk = self._conn.recv(65536)
                if not chunk:
                    raise self._closed()
                self._buf += chunk
        except TimeoutError:
            raise RpcError(f"virt-synthd{self._where()} did not answer {method} in time") from None
        except OSError as e:
            raise RpcError(f"lost the connection to virt-synthd{self._where()}: {e.strerror}") from None
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            resp = json.loads(line)
        except ValueError:
            raise RpcError(f"virt-synthd{self._where()} answered {method} with something other than JSON-RPC: "
                           f"{line[:80].decode(errors='replace')!r}") from None
        if "error" in resp:
            err = resp["error"]
            raise RpcError(err.get("message", "error"), err.get("code"), err.get("data"))
        return resp.get("result")

    def _closed(self) -> RpcError:
        if isinstance(self._conn, SshChannel):
            return self._conn.ended()
        return RpcError("virt-synthd closed the connection")

    def _where(self) -> str:
        return f" on {self._conn.target.destination} (over ssh)" if isinstance(self._conn, SshChannel) else ""

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def call(method: str, socket_file: str | None = None, timeout: float = 30.0, **params: Any) -> Any:
    """One call on a fresh connection; socket_file is a socket path or an ssh:// address."""
    with Client(socket_file, timeout) as c:
        return c.call(method, **params)
