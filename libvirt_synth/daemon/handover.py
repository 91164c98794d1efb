# SPDX-License-Identifier: Apache-2.0
"""The sealed hand-over of a domain's devices from one virt-synthd to another (a migration, or a
save restored elsewhere).

Each daemon has a long-term X25519 key pair, ``handover.key`` in its state directory (mode 0600,
made at first use). A hand-over blob is sealed by the sending daemon to the receiving daemon's
public key and authenticated by the sender's own key, so that whoever carries it (the
orchestrator, a save file on disk) can read only its clear header::

    MAGIC | u32 header length | header (JSON) | nonce (12) | ChaCha20-Poly1305(payload)

The header names the domain, its device records (shapes only: no keys), the sender's and the
receiver's public keys and an ephemeral public key. The AEAD key is HKDF-SHA256 over
X25519(ephemeral, receiver) || X25519(sender, receiver), bound to the three public keys; the
header is the AEAD's associated data. The receiver learns that the blob was made by the holder of
the sender's private key, for the receiver alone, and that nothing in it changed.

The payload is each device's region and vault file, zero pages left out, compressed."""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from libvirt_synth import errors
from libvirt_synth.daemon.checks import write_private

MAGIC = b"SYNTHHO1"
KEY_FILE = "handover.key"
PAGE = 4096
INFO = b"libvirt-synth hand-over v1"


class HandoverError(errors.ValueError):
    """A hand-over blob is malformed, sealed for another daemon, or was not made by the expected one."""


def _x25519() -> Any:
    from cryptography.hazmat.primitives.asymmetric import x25519
    return x25519


@dataclass
class KeyPair:
    private: Any  # x25519.X25519PrivateKey
    public: bytes

    @property
    def public_hex(self) -> str:
        return self.public.hex()

    @classmethod
    def load_or_create(cls, state_dir: str) -> KeyPair:
        """The daemon's key pair from its state directory; made (0600) if there is none."""
        x = _x25519()
        path = os.path.join(state_dir, KEY_FILE)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raw = x.X25519PrivateKey.generate().private_bytes_raw()
            write_private(path, raw)
        if len(raw) != 32:
            raise HandoverError(f"{path}: expected a 32-byte X25519 private key, found {len(raw)} bytes; "
                                "remove it to make a new key pair (peers that pinned the old key must "
                                "pin the new one)")
        priv = x.X25519PrivateKey.from_private_bytes(raw)
        return cls(priv, priv.public_key().public_bytes_raw())


def parse_public(text: str, what: str = "public key") -> bytes:
    """A public key as the daemon prints it: 64 hex digits."""
    try:
        raw = bytes.fromhex(text.strip())
    except (ValueError, AttributeError):
        raw = b""
    if len(raw) != 32:
        raise HandoverError(f"{what} {text!r}: expected 64 hex digits (an X25519 public key, as "
                            "`virt-synth daemon key` prints it)")
    return raw


def _aead_key(shared: bytes, sender: bytes, eph: bytes, receiver: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    return HKDF(hashes.SHA256(), 32, salt=None, info=INFO + sender + eph + receiver).derive(shared)


def seal(header: dict[str, Any], payload: bytes, sender: KeyPair, receiver: bytes) -> bytes:
    """A blob only ``receiver`` can open, made by ``sender``."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    x = _x25519()
    eph = x.X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes_raw()
    peer = x.X25519PublicKey.from_public_bytes(receiver)
    key = _aead_key(eph.exchange(peer) + sender.private.exchange(peer), sender.public, eph_pub, receiver)
    head = json.dumps(header | {"sender": sender.public.hex(), "receiver": receiver.hex(),
                                "ephemeral": eph_pub.hex()}, sort_keys=True).encode()
    nonce = os.urandom(12)
    return MAGIC + struct.pack("<I", len(head)) + head + nonce + ChaCha20Poly1305(key).encrypt(nonce, payload, head)


def header_of(blob: bytes) -> dict[str, Any]:
    """The clear header of a blob (not yet authenticated: open() checks it)."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise HandoverError("not a hand-over blob (bad magic)")
    (n,) = struct.unpack_from("<I", blob, len(MAGIC))
    start = len(MAGIC) + 4
    if n > len(blob) - start - 12 - 16:
        raise HandoverError("hand-over blob is truncated")
    try:
        head = json.loads(blob[start:start + n])
    except ValueError:
        raise HandoverError("hand-over blob has a malformed header") from None
    if not isinstance(head, dict):
        raise HandoverError("hand-over blob has a malformed header")
    return head


def open_blob(blob: bytes, receiver: KeyPair, senders: set[bytes] | None = None) -> tuple[dict[str, Any], bytes]:
    """Header and payload of a blob sealed to ``receiver``; with ``senders``, only from one of them."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    head = header_of(blob)
    try:
        sender = bytes.fromhex(head["sender"])
        eph = bytes.fromhex(head["ephemeral"])
        to = bytes.fromhex(head["receiver"])
    except (KeyError, TypeError, ValueError):
        raise HandoverError("hand-over blob header lacks its keys") from None
    if to != receiver.public:
        raise HandoverError(f"the hand-over is sealed for daemon key {to.hex()[:16]}..., not this daemon's "
                            f"({receiver.public_hex[:16]}...): ask the sending daemon for one sealed to this key")
    if senders is not None and sender not in senders:
        raise HandoverError(f"the hand-over was made by daemon key {sender.hex()[:16]}..., which is not "
                            "among this daemon's [migration] peers")
    x = _x25519()
    try:
        s_pub = x.X25519PublicKey.from_public_bytes(sender)
        e_pub = x.X25519PublicKey.from_public_bytes(eph)
    except ValueError:
        raise HandoverError("hand-over blob header has malformed keys") from None
    key = _aead_key(receiver.private.exchange(e_pub) + receiver.private.exchange(s_pub), sender, eph, to)
    (n,) = struct.unpack_from("<I", blob, len(MAGIC))
    start = len(MAGIC) + 4
    head_raw = blob[start:start + n]
    nonce = blob[start + n:start + n + 12]
    try:
        payload = ChaCha20Poly1305(key).decrypt(nonce, blob[start + n + 12:], head_raw)
    except InvalidTag:
        raise HandoverError("the hand-over blob does not authenticate: it was changed, or not made by "
                            f"daemon key {sender.hex()[:16]}...") from None
    return head, payload


# ---- the payload: named files, zero pages left out ----


def pack(files: dict[str, bytes]) -> bytes:
    """name -> contents, as one compressed payload; whole zero pages cost a bit each."""
    out = bytearray()
    zero = bytes(PAGE)
    for name, data in files.items():
        raw = name.encode()
        pages = (len(data) + PAGE - 1) // PAGE
        bitmap = bytearray((pages + 7) // 8)
        body = bytearray()
        for i in range(pages):
            page = data[i * PAGE:(i + 1) * PAGE]
            if page != zero[:len(page)]:
                bitmap[i >> 3] |= 1 << (i & 7)
                body += page
        out += struct.pack("<HQ", len(raw), len(data)) + raw + bitmap + body
    return zlib.compress(bytes(out), 1)


def unpack(payload: bytes) -> dict[str, bytes]:
    try:
        data = zlib.decompress(payload)
    except zlib.error:
        raise HandoverError("hand-over payload does not decompress") from None
    files: dict[str, bytes] = {}
    i = 0
    try:
        while i < len(data):
            n, size = struct.unpack_from("<HQ", data, i)
            i += 10
            name = data[i:i + n].decode()
            i += n
            pages = (size + PAGE - 1) // PAGE
            bitmap = data[i:i + (pages + 7) // 8]
            i += (pages + 7) // 8
            buf = bytearray(size)
            for p in range(pages):
                if bitmap[p >> 3] & (1 << (p & 7)):
                    length = min(PAGE, size - p * PAGE)
                    if i + length > len(data):
                        raise HandoverError("hand-over payload is truncated")
                    buf[p * PAGE:p * PAGE + length] = data[i:i + length]
                    i += length
            files[name] = bytes(buf)
    except (struct.error, UnicodeDecodeError, IndexError):
        raise HandoverError("hand-over payload is malformed") from None
    return files
