# SPDX-License-Identifier: Apache-2.0
"""Start and stop a real virt-synthd in a temporary directory, for the tests."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from libvirt_synth.daemon import client

DAEMON = [sys.executable, "-m", "libvirt_synth.daemon.main"]
CLI = [sys.executable, "-m", "libvirt_synth.cli"]


class Daemon:
    def __init__(self, base: pathlib.Path, *extra: str, regions: pathlib.Path | None = None) -> None:
        self.base = base
        self.socket = str(base / "synthd.sock")
        self.state = base / "state"
        self.regions = regions or base / "regions"
        self.regions.mkdir(exist_ok=True)
        self.log = base / "virt-synthd.log"
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Daemon:
        # An empty configuration: a host's /etc/libvirt-synth/virt-synthd.toml must not leak in.
        config = self.base / "virt-synthd.toml"
        if not config.exists():
            config.write_text("")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*DAEMON, "--config", str(config), "--socket", self.socket,
                                          "--state-dir", str(self.state),
                                          "--region-dir", str(self.regions), "--log-level", "debug", *self.extra],
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"virt-synthd exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                client.call("health", self.socket, timeout=2)
                return self
            except client.RpcError:
                time.sleep(0.05)
        raise RuntimeError(f"virt-synthd did not come up:\n{self.log.read_text()}")

    def call(self, method: str, **params: Any) -> Any:
        return client.call(method, self.socket, **params)

    def cli(self, *args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args, "--socket", self.socket], capture_output=True, text=True, timeout=60,
                              check=check, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[pathlib.Path]:
    """A temporary directory on /dev/shm (regions want a tmpfs), removed afterwards; others may
    enter it (an unprivileged client must reach a socket in it)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir="/dev/shm"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def running(prefix: str, *extra: str, config: str = "") -> Iterator[Daemon]:
    """A daemon in a scratch directory, with this configuration file's text."""
    with scratch(prefix) as base:
        (base / "virt-synthd.toml").write_text(config)
        d = Daemon(base, *extra).start()
        try:
            yield d
        finally:
            d.stop()


@contextlib.contextmanager
def hooked(d: Daemon) -> Iterator[pathlib.Path]:
    """The libvirt hook, installed under a test root of the daemon's directory, calling it."""
    from libvirt_synth.hook import install as hookinstall

    path, _ = hookinstall.install(str(d.base / "root"), d.socket)
    yield pathlib.Path(path)
