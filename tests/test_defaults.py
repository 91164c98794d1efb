# SPDX-License-Identifier: Apache-2.0
"""Each default and limit is written once: libvirt_synth.defaults (standard library only, as the
hook needs) holds the numbers the C core has too, and they agree; and the values it holds are
written nowhere else in the package."""

from __future__ import annotations

import pathlib

import pytest

from libvirt_synth import capabilities, defaults
from libvirt_synth._native import lib

PKG = pathlib.Path(defaults.__file__).resolve().parent


@pytest.mark.parametrize(("name", "c_name"), [
    ("MAX_QUEUES", "SYNTH_MAX_QUEUES"),
    ("MIN_RING_ENTRIES", "SYNTH_MIN_RING_ENTRIES"),
    ("MAX_RING_ENTRIES", "SYNTH_MAX_RING_ENTRIES"),
    ("CRYPTO_SESSIONS", "SYNTH_DEFAULT_MAX_SESSIONS"),
])
def test_python_limits_equal_the_c_constants(name: str, c_name: str) -> None:
    assert getattr(defaults, name) == getattr(lib, c_name)


def test_the_compression_limits_are_the_c_cores() -> None:
    ranges = {k: v[:2] for k, v in capabilities.RANGES[capabilities.COMPRESS].items()}
    assert ranges == {
        "max_streams": (1, lib.SYNTH_COMP_MAX_MAX_STREAMS),
        "max_chunk": (lib.SYNTH_COMP_MIN_MAX_CHUNK, lib.SYNTH_COMP_MAX_MAX_CHUNK),
        "max_stream_output": (1, 2**64 - 1),
        "max_stream_memory": (1, 2**64 - 1),
        "zstd_window_log": (lib.SYNTH_COMP_MIN_WINDOW_LOG, lib.SYNTH_COMP_MAX_WINDOW_LOG),
    }


def test_a_packet_device_has_one_channel_by_default() -> None:
    assert defaults.PACKET_QUEUES == 2 and lib.SYNTH_PKT_MAX_CHANNELS == defaults.MAX_QUEUES // 2


@pytest.mark.parametrize("literal", [f'"{defaults.SOCKET}"', f'"{defaults.SOCKET_ENV}"'])
def test_the_socket_is_named_in_one_place(literal: str) -> None:
    holders = sorted(str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if literal in p.read_text())
    assert holders == ["defaults.py"]
