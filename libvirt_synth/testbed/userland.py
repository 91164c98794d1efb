# SPDX-License-Identifier: Apache-2.0
"""The guest image's userland for unmodified TLS programs: Debian's ``openssl`` and a minimal
``python3.11``, the provider ``synth`` that runs their record crypto on a synthetic crypto device,
the OpenSSL configuration that turns it on, and a certificate to serve.

Inputs, copied as the host's Debian packages installed them (the provider is built against the
same libcrypto, so the guest runs the pair the host tested):

- ``/usr/bin/openssl`` and ``/usr/bin/python3.11`` with every shared library ``ldd`` names, each at
  the path its package installed it under (``dpkg -S``); ``/lib64/ld-linux-x86-64.so.2`` as the
  link libc6 ships;
- of Python's standard library only the modules that ``guest/tls_echo.py`` loads, found by running
  its top level and its argument parser (``--help``) in ``python3.11 -S -I`` and listing
  ``sys.modules``, with ``site`` and the ``encodings`` that start-up and ``socket`` need; extension
  modules (``_ssl``, ``_json``, ...) with their libraries;
- ``native/build/ossl-modules/synth.so`` (``make provider``) in OpenSSL's modules directory.

Every file is recorded with its package, version and SHA-256 (``Userland.manifest``); their digest
is part of the image key. Generated here, the same every time: ``/etc/ssl/openssl.cnf`` (default +
synth, ``default_properties = ?provider=synth``), a variant whose ``system_default`` asks for
TLS_CHACHA20_POLY1305_SHA256 only, and an RSA-2048 key and its self-signed certificate for
``localhost``, drawn from a fixed seed (test data: the key is no secret).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import pathlib
import random
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import errors

OPENSSL = "/usr/bin/openssl"
PYTHON = "/usr/bin/python3.11"
LOADER_LINK = ("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
MODULES_DIR = "/usr/lib/x86_64-linux-gnu/ossl-modules"  # libcrypto's MODULESDIR (openssl version -m)
PROVIDER = f"{MODULES_DIR}/synth.so"
CNF = "/etc/ssl/openssl.cnf"
CNF_LINKS = ("/usr/lib/ssl/openssl.cnf",)  # OPENSSLDIR/openssl.cnf, as Debian links it
CNF_CHACHA = "/etc/ssl/openssl-chacha20.cnf"
TLS_DIR = "/etc/synth-tls"
TLS_SEED = 20260101
STDLIB = "/usr/lib/python3.11/"
# Modules the interpreter needs before the program runs (start-up and ``site``), and those its C
# code imports by name while it runs, which no import statement shows (socket.getaddrinfo encodes
# a host name with the idna codec).
STARTUP = ("site", "encodings", "encodings.aliases", "encodings.utf_8", "encodings.latin_1", "encodings.ascii",
           "encodings.idna")


def cnf(provider: bool = True, ciphersuites: str | None = None) -> str:
    """The guest's openssl.cnf: the default provider and synth, synth preferred for what it serves
    (without ``provider``: the default provider alone). ``ciphersuites``: the TLS 1.3 suites every
    SSL_CTX gets (``system_default``)."""
    ssl = "ssl_conf = ssl_sect\n" if ciphersuites else ""
    synth = f"""synth = synth_sect

[synth_sect]
module = {PROVIDER}
activate = 1
# auto: the first crypto device on the PCI bus; LIBVIRT_SYNTH_OSSL_DEVICE overrides it
device = auto
timeout_ms = 1000
log = stderr
""" if provider else ""
    prefer = "default_properties = ?provider=synth\n" if provider else ""
    text = f"""# libvirt-synth guest image: OpenSSL runs its AEAD ciphers on a synthetic crypto device
# through the provider synth; everything else (and whatever the device cannot do) stays in default.
openssl_conf = openssl_init

[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
{ssl}
[default_sect]
activate = 1

[provider_sect]
default = default_sect
{synth}
[algorithm_sect]
{prefer}"""
    if ciphersuites:
        text += (f"\n[ssl_sect]\nsystem_default = system_default_sect\n\n"
                 f"[system_default_sect]\nCiphersuites = {ciphersuites}\n")
    return text


@dataclass
class Userland:
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # image path -> (data, mode)
    links: dict[str, str] = field(default_factory=dict)                # image path -> target
    origin: dict[str, str] = field(default_factory=dict)               # image path -> "pkg=version" or source

    def add(self, path: str, data: bytes, origin: str, mode: int = 0o644) -> None:
        self.files[path] = (data, mode)
        self.origin[path] = origin

    def manifest(self) -> dict[str, Any]:
        """Every file with its SHA-256 and where it came from; the packages and their versions."""
        files = {p: {"sha256": hashlib.sha256(d).hexdigest(), "from": self.origin[p], "size": len(d)}
                 for p, (d, _) in sorted(self.files.items())}
        pkgs = sorted({o for o in self.origin.values() if "=" in o})
        return {"packages": pkgs, "files": files, "links": dict(sorted(self.links.items())),
                "bytes": sum(len(d) for d, _ in self.files.values())}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.manifest(), sort_keys=True).encode()).hexdigest()


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    except FileNotFoundError:
        raise errors.NotFoundError(f"{cmd[0]} is not installed (apt-get install openssl python3.11)") from None


def needed_libraries(path: str) -> list[str]:
    """The shared libraries ``path`` loads (ldd: transitively), the loader among them."""
    r = _run(["ldd", path])
    if r.returncode != 0:
        raise errors.ValueError(f"ldd {path}: {(r.stderr or r.stdout).strip()}")
    out = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(?:\S+ => )?(/\S+) \(0x", line)
        if m:
            out.append(m.group(1))
        elif "not found" in line:
            raise errors.NotFoundError(f"{path} needs {line.split()[0]}, which is not installed")
    return out


def _merged_alias(path: str) -> str:
    """The other name of a path on a merged-/usr system (/lib/x -> /usr/lib/x and back)."""
    return path.removeprefix("/usr") if path.startswith(("/usr/lib/", "/usr/lib64/", "/usr/bin/")) else f"/usr{path}"


def owners(paths: list[str]) -> dict[str, tuple[str, str]]:
    """path -> (the path its package installed it under, "package=version"), one dpkg call each kind."""
    ask = sorted({q for p in paths for q in (p, _merged_alias(p))})
    r = _run(["dpkg", "-S", *ask])
    found: dict[str, str] = {}
    for line in r.stdout.splitlines():
        pkg, sep, where = line.partition(": ")
        if sep and "," not in pkg and where in ask:
            found[where] = pkg
    versions: dict[str, str] = {}
    pkgs = sorted(set(found.values()))
    if pkgs:
        q = _run(["dpkg-query", "-W", "-f", "${binary:Package} ${Version}\n", *pkgs])
        versions = dict(line.split(" ", 1) for line in q.stdout.splitlines() if " " in line)
    out = {}
    for p in paths:
        where = p if p in found else _merged_alias(p)
        if where not in found:
            raise errors.NotFoundError(f"{p} belongs to no installed Debian package (dpkg -S); the guest image "
                                       "takes only packaged files")
        pkg = found[where]
        out[p] = (where, f"{pkg}={versions.get(pkg, '?')}")
    return out


def closure(u: Userland, elfs: list[str]) -> list[str]:
    """The shared libraries the ELF files ``elfs`` load (ldd: transitively), each once, with the
    loader's real file among them; the loader's ABI path (``/lib64/ld-linux-x86-64.so.2``) becomes a
    link of ``u`` to it, as libc6 ships it."""
    libs: list[str] = []
    for b in elfs:
        libs += [lib for lib in needed_libraries(b) if lib not in libs]
    loader_link, loader = LOADER_LINK
    if loader_link in libs:
        libs.remove(loader_link)
        u.links[loader_link] = loader
        if loader not in libs:
            libs.append(loader)
    return libs


def add_packaged(u: Userland, paths: list[str]) -> None:
    """Add host files to ``u`` at the paths their Debian packages installed them under, each
    recorded with its package and version (and its mode's permission bits)."""
    own = owners(paths)
    for path in paths:
        where, origin = own[path]
        u.add(where, pathlib.Path(path).read_bytes(), origin, os.stat(path).st_mode & 0o755)


def stdlib_files(program: pathlib.Path, argv: tuple[str, ...] = ("--help",), python: str = PYTHON) -> list[str]:
    """The standard library files ``program`` loads, and those start-up needs: the program runs
    with ``argv`` (its top level and its argument parser: what it imports lazily there counts) in
    ``python -S -I``, and ``sys.modules`` is listed."""
    # Only what start-up imports anyway until the program runs: nothing for the listing's own sake.
    code = (f"for m in {STARTUP!r}: __import__(m)\n"
            "import io, sys\n"
            "prog, out = sys.argv[1], sys.stdout\n"
            f"sys.argv = [prog, *{list(argv)!r}]\n"
            "sys.stdout = io.StringIO()\n"
            "try:\n"
            "    with open(prog) as f: exec(compile(f.read(), prog, 'exec'), {'__name__': '__main__'})\n"
            "except SystemExit:\n"
            "    pass\n"
            "out.write('\\n'.join(getattr(m, '__file__', None) or '' for m in list(sys.modules.values())))\n")
    r = _run([python, "-S", "-I", "-c", code, str(program)])
    if r.returncode != 0:
        raise errors.ValueError(f"{program} {' '.join(argv)} fails in {python}: {r.stderr.strip()[-600:]}")
    files = {f for f in r.stdout.splitlines() if f.startswith(STDLIB)}
    return sorted(files | {f"{STDLIB}os.py"})  # os.py is the landmark Python finds its prefix by


def _prime(rng: random.Random, bits: int, small: list[int]) -> int:
    while True:
        c = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if any(c % p == 0 for p in small) or (c - 1) % 65537 == 0:
            continue
        d, s = c - 1, 0
        while d % 2 == 0:
            d, s = d // 2, s + 1
        for _ in range(40):  # Miller-Rabin
            x = pow(rng.randrange(2, c - 2), d, c)
            if x in (1, c - 1):
                continue
            for _ in range(s - 1):
                x = pow(x, 2, c)
                if x == c - 1:
                    break
            else:
                break
        else:
            return c


def tls_material(seed: int = TLS_SEED) -> tuple[bytes, bytes]:
    """(certificate, key) in PEM: RSA-2048 from ``seed``, self-signed for localhost and 127.0.0.1.
    The same seed gives the same bytes (PKCS#1 v1.5 signatures are deterministic)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    rng = random.Random(seed)
    small = [n for n in range(3, 2000, 2) if all(n % k for k in range(3, int(n ** 0.5) + 1, 2))]
    p = _prime(rng, 1024, small)
    q = _prime(rng, 1024, small)
    while q == p:
        q = _prime(rng, 1024, small)
    e = 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    key = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
                                rsa.RSAPublicNumbers(e, p * q)).private_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "libvirt-synth test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    utc = datetime.UTC
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime.datetime(2000, 1, 1, tzinfo=utc))
            .not_valid_after(datetime.datetime(2099, 12, 31, tzinfo=utc))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, True, False, False, False), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def collect(provider: bytes | None, program: pathlib.Path) -> Userland:
    """The userland for ``program`` (guest/tls_echo.py); without ``provider``, OpenSSL and Python
    run on the default provider alone (the configuration then names no module)."""
    u = Userland()
    stdlib = stdlib_files(program)
    exts = [f for f in stdlib if f.endswith(".so")]
    binaries = [OPENSSL, PYTHON]
    add_packaged(u, binaries + stdlib + closure(u, binaries + exts))
    u.links["/usr/bin/python3"] = "python3.11"
    if provider is not None:
        u.add(PROVIDER, provider, "native/build/ossl-modules/synth.so", 0o755)
    for name, suites in ((CNF, None), (CNF_CHACHA, "TLS_CHACHA20_POLY1305_SHA256")):
        u.add(name, cnf(provider is not None, suites).encode(), "generated")
    for link in CNF_LINKS:
        u.links[link] = CNF
    cert, key = tls_material()
    u.add(f"{TLS_DIR}/cert.pem", cert, f"generated (seed {TLS_SEED})")
    u.add(f"{TLS_DIR}/key.pem", key, f"generated (seed {TLS_SEED})", 0o600)
    u.add("/usr/share/libvirt-synth/tls_echo.py", program.read_bytes(), "guest/tls_echo.py")
    return u


def install(u: Userland, cpio: Any) -> None:
    """Put the userland into an image.Cpio."""
    for path, (data, mode) in sorted(u.files.items()):
        cpio.file(path, data, mode)
    for path, target in sorted(u.links.items()):
        cpio.dir(os.path.dirname(path.strip("/")))
        cpio.symlink(path, target)
