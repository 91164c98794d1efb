# SPDX-License-Identifier: Apache-2.0
import sys

from libvirt_synth.cli import main

sys.exit(main())
