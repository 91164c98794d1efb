# SPDX-License-Identifier: Apache-2.0
"""Where a VNF fits: ``fleet`` reads host inventories (and keeps an index of them), ``rank``
ranks those hosts for a VNFD (``virt-synth place``), and ``openstack`` writes the matching
OpenStack provider configuration. May import the inventory and VNFD models and the base layer;
never the daemon, the host side or the CLI."""
