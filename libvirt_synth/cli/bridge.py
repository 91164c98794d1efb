# SPDX-License-Identifier: Apache-2.0
"""``virt-synth bridge``: carry JSON-RPC between stdin/stdout and virt-synthd's socket.

What ssh runs on this host for a client elsewhere that calls ssh://THIS-HOST/...: the requests
arriving on stdin go to the daemon's socket, its answers go to stdout, unchanged, until either
side closes. The daemon checks the bridge's user (the one ssh logged in as) as it checks any
caller's. If the daemon cannot be reached, the reason goes to stderr, where the client shows it."""

from __future__ import annotations

import argparse
from typing import Any

from libvirt_synth.cli.output import add_socket_arg
from libvirt_synth.cmdline import Formatter

EPILOG = """examples:
  virt-synth bridge                                  # the default socket
  virt-synth bridge --socket /tmp/synth/synthd.sock
  echo '{"jsonrpc": "2.0", "id": 1, "method": "health"}' | virt-synth bridge
  # what a client that calls ssh://root@host2/ runs:
  ssh -T -o BatchMode=yes root@host2 -- virt-synth bridge --socket /run/libvirt-synth/synthd.sock

exit status:
  0  either side closed (stdin's end, and the daemon answered what it had read; or stdout's reader went)
  1  virt-synthd cannot be reached, or closed the connection while requests could still come
"""


def register(sub: Any) -> None:
    p = sub.add_parser("bridge", help="relay stdin/stdout to virt-synthd (what ssh:// clients run here)",
                       description=__doc__, epilog=EPILOG, formatter_class=Formatter)
    add_socket_arg(p)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the socket to accept")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from libvirt_synth.daemon import bridge, client

    bridge.relay(client.socket_path(args.socket), timeout=args.timeout)
    return 0
