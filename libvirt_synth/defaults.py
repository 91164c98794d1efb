# SPDX-License-Identifier: Apache-2.0
"""Defaults and limits that more than one part relies on, in one home. Standard library only: the
hook imports it. Where the C core has the same number, tests/test_defaults.py checks that they agree.

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

#: virt-synthd's socket, unless $SOCKET_ENV or --socket names another.
SOCKET = "/run/libvirt-synth/synthd.sock"
SOCKET_ENV = "LIBVIRT_SYNTH_SOCKET"

# A device's shape where its definition leaves it out.
REGION_SIZE = 4 << 20
QUEUES = 1
PACKET_QUEUES = 2  # a packet channel is a TX and an RX queue
RING_ENTRIES = 256
CRYPTO_SESSIONS = 1024  # SYNTH_DEFAULT_MAX_SESSIONS (synth/host.h)

# The device ABI's limits (synth/device_core.h).
MAX_QUEUES = 64  # SYNTH_MAX_QUEUES
MIN_RING_ENTRIES = 8  # SYNTH_MIN_RING_ENTRIES
MAX_RING_ENTRIES = 4096  # SYNTH_MAX_RING_ENTRIES
