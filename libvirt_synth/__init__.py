# SPDX-License-Identifier: Apache-2.0
"""libvirt-synth: synthetic devices for virtual network functions.

The parts, by side and role (lower layers first; a part imports only its own modules and those of
lower layers, as tests/test_layers.py checks):

- the base: ``abi`` (the device ABI's numbers), ``errors``, ``log``, ``defaults``,
  ``capabilities`` (the class, capability and KPI vocabulary), ``cmdline``, the C core ``_native``;
- ``guest``: what a VNF uses inside its VM; ``host``: regions served by C worker threads, the
  plugin catalog; ``hook``: the libvirt hook (standard library only); ``vnfd``: VNF descriptors;
- ``xml``: domain XML with synthetic devices; ``daemon``: virt-synthd, its client and protocol;
- ``inventory``: what a host offers and has committed; ``testbed``: the guest VM runner and image;
- ``placement``: ranking hosts for a VNFD, and the OpenStack provider config;
- ``cli``: ``virt-synth``.

Importing the package costs nothing beyond this file: the libvirt hook imports
``libvirt_synth.hook.run`` on every VM start, so even ``logging`` and ``typing`` are loaded only
when needed.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any

    log: logging.Logger


def __getattr__(name: str) -> Any:
    if name == "log":
        import logging

        logger = logging.getLogger("libvirt_synth")
        logger.addHandler(logging.NullHandler())
        globals()["log"] = logger
        return logger
    raise AttributeError(f"module 'libvirt_synth' has no attribute {name!r}")
