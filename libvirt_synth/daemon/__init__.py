# SPDX-License-Identifier: Apache-2.0
"""virt-synthd: the host backend daemon (``main``, ``service``, ``rpc``, ``registry``, ...), its
client (``client``, light: socket and json only) and the protocol both ends share (``protocol``).
May import the host side and the base layer; never the CLI, the XML tools or the inventory."""
