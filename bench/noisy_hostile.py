# SPDX-License-Identifier: Apache-2.0
"""Hostile guests for bench/noisy: the loads a hostile tenant puts on its neighbours. Each drives the
device N until SIGTERM, from the guest CPU, and prints one JSON line when it starts and one with
what it did when it stops (the protocol of noisy_bench.c's flooder):

  deflate-bombs  bursts of 6 one-shot DECOMPRESS of a 900 MiB deflate bomb of zeros (a 0.9 MB
                 frame) into a 4 KiB destination: each asks the device to count the size it needs
  zstd19         one-shot COMPRESS of 1 MiB of text-like data at zstd level 19, back to back
  epoch-storm    the driver changes its epoch as fast as it can, on a device of 64 queues of 4096
                 entries: 21 MB of rings to zero per reset

    noisy_hostile.py KIND REGION SECONDS CPU
"""

from __future__ import annotations

import json
import mmap
import os
import pathlib
import random
import signal
import sys
import time
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libvirt_synth.abi import CAlg, CompOp  # noqa: E402
from libvirt_synth.guest import Device  # noqa: E402

BOMB = ROOT / "bench" / "out" / "deflate-bomb-900m.bin"
KINDS = ("deflate-bombs", "zstd19", "epoch-storm")
# Header words (docs/device-abi.md 3.2): the driver's epoch and status.
DRV_STATUS_OFF, DRV_EPOCH_OFF = 192, 196


def bomb() -> bytes:
    """900 MiB of zeros as one raw deflate stream, made once and kept in bench/out/."""
    if not BOMB.exists():
        BOMB.parent.mkdir(parents=True, exist_ok=True)
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        mib = bytes(1 << 20)
        tmp = BOMB.with_suffix(".tmp")
        tmp.write_bytes(b"".join(z.compress(mib) for _ in range(900)) + z.flush())
        tmp.replace(BOMB)
    return BOMB.read_bytes()


def main(kind: str, path: str, seconds: float, cpu: int) -> int:
    os.sched_setaffinity(0, {cpu})
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    end = time.monotonic() + seconds
    ops = 0
    if kind == "epoch-storm":
        fd = os.open(path, os.O_RDWR)
        m = mmap.mmap(fd, 4096)
        os.close(fd)
        with Device.open(path):  # a driver attached once, then misbehaving
            pass
        m[DRV_STATUS_OFF:DRV_STATUS_OFF + 4] = (0xF).to_bytes(4, "little")
        epoch = int.from_bytes(m[DRV_EPOCH_OFF:DRV_EPOCH_OFF + 4], "little")
        print(json.dumps({"event": "hostile", "kind": kind}), flush=True)
        t0 = time.monotonic()
        while not stop and time.monotonic() < end:
            for _ in range(1000):
                epoch = (epoch + 1) & 0xFFFFFFFF
                m[DRV_EPOCH_OFF:DRV_EPOCH_OFF + 4] = epoch.to_bytes(4, "little")
            ops += 1000
        m.close()
    else:
        with Device.open(path) as g:
            q = g.queue(0)
            if kind == "deflate-bombs":
                blob = bomb()
                with q.scratch(len(blob), 4096) as (src, dst):
                    src.write(blob)
                    descs = q.descs([{"opcode": CompOp.DECOMPRESS, "src_off": src.offset, "src_len": len(blob),
                                      "dst_off": dst.offset, "dst_len": 4096, "arg": [int(CAlg.DEFLATE), 0, 0],
                                      "cookie": i} for i in range(6)])
                    print(json.dumps({"event": "hostile", "kind": kind}), flush=True)
                    t0 = time.monotonic()
                    while not stop and time.monotonic() < end:
                        assert q.submit(descs) == 6
                        done = q.drain(6)
                        assert len(done) == 6
                        ops += 6
            else:
                from libvirt_synth.guest.compress import Compressor

                rng = random.Random(13)  # text-like: level 19 searches it hard, most of a second per MiB
                words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(4000)]
                data = b" ".join(rng.choices(words, k=200000))[:1 << 20]
                c = Compressor(q)
                print(json.dumps({"event": "hostile", "kind": kind}), flush=True)
                t0 = time.monotonic()
                while not stop and time.monotonic() < end:
                    c.compress(data, CAlg.ZSTD, 19)
                    ops += 1
    elapsed = max(time.monotonic() - t0, 1e-9)
    print(json.dumps({"checked": True, "kind": kind, "ops": ops, "ops_per_s": ops / elapsed, "gbps": 0.0}),
          flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: noisy_hostile.py {{{'|'.join(KINDS)}}} REGION SECONDS CPU")
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
