# SPDX-License-Identifier: Apache-2.0
"""cffi build script: the only FFI() of the project. Compiles the C core into
``libvirt_synth._native`` (host data path, plugins, guest library) at install time.

The declarations cffi needs live in native/ffi/*.cdef, one file per part (device ABI, each device
class, plugins, host, guest), concatenated in name order; constants are declared ``...`` so the
compiler supplies their values."""

from __future__ import annotations

import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = sorted(str(p.relative_to(HERE.parent)) for p in (HERE / "src").rglob("*.c"))
CDEF = "\n".join(p.read_text() for p in sorted((HERE / "ffi").glob("*.cdef")))
HEADERS = sorted(p.name for p in (HERE / "include" / "synth").glob("*.h") if not p.name.endswith("_pvt.h"))

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "libvirt_synth._native",
    "\n".join(f'#include "synth/{h}"' for h in HEADERS),
    sources=SOURCES,
    include_dirs=[str(HERE / "include")],
    libraries=["crypto", "IPSec_MB", "z", "zstd", "lz4", "isal", "pthread", "dl"],
    define_macros=[("_GNU_SOURCE", "1")],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-unused-function", "-fvisibility=hidden"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
