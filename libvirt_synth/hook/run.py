# SPDX-License-Identifier: Apache-2.0
"""The libvirt qemu hook: libvirt runs it (installed in /etc/libvirt/hooks/qemu.d/) at every step
of every domain's life, with the domain XML on stdin. It acts on the project's <metadata> alone
and talks to virt-synthd; it never calls libvirt (that would deadlock libvirtd).

    prepare begin     create the domain's devices (regions owned by the QEMU user, before QEMU
                      starts); on failure one line on stderr and exit 1: libvirt shows the line
                      and does not start the VM
    start, started    nothing (light by design)
    stopped, release  destroy the devices; idempotent, never blocks a stop
    reconnect begin   make sure the daemon serves the devices (libvirtd restarted while the VM
                      runs); never fails, so that libvirt never kills a running VM because of us
    migrate, restore  (on the destination, before anything else) let the domain in only if the
      begin           daemon expects it: `virt-synth migrate` / `restore` arranged the hand-over of
                      its devices' state. Otherwise exit 1: libvirt refuses the move and the VM
                      stays where it was. These are XML filters too: we print nothing, which keeps
                      the XML unchanged

Speed matters: this runs before every VM start. Besides libvirt_synth.hook.metadata (the reader of
the contract, over xml.etree) it imports only built-in modules: no json, no re, no socket.py, no
logging. The JSON it speaks is the small subset JSON-RPC needs, written and read here.
"""

from __future__ import annotations

import _socket
import os
import sys

from libvirt_synth import defaults, errors
from libvirt_synth.hook import metadata

NS = metadata.NAMESPACE
TIMEOUT_S = 30.0

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class HookError(errors.SynthError):
    """The hook cannot do what libvirt asked: the VM does not start."""


# ---- domain XML -> (uuid, name, devices) ----


def parse_domain(xml: bytes) -> tuple[str, str, list[dict[str, Any]]]:
    """uuid, name and the synthetic devices of a domain XML (an empty list: none of ours), read
    by libvirt_synth.hook.metadata: the one reader of the contract the XML generator writes."""
    d = read_domain(xml)
    return d["uuid"], d["name"], d["devices"]


def read_domain(xml: bytes) -> dict[str, Any]:
    """metadata.parse_domain(), its errors as HookError."""
    try:
        return metadata.parse_domain(xml.decode())
    except (errors.ValueError, UnicodeDecodeError) as e:
        raise HookError(str(e)) from None


# ---- the JSON subset JSON-RPC needs ----


def dumps(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        out = ['"']
        for ch in v:
            o = ord(ch)
            if ch in '"\\':
                out.append("\\" + ch)
            elif 0x20 <= o < 0x7F:
                out.append(ch)
            elif o > 0xFFFF:
                o -= 0x10000
                out.append(f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}")
            else:
                out.append(f"\\u{o:04x}")
        out.append('"')
        return "".join(out)
    if isinstance(v, list | tuple):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(dumps(str(k)) + ":" + dumps(x) for k, x in v.items()) + "}"
    raise HookError(f"cannot encode {type(v).__name__}")


class _Reader:
    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def value(self) -> Any:
        self.ws()
        c = self.s[self.i : self.i + 1]
        if c == "{":
            self.i += 1
            obj: dict[str, Any] = {}
            self.ws()
            if self.s[self.i] == "}":
                self.i += 1
                return obj
            while True:
                self.ws()
                key = self.string()
                self.ws()
                self.expect(":")
                obj[key] = self.value()
                self.ws()
                if self.s[self.i] == ",":
                    self.i += 1
                    continue
                self.expect("}")
                return obj
        if c == "[":
            self.i += 1
            arr: list[Any] = []
            self.ws()
            if self.s[self.i] == "]":
                self.i += 1
                return arr
            while True:
                arr.append(self.value())
                self.ws()
                if self.s[self.i] == ",":
                    self.i += 1
                    continue
                self.expect("]")
                return arr
        if c == '"':
            return self.string()
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return val
        j = self.i
        while j < len(self.s) and self.s[j] in "+-0123456789.eE":
            j += 1
        if j == self.i:
            raise HookError(f"bad JSON from virt-synthd at offset {self.i}")
        num = self.s[self.i : j]
        self.i = j
        return float(num) if any(ch in num for ch in ".eE") else int(num)

    def expect(self, ch: str) -> None:
        if self.s[self.i : self.i + 1] != ch:
            raise HookError(f"bad JSON from virt-synthd: expected {ch!r} at offset {self.i}")
        self.i += 1

    def string(self) -> str:
        self.expect('"')
        out: list[str] = []
        while True:
            ch = self.s[self.i]
            self.i += 1
            if ch == '"':
                return "".join(out)
            if ch != "\\":
                out.append(ch)
                continue
            esc = self.s[self.i]
            self.i += 1
            if esc == "u":
                code = int(self.s[self.i : self.i + 4], 16)
                self.i += 4
                if 0xD800 <= code < 0xDC00 and self.s.startswith("\\u", self.i):
                    low = int(self.s[self.i + 2 : self.i + 6], 16)
                    self.i += 6
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                out.append(chr(code))
            else:
                out.append({"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}.get(esc, esc))


def loads(s: str) -> Any:
    return _Reader(s).value()


# ---- JSON-RPC ----


def call(method: str, params: dict[str, Any], socket_path: str) -> Any:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_S)
    try:
        try:
            sock.connect(socket_path)
        except OSError as e:
            raise HookError(f"virt-synthd is not running ({socket_path}: {e.strerror})") from None
        req = dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}) + "\n"
        sock.sendall(req.encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise HookError("virt-synthd closed the connection without answering")
            buf += chunk
    except TimeoutError:
        raise HookError(f"virt-synthd did not answer {method} within {TIMEOUT_S:.0f} s") from None
    finally:
        sock.close()
    resp = loads(buf.decode())
    if "error" in resp:
        raise HookError(str(resp["error"].get("message", "error")))
    return resp.get("result")


# ---- the hook ----


def main(argv: list[str], stdin: Any, stderr: Any) -> int:
    """argv as libvirt passes it: [hook, object, operation, sub-operation, extra]."""
    if len(argv) < 3:
        stderr.write("libvirt-synth hook: expected OBJECT OPERATION SUB-OPERATION EXTRA (libvirt runs this)\n")
        return 2
    op = argv[2]
    sub = argv[3] if len(argv) > 3 else "-"
    xml = stdin.buffer.read()  # always drain it: libvirt writes the whole XML
    if op not in ("prepare", "stopped", "release", "reconnect", "migrate", "restore"):
        return 0  # start, started, attach...: nothing to do, nothing on stdout
    if op in ("migrate", "restore") and sub != "begin":
        return 0
    socket_path = os.environ.get(defaults.SOCKET_ENV) or SOCKET_PATH
    try:
        dom = read_domain(xml)
    except HookError as e:
        if op in ("prepare", "migrate", "restore"):
            stderr.write(f"libvirt-synth: {argv[1]}: {e}\n")
            return 1
        return 0
    uuid, name, devices = dom["uuid"], dom["name"], dom["devices"]
    if not devices:
        return 0  # not a domain of ours
    try:
        if op in ("prepare", "reconnect") and sub == "begin":
            # prepare: QEMU does not run yet, so a region of ours nobody serves is stale: replace it.
            # reconnect: QEMU maps the regions: a daemon that lost track of them takes them over.
            existing = "replace" if op == "prepare" else "attach"
            params = {"uuid": uuid, "name": name, "devices": devices, "existing": existing}
            if dom["uid"] is not None:  # the domain's own QEMU identity: its regions are that uid's
                params["uid"] = dom["uid"]
            call("domain.create", params, socket_path)
        elif op in ("stopped", "release"):
            call("domain.destroy", {"uuid": uuid}, socket_path)
        elif not call("migration.incoming", {"uuid": uuid}, socket_path).get("expected"):
            verb = "migrate" if op == "migrate" else "restore"
            stderr.write(f"libvirt-synth: {name} has synthetic devices whose state virt-synthd must hand "
                         f"over: {verb} it with virt-synth {verb}, not virsh {verb}\n")
            return 1
    except HookError as e:
        if op == "prepare":
            stderr.write(f"libvirt-synth: cannot create the synthetic devices of {name}: {e}\n")
            return 1
        if op in ("migrate", "restore"):
            stderr.write(f"libvirt-synth: cannot let {name} in: {e}\n")
            return 1
        # Never fail a stop or a reconnect: the VM's fate must not depend on the daemon.
        stderr.write(f"libvirt-synth: {op} {name}: {e} (ignored)\n")
    return 0


SOCKET_PATH = defaults.SOCKET  # `virt-synth hooks install --socket` bakes another one in


if __name__ == "__main__":
    sys.exit(main(sys.argv, sys.stdin, sys.stderr))
