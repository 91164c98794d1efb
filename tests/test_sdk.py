# SPDX-License-Identifier: Apache-2.0
"""The guest library as an SDK: `make install` puts the headers, libsynth.a, libsynth.so and
libsynth.pc under DESTDIR + PREFIX; each installed header compiles alone as C and as C++; the C++
example builds from pkg-config's flags, statically and against the shared library, and seals a
payload through a served device exactly as AES-GCM says."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libvirt_synth.host.device import HostDevice

ROOT = pathlib.Path(__file__).resolve().parent.parent
PREFIX = "/opt/synth"
VERSION = "1.3.0"
WARN = ["-Wall", "-Wextra", "-Werror", "-pedantic"]

pytestmark = pytest.mark.skipif(not (shutil.which("g++") and shutil.which("pkg-config")),
                                reason="needs g++ and pkg-config (build-essential and pkg-config, apt-packages.txt)")


@dataclasses.dataclass(frozen=True)
class Sdk:
    destdir: pathlib.Path

    @property
    def root(self) -> pathlib.Path:
        return self.destdir / PREFIX.lstrip("/")

    @property
    def include(self) -> pathlib.Path:
        return self.root / "include"

    @property
    def lib(self) -> pathlib.Path:
        return self.root / "lib"

    def pkg_config(self, *args: str, sysroot: bool = True) -> list[str]:
        """pkg-config's answer with only this install on its search path."""
        env = {**os.environ, "PKG_CONFIG_LIBDIR": str(self.lib / "pkgconfig")}
        env.pop("PKG_CONFIG_PATH", None)
        env.pop("PKG_CONFIG_SYSROOT_DIR", None)
        if sysroot:
            env["PKG_CONFIG_SYSROOT_DIR"] = str(self.destdir)
        r = subprocess.run(["pkg-config", *args, "libsynth"], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()


def make(*args: str) -> None:
    r = subprocess.run(["make", "-s", "-C", str(ROOT), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Sdk:
    destdir = tmp_path_factory.mktemp("destdir")
    make("install", f"DESTDIR={destdir}", f"PREFIX={PREFIX}")
    return Sdk(destdir)


def guest_headers() -> set[str]:
    """What a guest program includes: synth/guest.h and what it includes, and the ABI's *_core.h."""
    todo = ["guest.h", "device_core.h", "crypto_core.h", "compress_core.h", "packet_core.h"]
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += re.findall(r'#include "synth/([\w.]+)"', (ROOT / "native/include/synth" / name).read_text())
    return found


def test_install_lays_out_the_sdk(sdk: Sdk) -> None:
    assert {p.name for p in (sdk.include / "synth").iterdir()} == guest_headers()
    for h in guest_headers():
        assert (sdk.include / "synth" / h).read_bytes() == (ROOT / "native/include/synth" / h).read_bytes()
    assert (sdk.lib / "libsynth.a").is_file()
    assert os.readlink(sdk.lib / "libsynth.so") == "libsynth.so.1"
    assert os.readlink(sdk.lib / "libsynth.so.1") == f"libsynth.so.{VERSION}"
    so = sdk.lib / f"libsynth.so.{VERSION}"
    dyn = subprocess.run(["readelf", "-d", str(so)], capture_output=True, text=True, check=True).stdout
    assert "Library soname: [libsynth.so.1]" in dyn
    exported = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True,
                              check=True).stdout.split()[2::3]
    assert {"synth_dev_open_path", "synth_crypto_op", "synth_comp_compress", "synth_pkt_send_packets"} <= set(exported)
    assert [s for s in exported if not s.startswith("synth_")] == [], "only the API is exported"
    assert sdk.pkg_config("--modversion") == [VERSION]


def test_pkg_config_points_into_the_destdir(sdk: Sdk) -> None:
    want = [f"-I{sdk.include}", f"-L{sdk.lib}", "-lsynth"]
    assert sdk.pkg_config("--cflags", "--libs") == want
    assert sdk.pkg_config(f"--define-variable=prefix={sdk.root}", "--cflags", "--libs", sysroot=False) == want
    assert sdk.pkg_config("--variable=prefix", sysroot=False) == [PREFIX]


@pytest.mark.parametrize(("compiler", "std"), [("gcc", "c11"), ("g++", "c++11"), ("g++", "c++17")])
def test_each_header_compiles_alone(sdk: Sdk, tmp_path: pathlib.Path, compiler: str, std: str) -> None:
    src = tmp_path / ("one.c" if compiler == "gcc" else "one.cc")
    for h in sorted(guest_headers()):
        src.write_text(f"#include <synth/{h}>\n")
        r = subprocess.run([compiler, f"-std={std}", *WARN, "-fsyntax-only", f"-I{sdk.include}", str(src)],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"synth/{h} as {std}:\n{r.stderr}"


# A second translation unit: every header (in an order of its own) and their inline functions, so
# that C++ compiles the inlines and the linker sees the headers define nothing twice.
ALL_HEADERS_CC = """\
{includes}
#include <cstring>

uint64_t sdk_inline_check(struct synth_desc *d)
{{
    synth_crypto_desc(d, SYNTH_OP_CRYPTO_ENCRYPT, 1, 0, 0, 16, 0, 0, 0, 0, 7);
    synth_comp_desc(d, SYNTH_OP_COMP_COMPRESS, SYNTH_CALG_ZSTD, SYNTH_COMP_LEVEL_DEFAULT, 0, 16, 128, 64, 8);
    synth_comp_stream_desc(d, 1, SYNTH_FLUSH_FINISH, 0, 0, 0, 64, 9);
    return synth_comp_bound(d->dst_len) + synth_pkt_txq(1) + synth_pkt_rxq(1) + synth_ring_seq(UINT32_MAX)
           + synth_cpl_phase(8, 8);
}}
"""


def build(sdk: Sdk, tmp_path: pathlib.Path, static: bool) -> pathlib.Path:
    headers = tmp_path / "all_headers.cc"
    headers.write_text(ALL_HEADERS_CC.format(
        includes="\n".join(f"#include <synth/{h}>" for h in sorted(guest_headers(), reverse=True))))
    exe = tmp_path / ("guest-crypto-static" if static else "guest-crypto-shared")
    flags = sdk.pkg_config("--cflags", "--libs", *(["--static"] if static else []))
    cmd = ["g++", "-std=c++17", *WARN, "-O2", *(["-static"] if static else []),
           str(ROOT / "examples/guest-crypto.cc"), str(headers), *flags, "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, " ".join(cmd) + "\n" + r.stderr
    return exe


def check_sealed(out: str) -> None:
    fields = dict(line.split("=", 1) for line in out.split())
    payload = b"synthetic devices keep VNFs portable"
    want = AESGCM(bytes(range(32))).encrypt(b"\x42" * 12, payload, bytes.fromhex("0000100100000007"))
    assert bytes.fromhex(fields["ciphertext"]) + bytes.fromhex(fields["tag"]) == want
    assert fields["backend"]


def test_cpp_example_static(sdk: Sdk, tmp_path: pathlib.Path, served: HostDevice) -> None:
    exe = build(sdk, tmp_path, static=True)
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
    check_sealed(subprocess.run([str(exe), served.path], capture_output=True, text=True, timeout=30,
                                check=True).stdout)
    assert served.stats().sessions == 0, "the session's destructor destroyed it"


def test_cpp_example_shared(sdk: Sdk, tmp_path: pathlib.Path, served: HostDevice) -> None:
    exe = build(sdk, tmp_path, static=False)
    env = {**os.environ, "LD_LIBRARY_PATH": str(sdk.lib)}
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, env=env, check=True).stdout
    assert re.search(rf"libsynth\.so\.1 => {re.escape(str(sdk.lib))}/libsynth\.so\.1 ", ldd), ldd
    check_sealed(subprocess.run([str(exe), served.path], capture_output=True, text=True, timeout=30,
                                env=env, check=True).stdout)
    assert served.stats().sessions == 0
    r = subprocess.run([str(exe), str(tmp_path / "missing")], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "No such file" in r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "usage" in r.stderr


def test_uninstall_removes_what_install_put(tmp_path: pathlib.Path) -> None:
    make("install", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    assert (tmp_path / "usr/lib/pkgconfig/libsynth.pc").read_text().startswith("# libsynth")
    make("uninstall", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []
    assert not (tmp_path / "usr/include/synth").exists()
