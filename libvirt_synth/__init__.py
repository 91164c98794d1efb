# SPDX-License-Identifier: Apache-2.0
"""libvirt-synth: synthetic devices for virtual network functions.

Layers, from the guest's view down: ``guest`` (the driver API over the guest library),
``backend`` (host regions served by C worker threads), the C core in ``_native``.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

log = logging.getLogger("libvirt_synth")
log.addHandler(logging.NullHandler())
