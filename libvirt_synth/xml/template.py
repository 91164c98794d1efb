# SPDX-License-Identifier: Apache-2.0
"""Domain templates (``xml-templates/*.xml``) and their ``@PLACEHOLDER@`` values.

A placeholder ``@KERNEL@`` is filled from the value ``KERNEL`` (``--kernel`` on the command
line). Values are XML-escaped; paths are made absolute. Defaults: name ``vnf``, 512 MiB, 1 vCPU,
domain type ``qemu``, a fresh uuid, kernel command line ``console=ttyS0``, console log
``/var/log/libvirt/qemu/<name>-console.log``, disk format from the image (qcow2 or raw)."""

from __future__ import annotations

import os
import pathlib
import re
import sys
import uuid as uuidlib
from collections.abc import Mapping
from xml.sax.saxutils import escape

from libvirt_synth import errors

TEMPLATE_DIR_ENV = "LIBVIRT_SYNTH_TEMPLATE_DIR"
SYSTEM_TEMPLATE_DIR = "/usr/share/libvirt-synth/xml-templates"
PLACEHOLDER_RE = re.compile(r"@([A-Z][A-Z0-9_]*)@")
DOMAIN_TYPE_QEMU = "qemu"
DOMAIN_TYPE_KVM = "kvm"
DOMAIN_TYPES = (DOMAIN_TYPE_QEMU, DOMAIN_TYPE_KVM)
PATHS = ("KERNEL", "INITRD", "DISK", "CONSOLE_LOG")
DEFAULTS = {"NAME": "vnf", "MEMORY": "512", "VCPUS": "1", "DOMAIN_TYPE": DOMAIN_TYPE_QEMU,
            "CMDLINE": "console=ttyS0"}
QCOW2_MAGIC = b"QFI\xfb"


def template_dir() -> pathlib.Path:
    """$LIBVIRT_SYNTH_TEMPLATE_DIR, else the source tree's xml-templates/, else the system one."""
    env = os.environ.get(TEMPLATE_DIR_ENV)
    if env:
        return pathlib.Path(env)
    tree = pathlib.Path(__file__).resolve().parents[2] / "xml-templates"
    installed = pathlib.Path(sys.prefix) / "share" / "libvirt-synth" / "xml-templates"  # a wheel's data files
    for d in (tree, installed):
        if d.is_dir():
            return d
    return pathlib.Path(SYSTEM_TEMPLATE_DIR)


def available() -> list[str]:
    d = template_dir()
    return sorted(p.stem for p in d.glob("*.xml")) if d.is_dir() else []


def find(name: str) -> pathlib.Path:
    """A template by name (``vnf-kernel``) or by path."""
    path = pathlib.Path(name) if "/" in name or name.endswith(".xml") else template_dir() / f"{name}.xml"
    if not path.is_file():
        have = ", ".join(available()) or f"none in {template_dir()}"
        raise errors.NotFoundError(f"no template {name!r} (templates: {have})")
    return path


def option(key: str) -> str:
    """The command-line option that sets a placeholder: CONSOLE_LOG -> --console-log."""
    return "--" + key.lower().replace("_", "-")


def placeholders(text: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER_RE.findall(text)))


def disk_format(path: str) -> str:
    """qcow2 if the image says so (magic) or is named so, else raw."""
    try:
        with open(path, "rb") as f:
            if f.read(4) == QCOW2_MAGIC:
                return "qcow2"
    except OSError:
        pass
    return "qcow2" if path.endswith(".qcow2") else "raw"


def check_value(key: str, value: str) -> str:
    if key in ("MEMORY", "VCPUS") and (not value.isdigit() or int(value) <= 0):
        raise errors.ValueError(f"{option(key)} {value!r}: expected a positive whole number")
    if key == "DOMAIN_TYPE" and value not in DOMAIN_TYPES:
        raise errors.ValueError(f"{option(key)} {value!r}: expected one of {', '.join(DOMAIN_TYPES)}")
    if key == "NAME" and (not value or "/" in value or value != value.strip()):
        raise errors.ValueError(f"{option(key)} {value!r}: a domain name has no '/' and no leading or trailing "
                                "blanks")
    if key == "UUID":
        try:
            return str(uuidlib.UUID(value))
        except ValueError:
            raise errors.ValueError(f"{option(key)} {value!r} is not a UUID") from None
    if key in PATHS:
        return os.path.abspath(value)
    return value


def fill(name: str, given: Mapping[str, str | None]) -> tuple[str, str]:
    """Fill template ``name`` -> (XML text, source label for error messages). ``given`` maps
    placeholder names to values; None means "not given". Giving a value the template does not
    use, or leaving out one it needs, is an error that names the option."""
    path = find(name)
    text = path.read_text(encoding="utf-8")
    keys = placeholders(text)
    values = {k: check_value(k, str(v)) for k, v in given.items() if v is not None}
    unused = [k for k in values if k not in keys]
    if unused:
        raise errors.ValueError(f"template {path.stem} has no {unused[0]} placeholder: "
                                f"{option(unused[0])} does not apply to it")
    values = DEFAULTS | values
    values.setdefault("UUID", str(uuidlib.uuid4()))
    values.setdefault("CONSOLE_LOG", f"/var/log/libvirt/qemu/{values['NAME']}-console.log")
    if "DISK" in values:
        values.setdefault("DISK_FORMAT", disk_format(values["DISK"]))
    missing = [k for k in keys if k not in values]
    if missing:
        needs = " and ".join(f"{option(k)} {'PATH' if k in PATHS else 'VALUE'}" for k in missing)
        raise errors.ValueError(f"template {path.stem} needs {needs}")
    out = PLACEHOLDER_RE.sub(lambda m: escape(values[m.group(1)], {'"': "&quot;", "'": "&apos;"}), text)
    return out, f"template {path.name}"
