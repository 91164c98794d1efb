# SPDX-License-Identifier: Apache-2.0
"""``virt-synth``: the command line. One module per subcommand; each registers its parser and
returns an exit code. Front ends only: the work is done by the library modules. The top layer: it
may import any part, and no part imports it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from libvirt_synth import __version__, errors
from libvirt_synth.cli import (
    bridge,
    daemoncmds,
    define,
    demo,
    devices,
    guest_image,
    hooks,
    hotplug,
    inventory,
    migrate,
    place,
    serve,
    xml,
)
from libvirt_synth.cmdline import stdout_gone

COMMANDS = (serve, devices, daemoncmds, hooks, demo, xml, define, guest_image, inventory, place, migrate, bridge,
            hotplug)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="virt-synth",
        description="Synthetic devices for VNFs: serve, inspect and try them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="give up on a virt-synthd that does not answer a call within S seconds")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in COMMANDS:
        mod.register(sub)
    return parser


def setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. A reader that stops early (``| head``) ends it quietly,
    with 141 (128 + SIGPIPE), whichever command was writing: no traceback."""
    try:
        try:
            return run(argv)
        finally:  # what is still buffered (all of it, if short) goes now, while we can catch the error
            sys.stdout.flush()
    except BrokenPipeError:
        return stdout_gone()


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except errors.SynthError as e:
        for line in str(e).splitlines() or [""]:  # a configuration's mistakes: one line each
            print(f"virt-synth {args.command}: error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
