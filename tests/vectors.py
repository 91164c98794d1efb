# SPDX-License-Identifier: Apache-2.0
"""Parsers for the test vector files under tests/data/vectors/ (NIST CAVP .rsp, RFC extracts)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

VECTORS = pathlib.Path(__file__).parent / "data" / "vectors"


@dataclass(frozen=True)
class AeadVector:
    name: str
    key: bytes
    iv: bytes
    aad: bytes
    pt: bytes
    ct: bytes
    tag: bytes
    ok: bool  # False: the tag must not verify


def _blocks(path: pathlib.Path) -> list[dict[str, str]]:
    out = []
    for block in path.read_text().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.strip().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("["):
                continue
            if line == "FAIL":
                fields["FAIL"] = "1"
                continue
            k, _, v = line.partition("=")
            fields[k.strip()] = v.strip()
        if fields:
            out.append(fields)
    return out


def nist_gcm(filename: str) -> list[AeadVector]:
    path = VECTORS / filename
    vecs = []
    for i, f in enumerate(_blocks(path)):
        if "Key" not in f:
            continue
        vecs.append(AeadVector(
            name=f"{path.stem}#{i}",
            key=bytes.fromhex(f["Key"]), iv=bytes.fromhex(f["IV"]), aad=bytes.fromhex(f.get("AAD", "")),
            pt=bytes.fromhex(f.get("PT", "")), ct=bytes.fromhex(f.get("CT", "")), tag=bytes.fromhex(f["Tag"]),
            ok="FAIL" not in f,
        ))
    return vecs


def rfc8439() -> list[AeadVector]:
    return [AeadVector(
        name=f["Name"], key=bytes.fromhex(f["Key"]), iv=bytes.fromhex(f["Nonce"]), aad=bytes.fromhex(f["AAD"]),
        pt=bytes.fromhex(f["Plaintext"]), ct=bytes.fromhex(f["Ciphertext"]), tag=bytes.fromhex(f["Tag"]),
        ok=f["Result"] == "PASS",
    ) for f in _blocks(VECTORS / "rfc8439-chacha20-poly1305.txt") if "Name" in f]


def rfc4231() -> list[tuple[str, bytes, bytes, bytes]]:
    return [(f["Case"], bytes.fromhex(f["Key"]), bytes.fromhex(f["Data"]), bytes.fromhex(f["Tag"]))
            for f in _blocks(VECTORS / "rfc4231-hmac-sha256.txt") if "Case" in f]
