# SPDX-License-Identifier: Apache-2.0
"""What the built-in plugins serve on this host's CPU, from /proc/cpuinfo's flags as the host
inventory reads them (independent of the plugins' own probes, which the tests check against it)."""

from __future__ import annotations

from libvirt_synth.inventory import cpu

#: The SHA instructions: with them the ipsec-mb plugin also serves AES-256-CBC + HMAC-SHA-256.
SHA_NI = "sha_ni" in cpu.read().flags

#: What the ipsec-mb plugin serves here, by label, in the catalog's order.
IPSECMB_ALGS = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"] + (["aes-256-cbc-hmac-sha256"] if SHA_NI else [])
