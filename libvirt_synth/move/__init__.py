# SPDX-License-Identifier: Apache-2.0
"""Changing a running domain's devices through libvirt and virt-synthd together: moving it with
its synthetic devices (``orchestrate``: live migration to another host, save and restore, the
devices' state passing through sealed, docs/migration.md) and adding or removing a device while it
runs (``hotplug``, docs/libvirt.md). May import the daemon's client and hand-over format, the XML
tools and the base layer; not the CLI."""
