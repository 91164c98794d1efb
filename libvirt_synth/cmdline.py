# SPDX-License-Identifier: Apache-2.0
"""What every command-line front end (virt-synth, virt-synthd) shares: the --help formatter and a
quiet exit when stdout's reader goes away. Standard library only."""

from __future__ import annotations

import argparse
import os
import signal
import sys


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults in --help (except None and flags) and keeps the description's line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


# Exit status when our reader went away (`virt-synth ... | head`): what a shell reports for a
# command killed by SIGPIPE, as git does.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def stdout_gone() -> int:
    """Stdout's reader has closed the pipe: point stdout at /dev/null, so that the interpreter's
    final flush of what is still buffered does not fail again ("Exception ignored ...
    BrokenPipeError"), and return the exit status to stop with, quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE
