# SPDX-License-Identifier: Apache-2.0
"""The guest image's DPDK: Debian's ``dpdk-test-crypto-perf`` with exactly the shared libraries it
loads, the ``crypto_synth`` PMD (``native/build/dpdk/librte_crypto_synth.so``, ``make dpdk``) and
the test-vector files that the init's step ``dpdk`` (``guest/dpdk-check.sh``) verifies the device
with.

Debian installs DPDK's drivers in one directory (``/usr/lib/x86_64-linux-gnu/dpdk/pmds-<ABI>/``),
which EAL loads in full at start-up when it exists; the program links two of them (the vdev bus
and the crypto scheduler) and finds them there by its RUNPATH. The image has no such directory:
each driver file it carries sits where its package also installs it, the library directory
(``/usr/lib/x86_64-linux-gnu/librte_bus_vdev.so.23``), which the loader searches after the
RUNPATH, and the drivers the application needs are named with ``-d``, one by one: the ring
mempool (every DPDK mempool's default handler, which the program does not link) and the PMD.
``DRIVERS`` lists them in the order to load them; the step reads that list.

Every file is recorded in the userland's manifest with its package and version, or its source.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

from libvirt_synth import errors
from libvirt_synth.testbed import userland

PERF = "/usr/bin/dpdk-test-crypto-perf"
MEMPOOL_DRIVER = "librte_mempool_ring.so"  # + the ABI's soname suffix, found next to the program's libraries
PMD = "/usr/lib/libvirt-synth/dpdk/librte_crypto_synth.so"  # a root-owned directory: EAL refuses others
SHARE = "/usr/share/libvirt-synth/dpdk"
DRIVERS = f"{SHARE}/drivers"          # the -d arguments, one path a line
VECTORS = f"{SHARE}/vectors"          # <name>.data: dpdk-test-crypto-perf test-vector files
PMDS_MARK = "/dpdk/pmds-"             # Debian's driver directory: .../dpdk/pmds-<ABI>/


def out_of_pmds_dir(path: str) -> str:
    """A library that ldd found in Debian's driver directory -> the name its package also installs
    in the library directory (a link to the same file); any other path as it is."""
    if PMDS_MARK not in path:
        return path
    libdir = path[:path.index(PMDS_MARK)]
    alias = f"{libdir}/{pathlib.PurePosixPath(path).name}"
    if not os.path.exists(alias) or os.path.realpath(alias) != os.path.realpath(path):
        raise errors.NotFoundError(f"{path} has no link {alias} to it: the guest image would need DPDK's driver "
                                   "directory, which EAL loads in full (is the DPDK package complete?)")
    return alias


def mempool_driver(perf: str = PERF) -> str:
    """The ring mempool driver of the DPDK that ``perf`` links (same ABI as its librte_eal)."""
    eal = [lib for lib in userland.needed_libraries(perf)
           if pathlib.PurePosixPath(lib).name.startswith("librte_eal.so")]
    if not eal:
        raise errors.ValueError(f"{perf} does not link librte_eal: not a shared DPDK application")
    abi = pathlib.PurePosixPath(eal[0]).name.removeprefix("librte_eal.so")  # ".23"
    path = str(pathlib.PurePosixPath(eal[0]).parent / f"{MEMPOOL_DRIVER}{abi}")
    if not os.path.exists(path):
        raise errors.NotFoundError(f"{path} is not installed: DPDK's mempools need it (Debian: apt-get install "
                                   f"librte-mempool-ring{abi.lstrip('.')})")
    return path


def collect(u: userland.Userland, pmd: pathlib.Path, vectors: dict[str, pathlib.Path], perf: str = PERF) -> None:
    """Add dpdk-test-crypto-perf, the mempool driver, the PMD ``pmd``, the libraries the three
    load and the test-vector files ``vectors`` (name -> file) to ``u``."""
    if not os.path.exists(perf):
        raise errors.NotFoundError(f"{perf} is not installed (Debian: apt-get install dpdk-dev)")
    mempool = mempool_driver(perf)
    libs = [out_of_pmds_dir(p) for p in userland.closure(u, [perf, mempool, str(pmd)])]
    userland.add_packaged(u, list(dict.fromkeys([perf, mempool, *libs])))
    carried = [p for p in u.files if PMDS_MARK in p]  # a driver named by its package path, not its link
    if carried:
        raise errors.ValueError(f"{carried[0]}: the guest image must not carry DPDK's driver directory")
    u.add(PMD, pmd.read_bytes(), "native/build/dpdk/librte_crypto_synth.so", 0o755)
    name = pathlib.PurePosixPath(mempool).name
    mempool_at = next(p for p in u.files if pathlib.PurePosixPath(p).name == name)
    u.add(DRIVERS, f"{mempool_at}\n{PMD}\n".encode(), "generated")
    for vec, path in sorted(vectors.items()):
        u.add(f"{VECTORS}/{vec}.data", path.read_bytes(), f"tests/data/dpdk/{path.name}")


def loadable_copy(built: pathlib.Path) -> pathlib.Path:
    """A copy of the driver ``built`` that EAL will load with ``-d``: EAL refuses a driver under any
    world-writable directory ("directory path /tmp is world-writable and insecure"), and a checkout
    may live in /tmp. The copy goes under the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``,
    ``libvirt-synth/dpdk/``, made 0700), named by its content's hash so that a rebuilt driver gets a
    new name and an unchanged one is not copied again. Raises errors.PermissionError if a directory
    on the way is world-writable."""
    base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    d = base / "libvirt-synth" / "dpdk"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    for p in (d, *d.parents):
        if p.stat().st_mode & 0o002:
            raise errors.PermissionError(f"{p} is world-writable: EAL would refuse to load a driver from under it "
                                         "(set XDG_CACHE_HOME to a private directory)")
    data = built.read_bytes()
    dst = d / f"{built.stem}-{hashlib.sha256(data).hexdigest()[:12]}.so"
    if not dst.is_file():
        tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o755)
        tmp.replace(dst)
    return dst
