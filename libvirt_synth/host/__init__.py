# SPDX-License-Identifier: Apache-2.0
"""The host side of the data path, without the daemon: a device's region laid out and served by C
worker threads of this process.

``device`` (``HostDevice``, ``Worker``: one region, one C worker), ``backend`` (``Backend``: a set
of regions in one directory), ``region`` (read a region's header without attaching), ``plugins``
(the plugin catalog), and the per-class host code ``crypto``, ``compress``, ``packet``, reached
through the one table ``device.CLASS_PARAMS``. May import the base layer only (``abi``,
``errors``, ``log``, the C core): never the daemon, the CLI or the guest side."""
