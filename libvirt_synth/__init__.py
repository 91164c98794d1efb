# SPDX-License-Identifier: Apache-2.0
"""libvirt-synth: synthetic devices for virtual network functions.

Layers, from the guest's view down: ``guest`` (the driver API over the guest library),
``backend`` (host regions served by C worker threads), the C core in ``_native``.

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
