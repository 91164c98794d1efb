# SPDX-License-Identifier: Apache-2.0
"""Raw access to a region's shared memory, for tests that play a hostile guest: write ring
indices, descriptors and header words directly, bypassing the guest library."""

from __future__ import annotations

import mmap
import os
from typing import Any

from libvirt_synth._native import ffi, lib


class RawRegion:
    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            self.size = os.fstat(fd).st_size
            self.map = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self.base = ffi.from_buffer("char[]", self.map)
        self.hdr = ffi.cast("struct synth_dev_header *", self.base)

    def queue(self, i: int) -> tuple[Any, Any, Any, Any, int]:
        """(sq core, sq entries, cq core, cq entries, arena offset) of queue i."""
        qi = self.hdr.queues[i]
        sq = ffi.cast("struct synth_ring_core *", self.base + qi.sq_off)
        cq = ffi.cast("struct synth_ring_core *", self.base + qi.cq_off)
        sqe = ffi.cast("struct synth_desc *", self.base + qi.sq_off + lib.SYNTH_RING_ENTRIES_OFF)
        cqe = ffi.cast("struct synth_cpl *", self.base + qi.cq_off + lib.SYNTH_RING_ENTRIES_OFF)
        return sq, sqe, cq, cqe, qi.arena_off

    def close(self) -> None:
        del self.base, self.hdr
        self.map.close()
