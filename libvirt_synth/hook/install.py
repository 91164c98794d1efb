# SPDX-License-Identifier: Apache-2.0
"""Install and remove the libvirt qemu hook (hooks/libvirt-synth) under /etc/libvirt/hooks/qemu.d/.
libvirt reads its hooks when libvirtd starts: restart it after installing or removing."""

from __future__ import annotations

import os
import pathlib
import stat
import sys

from libvirt_synth import defaults, errors

HOOK_NAME = "libvirt-synth"
QEMU_D = "etc/libvirt/hooks/qemu.d"
# The template: in a source checkout, hooks/; from a wheel, <prefix>/share/libvirt-synth/hooks/.
_CANDIDATES = (pathlib.Path(__file__).resolve().parents[2] / "hooks" / HOOK_NAME,
               pathlib.Path(sys.prefix) / "share" / "libvirt-synth" / "hooks" / HOOK_NAME)
SOURCE = next((p for p in _CANDIDATES if p.is_file()), _CANDIDATES[0])
PYTHON = "/usr/bin/python3"


def hook_path(root: str = "/") -> pathlib.Path:
    return pathlib.Path(root) / QEMU_D / HOOK_NAME


def render(socket: str, python: str = PYTHON) -> str:
    if not SOURCE.is_file():
        raise errors.NotFoundError(f"hook template {SOURCE} is missing: install libvirt-synth from its source tree")
    pkgdir = str(pathlib.Path(__file__).resolve().parents[2])
    text = SOURCE.read_text()
    text = text.replace("#!/usr/bin/python3 -IS", f"#!{python} -IS", 1)
    return text.replace("@PKGDIR@", pkgdir).replace("@SOCKET@", socket)


def installed(root: str = "/") -> str | None:
    """The text of the hook installed under root, or None if none is installed there."""
    path = hook_path(root)
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise errors.DeviceError(e.errno or 0, f"cannot read the installed hook {path}: {e.strerror}") from None


def install(root: str = "/", socket: str = defaults.SOCKET, python: str = PYTHON) -> tuple[str, bool]:
    """Write the hook; returns (path, changed). Idempotent: an identical hook is left alone."""
    if not os.access(python, os.X_OK):
        raise errors.NotFoundError(f"{python} is not an executable interpreter (the hook needs one)")
    path = hook_path(root)
    text = render(socket, python)
    if path.is_file() and path.read_text() == text and os.access(path, os.X_OK):
        return str(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{HOOK_NAME}.tmp")
    tmp.write_text(text)
    tmp.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    os.replace(tmp, path)
    return str(path), True


def remove(root: str = "/") -> tuple[str, bool]:
    path = hook_path(root)
    try:
        path.unlink()
        return str(path), True
    except FileNotFoundError:
        return str(path), False
