# SPDX-License-Identifier: Apache-2.0
"""Defaults that more than one part relies on, in one home.

Per-domain QEMU identity (``[isolation]`` of virt-synthd.toml): ``virt-synth xml``/``define``
give each domain's QEMU a uid of its own from ``ISOLATION_UIDS`` and the group
``ISOLATION_GROUP``; virt-synthd checks what the hook asks for against the same range."""

from __future__ import annotations

#: Far above the ranges that useradd, /etc/subuid and systemd's dynamic users hand out.
ISOLATION_UIDS = (900_000_000, 900_065_535)
#: libvirt's qemu.conf group on Debian: QEMU needs it for libvirt's own directories.
ISOLATION_GROUP = "libvirt-qemu"
#: auto: dac, unless libvirt confines QEMU with one of MAC_MODELS already.
ISOLATION_MODES = ("auto", "dac", "none")
MAC_MODELS = ("selinux", "apparmor")
