# SPDX-License-Identifier: Apache-2.0
"""Output helpers shared by the subcommands: JSON for scripts, aligned text for people."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from libvirt_synth import defaults


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def parse_size(text: str) -> int:
    """'4M', '64K', '1G', '4096' -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    digits = t[:-1] if mult > 1 else t
    try:
        return int(digits) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}; expected e.g. 4M, 64K, 1G") from None


def add_socket_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", default=None,
                   help=f"virt-synthd socket (default: ${defaults.SOCKET_ENV} or {defaults.SOCKET})")


def daemon_call(args: argparse.Namespace, method: str, **params: Any) -> Any:
    """Call virt-synthd; its errors become SynthErrors with the daemon's message."""
    from libvirt_synth import errors
    from libvirt_synth.daemon import client, protocol

    try:
        return client.call(method, getattr(args, "socket", None), getattr(args, "timeout", 30.0), **params)
    except client.RpcError as e:
        if e.code == protocol.PERMISSION_DENIED:
            raise errors.PermissionError(str(e)) from None
        if e.code == protocol.NOT_FOUND:
            raise errors.NotFoundError(str(e)) from None
        if e.code in (protocol.INVALID_VALUE, protocol.INVALID_PARAMS):
            raise errors.ValueError(str(e)) from None
        raise errors.DeviceError(str(e)) from None
