#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TLS echo server and its client, on the standard library's ``ssl`` and ``socket`` only.

An ordinary TLS program: it knows nothing of synthetic devices or OpenSSL providers. Whatever
OpenSSL's configuration (``OPENSSL_CONF``, /etc/ssl/openssl.cnf) says runs its record crypto.

    tls_echo.py server --port P --cert C --key K [--tls 1.2|1.3] [--ciphers LIST]
    tls_echo.py client --port P --ca C --data IN --out OUT [--tls 1.2|1.3] [--ciphers LIST]

The server accepts one connection and echoes every byte back until the client closes. The client
verifies the server's certificate (name ``localhost``), sends IN in chunks, reads each chunk's echo
and writes what came back to OUT. Each prints one JSON line: role, protocol version, cipher,
bytes. ``--ciphers`` is the TLS 1.2 cipher list (``SSLContext.set_ciphers``); TLS 1.3 suites are
OpenSSL's configuration (``Ciphersuites`` in its ``system_default`` section).
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys

CHUNK = 16384
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def context(purpose: int, args: argparse.Namespace) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    if args.tls:
        ctx.minimum_version = ctx.maximum_version = VERSIONS[args.tls]
    if args.ciphers:
        ctx.set_ciphers(args.ciphers)
    return ctx


def report(role: str, tls: ssl.SSLSocket, sent: int, received: int) -> None:
    cipher = tls.cipher()
    print(json.dumps({"role": role, "version": tls.version(), "cipher": cipher[0] if cipher else None,
                      "sent": sent, "received": received}), flush=True)


def server(args: argparse.Namespace) -> int:
    ctx = context(ssl.PROTOCOL_TLS_SERVER, args)
    ctx.load_cert_chain(args.cert, args.key)
    with socket.create_server((args.host, args.port)) as listener:
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            n = 0
            while True:
                data = tls.recv(CHUNK)
                if not data:  # the client's close_notify
                    break
                tls.sendall(data)
                n += len(data)
            report("server", tls, n, n)
            tls.unwrap()
    return 0


def client(args: argparse.Namespace) -> int:
    ctx = context(ssl.PROTOCOL_TLS_CLIENT, args)
    ctx.load_verify_locations(args.ca)
    with open(args.data, "rb") as f:
        data = f.read()
    back = bytearray()
    with socket.create_connection((args.host, args.port), timeout=args.timeout) as conn, \
            ctx.wrap_socket(conn, server_hostname=args.name) as tls:
        for off in range(0, len(data), CHUNK):
            chunk = data[off:off + CHUNK]
            tls.sendall(chunk)
            want = len(back) + len(chunk)
            while len(back) < want:
                got = tls.recv(want - len(back))
                if not got:
                    print(f"tls_echo: the server closed after {len(back)} of {len(data)} bytes", file=sys.stderr)
                    return 1
                back += got
        report("client", tls, len(data), len(back))
        tls.unwrap()
    with open(args.out, "wb") as f:
        f.write(back)
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tls_echo.py", description=__doc__.split("\n\n")[0])
    p.add_argument("role", choices=("server", "client"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4433)
    p.add_argument("--tls", choices=sorted(VERSIONS), help="the only protocol version to use (default: any)")
    p.add_argument("--ciphers", help="TLS 1.2 cipher list, e.g. ECDHE-RSA-AES256-GCM-SHA384")
    p.add_argument("--cert", help="server: certificate (PEM)")
    p.add_argument("--key", help="server: private key (PEM)")
    p.add_argument("--ca", help="client: the certificate to trust (PEM)")
    p.add_argument("--name", default="localhost", help="client: the name the certificate must carry")
    p.add_argument("--data", help="client: the file to send")
    p.add_argument("--out", help="client: where to write what came back")
    p.add_argument("--timeout", type=float, default=60.0, help="client: seconds to wait on the network")
    args = p.parse_args(argv)
    need = ("cert", "key") if args.role == "server" else ("ca", "data", "out")
    missing = [f"--{n}" for n in need if getattr(args, n) is None]
    if missing:
        p.error(f"{args.role} needs {', '.join(missing)}")
    return server(args) if args.role == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
