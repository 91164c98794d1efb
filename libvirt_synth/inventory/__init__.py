# SPDX-License-Identifier: Apache-2.0
"""Host inventory: what this host offers synthetic devices and what is already committed.

``collect()`` builds the inventory document (``model``): the CPU (``cpu``), NUMA nodes (``numa``),
PCI accelerators and SR-IOV NICs (``pci``: pyudev on the real host, or a fake sysfs tree), the
plugins and their measured capacity (``plugins``), the worker cores, and the capacity that
defined VMs committed (``committed``). docs/inventory.md is the reference. May import the host
side, the daemon's client and configuration, the XML tools, the hook's metadata reader and the
base layer; never the CLI or placement."""

from __future__ import annotations

from libvirt_synth.inventory.collect import collect, workers

__all__ = ["collect", "workers"]
