# SPDX-License-Identifier: Apache-2.0
"""``virt-synthd``: the host backend, in the foreground. Serves the devices named on the command
line from C worker threads until SIGTERM (clean stop) and logs to stderr. The control socket and
the registry build on this (see docs/)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from libvirt_synth import __version__, errors
from libvirt_synth.cli.output import Formatter
from libvirt_synth.cli.serve import add_backend_args, serve_until_signal

EPILOG = """examples:
  virt-synthd --device vnf0-crypto --owner libvirt-qemu --cpus 1
  virt-synthd --dir /tmp/regions --device a --device b --workers 2 --json
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="virt-synthd", description=__doc__, epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_backend_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s virt-synthd %(levelname)s: %(message)s")
    try:
        return serve_until_signal(args)
    except errors.SynthError as e:
        print(f"virt-synthd: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
