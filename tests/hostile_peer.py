# SPDX-License-Identifier: Apache-2.0
"""A hostile guest, run as a separate process by the tests:

  hostile_peer.py scribble PATH SECONDS   overwrite descriptor slots and the arena of queue 0 with
                                          random bytes as fast as it can (races the backend)
  hostile_peer.py flood PATH SECONDS      open the device and flood it with random descriptors,
                                          random ring indices and resets

Prints one JSON line of counters when done."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))

from libvirt_synth import errors  # noqa: E402
from libvirt_synth.guest import Device  # noqa: E402

from rawregion import RawRegion  # noqa: E402


def scribble(path: str, seconds: float) -> dict[str, int]:
    raw = RawRegion(path)
    sq, sqe, _, _, arena_off = raw.queue(0)
    entries = raw.hdr.ring_entries
    rng = random.Random(os.getpid())
    buf = raw.map
    arena_probe = arena_off + 64 * 1024  # the guest's buffers sit at the start of the arena
    writes = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(1000):
            slot = rng.randrange(entries)
            d = sqe[slot]
            field = rng.randrange(8)
            v = rng.choice([rng.getrandbits(32), 0, 0xFFFFFFFF, rng.randrange(1 << 20)])
            if field == 0:
                d.src_off = v
            elif field == 1:
                d.src_len = v
            elif field == 2:
                d.dst_off = v
            elif field == 3:
                d.aad_len = v
            elif field == 4:
                d.session = v
            elif field == 5:
                d.opcode = v & 0xFFFF
            elif field == 6:
                d.tag_off = v
            else:
                off = arena_off + rng.randrange(arena_probe - arena_off)
                buf[off:off + 8] = rng.randbytes(8)
            writes += 1
    raw.close()
    return {"writes": writes}


def flood_with(path: str, seconds: float, queues: int,
               random_desc: Callable[[random.Random], dict[str, int]]) -> dict[str, int]:
    """Open the device and, for `seconds`, submit bursts of random_desc(rng) descriptors to one of its
    first `queues` queues and poll; now and then throw random ring indices and sequence words at it,
    and reset the device when it needs one (or at random). Counters of what was done."""
    rng = random.Random(os.getpid())
    counts = {"submitted": 0, "completed": 0, "resets": 0, "index_attacks": 0}
    dev = Device.open(path)
    raw = RawRegion(path)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        qi = rng.randrange(queues)
        q = dev.queue(qi)
        descs = q.descs([random_desc(rng) for _ in range(rng.randrange(1, 64))])
        counts["submitted"] += q.submit(descs)
        counts["completed"] += len(q.poll(64))
        if rng.random() < 0.05:
            sq, sqe, cq, _, _ = raw.queue(qi)
            sq.prod = rng.getrandbits(32)
            sqe[rng.randrange(raw.hdr.ring_entries)].seq = rng.getrandbits(32)
            cq.cons = rng.getrandbits(32)
            counts["index_attacks"] += 1
        if dev.needs_reset or rng.random() < 0.01:
            try:
                dev.reset()
                counts["resets"] += 1
            except errors.SynthError:
                pass
    raw.close()
    dev.close()
    return counts


def random_crypto_desc(rng: random.Random) -> dict[str, int]:
    return {
        "cookie": rng.getrandbits(64), "opcode": rng.choice([0x10, 0x11, 0x12, 0x13, rng.getrandbits(16)]),
        "flags": rng.choice([0, rng.getrandbits(16)]), "session": rng.getrandbits(32),
        "src_off": rng.getrandbits(32), "src_len": rng.choice([0, 16, 264, rng.getrandbits(32)]),
        "dst_off": rng.getrandbits(32), "dst_len": rng.getrandbits(32), "aad_off": rng.getrandbits(32),
        "aad_len": rng.getrandbits(16), "iv_off": rng.getrandbits(32), "tag_off": rng.getrandbits(32),
    }


def flood(path: str, seconds: float) -> dict[str, int]:
    return flood_with(path, seconds, 1, random_crypto_desc)


if __name__ == "__main__":
    mode, path, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    result = scribble(path, secs) if mode == "scribble" else flood(path, secs)
    print(json.dumps(result), flush=True)
