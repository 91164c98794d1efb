# SPDX-License-Identifier: Apache-2.0
"""``virt-synth demo``: show, step by step, a VNF getting crypto from a synthetic device.

Without ``--connect``: a backend process lays out a crypto device region in a temporary directory
and serves it; this process plays the guest: it opens the device, negotiates features, creates
security associations and encrypts through the shared-memory rings, and checks every result
against in-process OpenSSL. Needs no libvirt.

With ``--connect qemu:///system`` (root): the real thing. A Linux VM (the guest image) started by
libvirtd from the domain XML the generator writes finds a crypto, a compression and two packet
devices on its PCI bus, which virt-synthd serves; its results are checked against the host's own
computation (see docs/guest.md; the steps are in ``libvirt_synth.cli.demo_vm``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from libvirt_synth import errors
from libvirt_synth.abi import Alg
from libvirt_synth.cli.output import emit_json
from libvirt_synth.cmdline import Formatter
from libvirt_synth.guest import Device
from libvirt_synth.host.backend import default_region_dir
from libvirt_synth.host.region import read_header


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the demo: a VNF uses a crypto device served by a backend",
                       description=__doc__, formatter_class=Formatter)
    p.add_argument("--json", action="store_true", help="print the steps as one JSON document")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (and, with --connect, the "
                   "domain's definition)")
    p.add_argument("--connect", metavar="URI", default=None,
                   help="run the VM version on this libvirt URI (qemu:///system; root): guest image, virt-synthd, "
                   "hook, a real guest")
    p.add_argument("--plugin", default=None, metavar="NAME",
                   help="with --connect: pin crypto devices to this plugin (openssl, ipsec-mb, ...) in the "
                   "virt-synthd the demo starts")
    p.add_argument("--timeout", type=float, default=120.0, help="with --connect: seconds the guest may run")
    p.set_defaults(func=run)


class Steps:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.steps: list[dict[str, Any]] = []

    def say(self, title: str, **data: Any) -> None:
        self.steps.append({"step": title, **data})
        if not self.as_json:
            print(f"\n== {len(self.steps)}. {title}")
            for k, v in data.items():
                print(f"   {k}: {v}")
            sys.stdout.flush()


def reference(alg: Alg, key: bytes, iv: bytes, data: bytes, aad: bytes) -> bytes | None:
    """ciphertext || tag from in-process OpenSSL (the `cryptography` package), if installed."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    except ImportError:
        return None
    if alg in (Alg.AES128_GCM, Alg.AES256_GCM):
        return AESGCM(key).encrypt(iv, data, aad)
    if alg == Alg.CHACHA20_POLY1305:
        return ChaCha20Poly1305(key).encrypt(iv, data, aad)
    return None


def start_backend(directory: str, name: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    cmd = [sys.executable, "-m", "libvirt_synth.cli", "serve", "--json", "--dir", directory, "--device", name]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        raise errors.DeviceError(f"the backend exited with status {proc.returncode} before it was ready")
    return proc, json.loads(line)


def run(args: argparse.Namespace) -> int:
    if args.connect:
        from libvirt_synth.cli import demo_vm

        return demo_vm.run(args, Steps(args.json))
    if args.plugin:
        raise errors.ValueError("--plugin applies to the VM demo: give --connect qemu:///system too")
    out = Steps(args.json)
    tmp = tempfile.mkdtemp(prefix="virt-synth-demo-", dir=str(default_region_dir()))
    name = "demo-crypto"
    proc, ready = start_backend(tmp, name)
    path = ready["devices"][0]["path"]
    try:
        out.say("backend started", pid=ready["pid"], region=path, plugin=ready["devices"][0]["plugin"],
                command=f"virt-synth serve --dir {tmp} --device {name}")
        hdr = read_header(path)
        out.say("region laid out (header page read without attaching)", size=hdr.size, queues=hdr.queues,
                ring_entries=hdr.ring_entries, status=hdr.status, algorithms=hdr.algorithms)
        with Device.open(path) as dev:
            info = dev.info()
            out.say("guest opened the device and negotiated features", abi=info.abi_version,
                    features=info.as_dict()["features_accepted"], generation=info.generation)
            q = dev.queue(0)
            results = []
            for alg in (Alg.AES256_GCM, Alg.AES128_GCM, Alg.CHACHA20_POLY1305):
                key = os.urandom(32 if alg != Alg.AES128_GCM else 16)
                iv, aad = os.urandom(12), b"\x00\x00\x10\x01" + (7).to_bytes(4, "big")  # ESP SPI + seq
                payload = b"VNF packet payload: " + os.urandom(44)
                with q.session(alg, key) as s:
                    ct, tag = s.encrypt(payload, iv, aad)
                    ref = reference(alg, key, iv, payload, aad)
                    back = s.decrypt(ct, tag, iv, aad)
                    bad = bytes([tag[0] ^ 1]) + tag[1:]
                    try:
                        s.decrypt(ct, bad, iv, aad)
                        tamper = "accepted (WRONG)"
                    except errors.AuthenticationError:
                        tamper = "authentication failed (as it must)"
                # The inputs too, so that a reader (tests/test_cli.py) can check the result without the demo.
                results.append({"algorithm": alg.label, "key": key.hex(), "iv": iv.hex(), "aad": aad.hex(),
                                "plaintext": payload.hex(), "ciphertext": ct.hex(), "tag": tag.hex(),
                                "matches_openssl": None if ref is None else ref == ct + tag,
                                "decrypts_back": back == payload, "tampered_tag": tamper})
                out.say(f"{alg.label}: encrypt, check, decrypt, tamper", **results[-1])
            n = 2000
            t0 = time.perf_counter()
            with q.session(Alg.AES256_GCM, os.urandom(32)) as s:
                for i in range(n):
                    s.encrypt(b"x" * 64, i.to_bytes(12, "big"))
            dt = time.perf_counter() - t0
            out.say("2000 synchronous 64-byte AES-256-GCM ops from Python", seconds=round(dt, 3),
                    per_op_us=round(dt / n * 1e6, 1),
                    note="Python call overhead dominates; bench/crypto measures the C path")
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=10)
        stats = json.loads(stdout.splitlines()[-1])["stats"]["devices"][path]
        out.say("backend stopped cleanly on SIGTERM", exit_status=proc.returncode, ops=stats["ops"],
                by_status=stats["by_status"], ring_errors=stats["ring_errors"])
        ok = all(r["decrypts_back"] and r["matches_openssl"] is not False and "as it must" in str(r["tampered_tag"])
                 for r in results) and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if not args.keep:
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)
    if args.json:
        emit_json({"ok": ok, "steps": out.steps})
    else:
        print("\ndemo " + ("succeeded" if ok else "FAILED"))
    return 0 if ok else 1
