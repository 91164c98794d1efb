# SPDX-License-Identifier: Apache-2.0
"""The guest side: what a VNF uses to drive a synthetic device from inside its VM.

``device`` opens a device (PCI or a region file) and runs crypto operations on its queues;
``compress`` and ``packet`` are the compression and packet classes on top of it. This package
may import the ABI (``libvirt_synth.abi``), the errors and the C core, nothing of the host side.
``from libvirt_synth.guest import Device`` is the entry point."""

from libvirt_synth.guest import device as _device
from libvirt_synth.guest.device import *  # noqa: F403

__all__ = _device.__all__
