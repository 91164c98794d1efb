# SPDX-License-Identifier: Apache-2.0
"""The daemon configuration file: the documented example loads, mistakes are reported clearly."""

from __future__ import annotations

import pathlib

import pytest

from libvirt_synth import errors
from libvirt_synth.daemon import config

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "virt-synthd.example.toml"


def test_documented_example_loads() -> None:
    cfg = config.load(str(EXAMPLE), {})
    assert cfg.group == "libvirt" and cfg.qemu_user == "libvirt-qemu"
    assert cfg.cpus == [2, 3] and cfg.workers == 1
    assert cfg.plugin_pins == {"crypto": "ipsec-mb"}
    assert cfg.registry_path == "/var/lib/libvirt-synth/registry.sqlite"


def test_overrides_win(tmp_path: pathlib.Path) -> None:
    cfg = config.load(str(EXAMPLE), {"socket": str(tmp_path / "s"), "workers": 3, "group": None})
    assert cfg.socket == str(tmp_path / "s") and cfg.workers == 3 and cfg.group == "libvirt"


@pytest.mark.parametrize("text,match", [
    ("[deamon]\nsocket = 1\n", "unknown section"),
    ("[workers]\ncount = 0\n", "workers must be at least 1"),
    ("[quotas]\nops = 5\n", "quota ops=5"),
    ("[daemon\n", "line 1"),
])
def test_mistakes_are_reported(tmp_path: pathlib.Path, text: str, match: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(errors.SynthError, match=match):
        config.load(str(f), {})


def test_missing_explicit_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.NotFoundError):
        config.load(str(tmp_path / "nope.toml"), {})
