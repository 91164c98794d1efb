# SPDX-License-Identifier: Apache-2.0
"""TLS between unmodified OpenSSL programs on the host, each party on a synthetic crypto device of
its own, with the provider turned on only by examples/openssl.cnf: the server is `openssl s_server
-WWW` serving a file, the client `openssl s_client` asking for it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Where the provider was built: native/build, or the sanitized build scripts/sanitize makes.
BUILD = pathlib.Path(os.environ.get("LIBVIRT_SYNTH_PROVIDER_BUILD") or ROOT / "native/build")
MODULES = BUILD / "ossl-modules"
EXAMPLE = ROOT / "examples/openssl.cnf"
SUMMARY = re.compile(r"synth: device (\S+): (\d+) ops, (\d+) fallbacks \(([^)]*)\)")

# (name, server flags, client flags)
SUITES = [
    ("tls1.3-aes-256-gcm", ["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"], ["-tls1_3"]),
    ("tls1.3-chacha20-poly1305", ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], ["-tls1_3"]),
    ("tls1.2-ecdhe-rsa-aes256-gcm", ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"], ["-tls1_2"]),
]


@dataclass
class Summary:
    device: str
    ops: int
    fallbacks: int
    reasons: dict[str, int]


def summary(stderr: str) -> Summary:
    """The provider's last summary line in a program's stderr (log = stderr)."""
    found = SUMMARY.findall(stderr)
    assert found, f"no provider summary in:\n{stderr}"
    dev, ops, fb, reasons = found[-1]
    return Summary(dev, int(ops), int(fb),
                   {k: int(v) for k, v in (r.rsplit(" ", 1) for r in reasons.split(", "))})


def openssl_conf(directory: pathlib.Path, **settings: str) -> pathlib.Path:
    """examples/openssl.cnf as shipped, with log = stderr (and any other synth_sect setting)."""
    text = EXAMPLE.read_text()
    settings = {"log": "stderr", **settings}
    for key, value in settings.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        assert n == 1, f"examples/openssl.cnf has no single '{key} =' line"
    path = directory / "openssl.cnf"
    path.write_text(text)
    return path


def env_for(conf: pathlib.Path, device: str) -> dict[str, str]:
    return {**os.environ, "OPENSSL_CONF": str(conf), "OPENSSL_MODULES": str(MODULES),
            "LIBVIRT_SYNTH_OSSL_DEVICE": device}


def make_cert(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A throw-away RSA certificate for localhost (ECDHE-RSA needs RSA)."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True,
                   env={**os.environ, "OPENSSL_CONF": "/dev/null"})
    return cert, key


def make(*targets: str) -> None:
    """make in the source tree, without a sanitizer runtime preloaded (scripts/sanitize preloads it
    for the tests, and it finds faults in make itself)."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    r = subprocess.run(["make", "-s", "-C", str(ROOT), *targets], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def listening(port: int) -> bool:
    """Something listens on 127.0.0.1:port (read from /proc, without connecting to it)."""
    want = f"0100007F:{port:04X}"
    lines = pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(f[1] == want and f[3] == "0A" for f in (line.split() for line in lines))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int

    def finish(self, timeout: float = 30) -> str:
        """Wait for the server to exit (it serves one connection); its stderr."""
        _, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return err


@contextlib.contextmanager
def serve(docroot: pathlib.Path, cert: pathlib.Path, key: pathlib.Path, env: dict[str, str],
          flags: list[str]) -> Iterator[Server]:
    """openssl s_server -WWW in docroot for one connection; yields once it listens."""
    port = free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key",
                             str(key), "-naccept", "1", "-WWW", *flags], cwd=docroot, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ACCEPT"):
                break
        else:
            raise AssertionError(f"s_server did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield Server(proc, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def client(port: int, name: str, env: dict[str, str], flags: list[str]) -> subprocess.Popen[bytes]:
    """openssl s_client asking for /name; read the response from its stdout."""
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-quiet", *flags], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(f"GET /{name} HTTP/1.0\r\n\r\n".encode())
    proc.stdin.close()  # -quiet ignores the end of input: the server's close ends the session
    return proc


def finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> tuple[bytes, str]:
    """A client's whole response and its stderr, once it exits."""
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    proc.wait(timeout=timeout)
    return out, proc.stderr.read().decode()


def body(response: bytes) -> bytes:
    head, sep, rest = response.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.0 200"), response[:200]
    return rest
