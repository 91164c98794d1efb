# SPDX-License-Identifier: Apache-2.0
"""The guest image: a Linux kernel and an initramfs that boot a VM straight into ``synth-guest``.

Inputs, all from Debian packages or this tree, nothing fetched when the VM runs:

- Debian's kernel package (the ``linux-image-6.x-amd64`` that the ``linux-image-amd64``
  metapackage depends on), fetched with ``apt-get download``: ``vmlinuz`` and the modules the
  kernel crypto API needs for AF_ALG AEAD (``af_alg``, ``algif_aead``, gcm, chacha20poly1305 and
  their dependencies, read from each module's ``.modinfo``);
- ``busybox-static`` (``apt-get download``): the shell and tools of the init;
- ``native/build/synth-guest`` and ``native/build/afalg-kat`` (static; ``make synth-guest
  afalg-kat``), ``guest/init`` and the step ``tls`` (``guest/tls-check.sh``, ``guest/tls_echo.py``);
- for that step, the userland (userland.py): Debian's ``openssl`` and a minimal ``python3.11`` as the
  host's packages installed them, and the OpenSSL provider ``native/build/ossl-modules/synth.so``
  (``make provider``; when it is not built, the image's OpenSSL runs on its default provider alone);
- for the step ``dpdk`` (``guest/dpdk-check.sh``), when ``make dpdk`` has built the PMD
  ``native/build/dpdk/librte_crypto_synth.so``: Debian's ``dpdk-test-crypto-perf`` with the
  libraries and the mempool driver it needs (dpdk.py), the PMD, and the test-vector files
  ``tests/data/dpdk/*.data``.

Output: ``vmlinuz`` + ``initrd.img`` under ``$LIBVIRT_SYNTH_CACHE`` (default
``~/.cache/libvirt-synth``) in ``images/<key>/``, where the key is a hash of every input's content:
the same inputs give the same directory and byte-identical files (the cpio archive is written
by cpio.py, sorted, with mtime 0 and owner root; gzip without a timestamp). Downloaded packages are kept
in ``debs/`` under their SHA-256. See docs/guest.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from libvirt_synth import errors, log
from libvirt_synth.testbed import dpdk, userland
from libvirt_synth.testbed.cpio import Cpio, gzip_bytes

CACHE_ENV = "LIBVIRT_SYNTH_CACHE"
FORMAT = 3  # bump when the image layout changes: it is part of every image key
KERNEL_META = "linux-image-amd64"
BUSYBOX = "busybox-static"
# AF_ALG AEAD with the algorithms the AF_ALG plugin binds: gcm(aes), rfc7539(chacha20,poly1305).
# Generic C implementations only: the TCG CPU has no AES-NI, PCLMUL or AVX.
MODULES = ("af_alg", "algif_aead", "gcm", "ghash_generic", "ctr", "chacha20poly1305", "chacha_generic",
           "poly1305_generic")
MODULE_DIRS = ("kernel/crypto/", "kernel/lib/crypto/", "kernel/arch/x86/crypto/")
ROOT = pathlib.Path(__file__).resolve().parents[2]

Say = Callable[[str], None]


def cache_dir() -> pathlib.Path:
    """$LIBVIRT_SYNTH_CACHE, else ~/.cache/libvirt-synth (outside the repository)."""
    env = os.environ.get(CACHE_ENV)
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "libvirt-synth"


PROVIDER = ROOT / "native/build/ossl-modules/synth.so"
PROVIDER_KAT = ROOT / "native/build/provider-kat"
DPDK_PMD = ROOT / "native/build/dpdk/librte_crypto_synth.so"
DPDK_VECTORS = ROOT / "tests/data/dpdk"
VECTOR_INPUT = "dpdk-vector:"  # + the vector's name: an input of the step dpdk
HINTS = {"synth-guest": "make synth-guest", "afalg-kat": "make afalg-kat", "synth.so": "make provider",
         "provider-kat": "make provider-kat", "librte_crypto_synth.so": "make dpdk"}


def default_inputs() -> dict[str, pathlib.Path]:
    """The tree's guest programs, init, TLS and DPDK steps (``make guest-inputs`` builds the
    programs), the provider and its test program when they are built (``make provider
    provider-kat``), and the DPDK PMD with the test vectors when it is built (``make dpdk``)."""
    inputs = {"synth-guest": ROOT / "native/build/synth-guest", "afalg-kat": ROOT / "native/build/afalg-kat",
              "init": ROOT / "guest/init", "tls-check": ROOT / "guest/tls-check.sh",
              "tls_echo": ROOT / "guest/tls_echo.py", "dpdk-check": ROOT / "guest/dpdk-check.sh"}
    if PROVIDER.is_file():
        inputs["synth.so"] = PROVIDER
    if PROVIDER_KAT.is_file():  # dynamic, on the image's libcrypto
        inputs["provider-kat"] = PROVIDER_KAT
    if DPDK_PMD.is_file():
        inputs["librte_crypto_synth.so"] = DPDK_PMD
        inputs |= {VECTOR_INPUT + v.stem: v for v in sorted(DPDK_VECTORS.glob("*.data"))}
    return inputs


@dataclass
class GuestImage:
    directory: pathlib.Path
    key: str
    kernel_version: str
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def kernel(self) -> pathlib.Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> pathlib.Path:
        return self.directory / "initrd.img"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kernel": str(self.kernel), "initrd": str(self.initrd),
                "kernel_version": self.kernel_version, "manifest": self.manifest}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- Debian packages ----


@dataclass
class Package:
    name: str
    version: str
    sha256: str


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    except FileNotFoundError:
        raise errors.NotFoundError(f"{cmd[0]} is not installed (the guest image needs Debian's apt and "
                                      "dpkg-deb)") from None


def candidate(name: str) -> Package | None:
    """The version apt would install, with its SHA-256 (from the local package lists), or None."""
    r = _run(["apt-cache", "show", "--no-all-versions", name])
    if r.returncode != 0:
        return None
    fields: dict[str, str] = {}
    for line in r.stdout.splitlines():
        if not line.strip():
            break
        k, _, v = line.partition(":")
        if not line.startswith(" ") and v:
            fields[k] = v.strip()
    if "Version" not in fields or "SHA256" not in fields:
        return None
    return Package(name, fields["Version"], fields["SHA256"])


def kernel_package(meta: str = KERNEL_META) -> str:
    """The real kernel package the metapackage depends on (linux-image-6.1.0-NN-amd64)."""
    r = _run(["apt-cache", "depends", "--no-recommends", "--no-suggests", meta])
    for line in r.stdout.splitlines():
        kind, _, dep = line.strip().partition(":")
        if kind in ("Depends", "|Depends") and dep.strip().startswith("linux-image-"):
            return dep.strip().strip("<>")
    raise errors.NotFoundError(f"cannot resolve {meta} to a kernel package: apt-cache knows no such package "
                                  "(run apt-get update)")


class Debs:
    """Downloaded packages under cache/debs/<sha256>.deb, with an index of name -> last sha256 (so
    that a machine without package lists can still build from what it fetched before)."""

    def __init__(self, root: pathlib.Path, say: Say) -> None:
        self.dir = root / "debs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.dir / "index.json"
        self.say = say

    def _index(self) -> dict[str, dict[str, str]]:
        try:
            return dict(json.loads(self.index_path.read_text()))
        except (OSError, ValueError):
            return {}

    def _remember(self, pkg: Package) -> None:
        idx = self._index()
        idx[pkg.name] = {"version": pkg.version, "sha256": pkg.sha256}
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(idx, indent=1, sort_keys=True))
        os.replace(tmp, self.index_path)

    def get(self, name: str) -> tuple[Package, pathlib.Path]:
        try:
            return self._get(name)
        except errors.DeviceError:
            if os.geteuid() != 0:
                raise
            # The mirror dropped the version our package lists name (a security update replaced it).
            self.say("apt-get download failed; refreshing the package lists (apt-get update) and retrying")
            _run(["apt-get", "update", "-qq"])
            return self._get(name)

    def _get(self, name: str) -> tuple[Package, pathlib.Path]:
        pkg = candidate(name)
        if pkg is None:
            known = self._index().get(name)
            if known is None:
                raise errors.NotFoundError(f"apt knows no package {name} and none was downloaded before (run "
                                              "apt-get update)")
            pkg = Package(name, known["version"], known["sha256"])
            self.say(f"{name}: no package list entry; using the one fetched before ({pkg.version})")
        path = self.dir / f"{pkg.sha256}.deb"
        if not path.is_file():
            self.say(f"downloading {name} {pkg.version} (apt-get download)")
            with tempfile.TemporaryDirectory(dir=self.dir) as tmp:
                os.chmod(tmp, 0o755)
                r = _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", f"{name}={pkg.version}"],
                         cwd=tmp)
                got = list(pathlib.Path(tmp).glob("*.deb"))
                if r.returncode != 0 or len(got) != 1:
                    raise errors.DeviceError(f"apt-get download {name}={pkg.version} failed: "
                                                f"{(r.stderr or r.stdout).strip()[-400:]}")
                digest = sha256(got[0].read_bytes())
                if digest != pkg.sha256:
                    raise errors.ValueError(f"{got[0].name}: SHA-256 {digest} but the package list says "
                                            f"{pkg.sha256}")
                os.replace(got[0], path)
        self._remember(pkg)
        return pkg, path


def deb_members(deb: pathlib.Path, want: Callable[[str], bool]) -> dict[str, bytes]:
    """Regular files of a .deb's data archive whose path (without the leading ./) ``want``s."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                name = m.name.removeprefix("./")
                if m.isfile() and want(name):
                    f = tar.extractfile(m)
                    assert f is not None
                    out[name] = f.read()
    finally:
        proc.stdout.close()
        rc = proc.wait()
    if rc != 0:
        raise errors.ValueError(f"dpkg-deb could not read {deb} (exit status {rc})")
    return out


# ---- kernel modules ----


def modinfo(ko: bytes) -> dict[str, str]:
    """The .modinfo section of an ELF64 little-endian module, as key -> value (last wins)."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2 or ko[5] != 1:
        raise errors.ValueError("not an ELF64 little-endian kernel module")
    shoff, = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)
    secs = [struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = secs[shstrndx][4]
    info: dict[str, str] = {}
    for name_off, _type, _flags, _addr, off, size in secs:
        end = ko.index(b"\0", strtab_off + name_off)
        if ko[strtab_off + name_off:end] == b".modinfo":
            for item in ko[off:off + size].split(b"\0"):
                k, sep, v = item.decode(errors="replace").partition("=")
                if sep:
                    info[k] = v
    return info


def module_name(path: str) -> str:
    return pathlib.PurePosixPath(path).name.removesuffix(".ko").replace("-", "_")


def load_order(available: dict[str, bytes], wanted: Iterable[str], builtin: set[str]) -> list[str]:
    """The module files (keys of ``available``) to load for ``wanted``, dependencies first.
    Built-in modules are skipped; a module neither built in nor available is an error."""
    by_name = {module_name(p): p for p in available}
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        if name not in by_name:
            raise errors.NotFoundError(f"kernel module {name} (needed by {' <- '.join(chain) or 'the image'}) is "
                                          "neither built in nor in the kernel package's crypto directories")
        seen.add(name)
        deps = modinfo(available[by_name[name]]).get("depends", "")
        for dep in filter(None, deps.split(",")):
            visit(dep, (name, *chain))
        order.append(by_name[name])

    for w in wanted:
        visit(w, ())
    return order


# ---- the image ----


def _read_input(name: str, path: pathlib.Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        hint = HINTS.get(name, "it lives in the source tree")
        raise errors.NotFoundError(f"{name}: {path} does not exist ({hint})") from None


def build(inputs: dict[str, pathlib.Path] | None = None, cache: pathlib.Path | None = None,
          kernel_meta: str = KERNEL_META, say: Say = log.info, force: bool = False) -> GuestImage:
    """Build the image (or find it in the cache) and return where it is. ``inputs`` replace
    entries of default_inputs()."""
    root = cache or cache_dir()
    paths = default_inputs() | (inputs or {})
    files = {k: _read_input(k, p) for k, p in paths.items()}
    user = userland.collect(files.get("synth.so"), paths["tls_echo"])
    with_dpdk = "librte_crypto_synth.so" in files
    if with_dpdk and not os.path.exists(dpdk.PERF):
        say(f"{dpdk.PERF} is not installed (apt-get install dpdk-dev): the image leaves DPDK out")
        with_dpdk = False
    if with_dpdk:
        dpdk.collect(user, paths["librte_crypto_synth.so"],
                     {k.removeprefix(VECTOR_INPUT): p for k, p in paths.items() if k.startswith(VECTOR_INPUT)})
    debs = Debs(root, say)
    kpkg, kdeb = debs.get(kernel_package(kernel_meta))
    bpkg, bdeb = debs.get(BUSYBOX)
    recipe = {"format": FORMAT, "modules": list(MODULES), "kernel": [kpkg.name, kpkg.version, kpkg.sha256],
              "busybox": [bpkg.name, bpkg.version, bpkg.sha256],
              "files": {k: sha256(v) for k, v in sorted(files.items())},
              "userland": user.digest()}
    key = sha256(json.dumps(recipe, sort_keys=True).encode())[:16]
    out = root / "images" / key
    if (out / "manifest.json").is_file() and not force:
        manifest = json.loads((out / "manifest.json").read_text())
        say(f"guest image {key} is cached: {out}")
        return GuestImage(out, key, manifest["kernel_version"], manifest)

    say(f"building guest image {key} from {kpkg.name} {kpkg.version} and {bpkg.name} {bpkg.version}")
    kfiles = deb_members(kdeb, lambda n: n.startswith("boot/vmlinuz-") or n.endswith("/modules.builtin")
                         or (n.startswith("lib/modules/") and n.endswith(".ko")
                             and any(d in n for d in MODULE_DIRS)))
    vmlinuz = [n for n in kfiles if n.startswith("boot/vmlinuz-")]
    if len(vmlinuz) != 1:
        raise errors.ValueError(f"{kdeb.name}: expected one boot/vmlinuz-*, found {vmlinuz}")
    version = vmlinuz[0].removeprefix("boot/vmlinuz-")
    builtin_file = kfiles.pop(f"lib/modules/{version}/modules.builtin", b"").decode()
    builtin = {module_name(line) for line in builtin_file.split()}
    modules = {n: v for n, v in kfiles.items() if n.endswith(".ko")}
    order = load_order(modules, MODULES, builtin)
    busybox = deb_members(bdeb, lambda n: n == "bin/busybox").get("bin/busybox")
    if busybox is None:
        raise errors.ValueError(f"{bdeb.name} has no bin/busybox")

    manifest = {"key": key, "kernel_version": version, "recipe": recipe,
                "modules": [module_name(p) for p in order], "modules_builtin": sorted(set(MODULES) & builtin),
                "userland": {"packages": user.manifest()["packages"], "provider": "synth.so" in files,
                                  "dpdk": with_dpdk}}
    cpio = Cpio()
    cpio.dir(".")  # the root's mode (0755): the kernel's rootfs is world-writable, and EAL refuses to load
    # a driver from under a world-writable directory
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "run"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", files["init"], 0o755)
    cpio.file("bin/synth-guest", files["synth-guest"], 0o755)
    if "afalg-kat" in files:
        cpio.file("bin/afalg-kat", files["afalg-kat"], 0o755)
    cpio.file("bin/tls-check", files["tls-check"], 0o755)
    cpio.file("bin/dpdk-check", files["dpdk-check"], 0o755)
    if "provider-kat" in files:
        cpio.file("bin/provider-kat", files["provider-kat"], 0o755)
    userland.install(user, cpio)
    moddir = f"lib/modules/{version}"
    cpio.dir(moddir)
    for p in order:
        cpio.file(f"{moddir}/{pathlib.PurePosixPath(p).name}", modules[p])
    cpio.file(f"{moddir}/load.list", "".join(pathlib.PurePosixPath(p).name + "\n" for p in order).encode())
    cpio.file("etc/synth-image.json", (json.dumps(manifest, sort_keys=True) + "\n").encode())
    initrd = gzip_bytes(cpio.bytes())

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{key}-", dir=out.parent))
    try:
        (tmp / "vmlinuz").write_bytes(kfiles[vmlinuz[0]])
        (tmp / "initrd.img").write_bytes(initrd)
        manifest["sha256"] = {"vmlinuz": sha256(kfiles[vmlinuz[0]]), "initrd.img": sha256(initrd)}
        manifest["userland_files"] = user.manifest()  # the image's own copy names the packages only
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"guest image {key}: kernel {version}, initramfs {len(initrd) >> 10} KiB, modules "
        f"{', '.join(manifest['modules'])}")
    return GuestImage(out, key, version, manifest)


def publish(image: GuestImage, directory: pathlib.Path) -> GuestImage:
    """Copy the image where QEMU (the libvirt-qemu user) can read it: the cache usually lives in a
    home directory it cannot enter. Files already there with the same content are kept."""
    dest = directory / image.key
    dest.mkdir(parents=True, exist_ok=True)
    for d in (directory, dest):
        d.chmod(0o755)
    for name in ("vmlinuz", "initrd.img", "manifest.json"):
        src, dst = image.directory / name, dest / name
        if not dst.is_file() or dst.read_bytes() != src.read_bytes():
            tmp = dst.with_name(f".{name}.tmp")
            shutil.copyfile(src, tmp)
            tmp.chmod(0o644)
            os.replace(tmp, dst)
    return GuestImage(dest, image.key, image.kernel_version, image.manifest)
