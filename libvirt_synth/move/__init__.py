# SPDX-License-Identifier: Apache-2.0
"""Moving a running domain with its synthetic devices: live migration to another host, and save
and restore (possibly on another host). ``orchestrate`` drives libvirt on both sides and both
hosts' virt-synthd; the devices' state passes through it sealed (daemon/handover.py).
docs/migration.md is the operator's reference. May import the daemon's client and hand-over
format and the base layer; not the CLI."""
