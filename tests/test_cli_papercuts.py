# SPDX-License-Identifier: Apache-2.0
"""The command line's rough edges (issue 12): a reader that stops early, domains by name, the
region directory of the daemon's configuration, health's exit status, the installed hook."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from libvirt_synth.abi import DevClass
from libvirt_synth.backend import HostDevice

from daemonctl import CLI, DAEMON

UUID1 = "7c0d2e4f-1a3b-4c5d-8e9f-0a1b2c3d4e5f"
UUID2 = "8d1e3f50-2b4c-4d6e-9fa0-1b2c3d4e5f60"
BROKEN_PIPE = 141  # 128 + SIGPIPE, as git and a shell report it


def env() -> dict[str, str]:
    """No region directory, socket or daemon configuration of the caller's may leak in."""
    return {k: v for k, v in os.environ.items() if k not in ("LIBVIRT_SYNTH_REGION_DIR", "LIBVIRT_SYNTH_SOCKET")}


def run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env(), check=check)


def assert_quiet(stderr: str) -> None:
    for word in ("Traceback", "BrokenPipeError", "Exception ignored"):
        assert word not in stderr, stderr


@pytest.fixture
def base() -> Iterator[pathlib.Path]:
    d = pathlib.Path(tempfile.mkdtemp(prefix="synth-papercuts-", dir="/dev/shm"))
    d.chmod(0o755)  # an unprivileged client must reach the socket
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def regions(directory: pathlib.Path, n: int) -> pathlib.Path:
    """n region files in directory: one laid out for real, the others hard links to it (no room taken)."""
    directory.mkdir(exist_ok=True)
    HostDevice.create(str(directory / "r000"), DevClass.CRYPTO, size=1 << 20, queues=1).destroy(unlink=False)
    for i in range(1, n):
        os.link(directory / "r000", directory / f"r{i:03}")
    return directory


# ---- a reader that stops early: `virt-synth ... | head -1` ----

def test_a_reader_that_stops_after_one_line_ends_a_long_listing_quietly(base: pathlib.Path) -> None:
    d = regions(base / "many", 150)
    proc = subprocess.Popen([*CLI, "devices", "--regions", "--json", "--dir", str(d)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == "[\n"
    proc.stdout.close()  # what is left (~100 KiB) cannot fit in the pipe: the writer must meet EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == BROKEN_PIPE, err
    assert_quiet(err)


@pytest.mark.parametrize("cmd", [[*CLI, "--help"], [*CLI, "--version"], [*CLI, "plugins", "--local", "--json"],
                                 [*CLI, "devices", "--regions", "--dir", "@DIR@"], [*DAEMON, "--help"],
                                 [*DAEMON, "--version"]],
                         ids=["help", "version", "plugins-json", "devices-table", "synthd-help", "synthd-version"])
def test_a_reader_gone_before_any_output_is_no_error(cmd: list[str], base: pathlib.Path) -> None:
    """Short outputs are written at exit, by the interpreter's last flush: that one must not fail either."""
    d = regions(base / "few", 3)
    proc = subprocess.Popen([str(d) if a == "@DIR@" else a for a in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the interpreter has started: every write meets EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == BROKEN_PIPE, err
    assert_quiet(err)
