# SPDX-License-Identifier: Apache-2.0
"""Two libvirt "hosts" on one machine, for tests that move a VM between hosts.

A :class:`Host` is a scratch directory and a private mount namespace holding a libvirtd of its
own and a virt-synthd of its own. In that namespace the directory's copies are bind-mounted over
``/etc/libvirt``, ``/run/libvirt``, ``/var/lib/libvirt``, ``/var/log/libvirt`` and
``/var/cache/libvirt``, and ``/dev/shm`` is a tmpfs of its own, so each host has its own regions.
libvirtd gets its own ``host_uuid`` (libvirt refuses to migrate to a host with the same UUID), no
cgroup controllers (both daemons number their domains from 1; with cgroups the two
``machine/qemu-1-<name>`` would clash), QEMU's output written to files (no virtlogd per host),
``remember_owner = 0``, and no mount namespace per QEMU (``namespaces = [ ]``: a host's QEMUs run
in the host's namespace, where :meth:`Host.pids` finds them and :meth:`Host.run` sees what they
see). The project's libvirt hook goes into the host's ``/etc/libvirt`` and
calls that host's daemon, so a domain with synthetic devices gets its regions from that host.
Nothing is shared with the machine's own libvirtd: sockets, pid files, state and logs are all
under the host's directory, which stays reachable from outside the namespace (so the directory
must not lie under one of the paths the namespace covers).

Layout of a host's directory ``D``::

    D/etc-root/etc/libvirt/   -> /etc/libvirt        (the hook: etc/libvirt/hooks/qemu.d/)
    D/run/                    -> /run/libvirt        (libvirt-sock: the host's URI)
    D/lib/, D/log/, D/cache/  -> /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt
    D/bin/synth-libvirtd      libvirtd, under a name `pgrep -x libvirtd` does not match
    D/libvirtd.pid, D/libvirtd.out   libvirtd's pid file and its stdout/stderr
    D/synthd.sock, D/synthd-state/, D/virt-synthd.toml, D/virt-synthd.log   the daemon's

The namespace lives as long as any process in it, or this object's handle on it: :meth:`Host.stop`
destroys every domain, stops the daemon and libvirtd, kills whatever is left in the namespace and
lets it go, taking its mounts and its ``/dev/shm`` with it. :func:`two_hosts` makes hosts ``a``
and ``b`` and always stops both. Root only; needs ``unshare`` and ``nsenter`` (util-linux).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from libvirt_synth import errors, log
from libvirt_synth.daemon import client
from libvirt_synth.hook import install as hookinstall
from libvirt_synth.xml.connect import load_libvirt

T = TypeVar("T")

#: (directory under the host's, the path it is mounted on inside the namespace)
BINDS = (("etc-root/etc/libvirt", "/etc/libvirt"), ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"),
         ("log", "/var/log/libvirt"), ("cache", "/var/cache/libvirt"))
COVERED = tuple(p for _, p in BINDS) + ("/dev/shm",)
#: What is not copied from the machine's /etc/libvirt: its domains and networks (the default
#: network among them), storage pools, secrets and hooks; the two files written instead.
NOT_COPIED = ("qemu", "storage", "secrets", "hooks", "libvirtd.conf", "qemu.conf")
#: /var/lib/libvirt/qemu's directories, owned by the QEMU user as Debian's package makes them.
QEMU_LIB_DIRS = ("channel/target", "checkpoint", "dump", "nvram", "ram", "save", "snapshot")
QEMU_USER = "libvirt-qemu"
LOCALHOST = "127.0.0.1"
UUID_NAMESPACE = uuidlib.UUID("5b1e0c7a-2f4d-4e8a-9c3b-6d7e8f9a0b1c")
LIBVIRTD_NAME = "synth-libvirtd"  # its process name (comm): at most 15 characters
LIBVIRTD_LOG_FILTERS = "1:qemu.qemu_migration 1:util.hook 1:qemu.qemu_hotplug 3:qemu 3:util"


def _wait(cond: Callable[[], T | None], what: str, timeout: float, interval: float = 0.05,
          alive: Callable[[], str | None] | None = None) -> T:
    """Poll cond until it returns something other than None or False, and return it. ``alive``
    returns why waiting is pointless (a process died), or None."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value is not None and value is not False:
            return value
        if alive is not None:
            why = alive()
            if why is not None:
                raise errors.DeviceError(0, f"{what}: {why}")
        if time.monotonic() > deadline:
            raise errors.TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _tail(path: pathlib.Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except FileNotFoundError:
        return "(no output)"


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_requirements() -> None:
    """Raise, saying what is missing, unless this machine can run hosts: root, util-linux's
    unshare and nsenter, libvirtd and QEMU, libvirt-python and the QEMU user."""
    if os.geteuid() != 0:
        raise errors.PermissionError("two libvirt hosts need root (mount namespaces, libvirtd, QEMU as "
                                     f"{QEMU_USER}); run as root")
    for exe, pkg in (("unshare", "util-linux"), ("nsenter", "util-linux"), ("mount", "mount"),
                     ("libvirtd", "libvirt-daemon-system"), ("qemu-system-x86_64", "qemu-system-x86")):
        if shutil.which(exe) is None:
            raise errors.NotFoundError(f"{exe} is not installed (Debian package {pkg}; scripts/apt-packages.txt)")
    if not pathlib.Path("/etc/libvirt").is_dir():
        raise errors.NotFoundError("/etc/libvirt does not exist: install libvirt-daemon-system")
    try:
        pwd.getpwnam(QEMU_USER)
    except KeyError:
        raise errors.NotFoundError(f"no user {QEMU_USER} (libvirt-daemon-system makes it)") from None
    load_libvirt()


def namespace_of(pid: int | str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a process's mount namespace; None if it has ended (or is a zombie)."""
    try:
        st = os.stat(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Host:
    """One "host": a libvirtd and a virt-synthd in a mount namespace of their own (module
    docstring). ``daemon_config`` is the text of the daemon's TOML configuration file (the
    socket, state and region directories and the QEMU user are given on its command line)."""

    def __init__(self, name: str, directory: str | os.PathLike[str], daemon_config: str = "",
                 host_uuid: str | None = None, shm_size: str = "256m",
                 hook_python: str = hookinstall.PYTHON) -> None:
        self.name = name
        self.dir = pathlib.Path(directory).resolve()
        for covered in COVERED:
            if self.dir == pathlib.Path(covered) or pathlib.Path(covered) in self.dir.parents:
                raise errors.ValueError(f"host directory {self.dir} is under {covered}, which the host's namespace "
                                        "mounts over; use a directory elsewhere, e.g. under /var/tmp")
        self.host_uuid = str(uuidlib.UUID(host_uuid)) if host_uuid else str(uuidlib.uuid5(UUID_NAMESPACE, name))
        self.daemon_config_text = daemon_config
        self.shm_size = shm_size
        self.hook_python = hook_python
        self.etc = self.dir / "etc-root" / "etc" / "libvirt"
        self.uri = f"qemu+unix:///system?socket={self.dir / 'run' / 'libvirt-sock'}"
        self.socket = str(self.dir / "synthd.sock")
        self.state_dir = self.dir / "synthd-state"
        self.daemon_config = self.dir / "virt-synthd.toml"
        self.daemon_log = self.dir / "virt-synthd.log"
        self.libvirtd_log = self.dir / "log" / "libvirtd.log"
        self.libvirtd_out = self.dir / "libvirtd.out"
        self.hook = hookinstall.hook_path(str(self.dir / "etc-root"))
        self._libvirtd: subprocess.Popen[bytes] | None = None
        self._daemon: subprocess.Popen[bytes] | None = None
        self._ns_fd: int | None = None
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {str(self.dir)!r})"

    # ---- paths and identity ----

    def qemu_log(self, domain: str) -> pathlib.Path:
        """QEMU's log of a domain on this host (its /var/log/libvirt/qemu/<name>.log)."""
        return self.dir / "log" / "qemu" / f"{domain}.log"

    @property
    def libvirtd_pid(self) -> int | None:
        return self._libvirtd.pid if self._libvirtd is not None and self._libvirtd.poll() is None else None

    @property
    def daemon_pid(self) -> int | None:
        return self._daemon.pid if self._daemon is not None and self._daemon.poll() is None else None

    @property
    def namespace(self) -> tuple[int, int]:
        """(st_dev, st_ino) of the host's mount namespace, as os.stat(/proc/PID/ns/mnt) gives it."""
        if self._ns_fd is None:
            raise errors.NotFoundError(f"host {self.name} is not started")
        st = os.fstat(self._ns_fd)
        return st.st_dev, st.st_ino

    def pids(self) -> list[int]:
        """Every process in the host's mount namespace (libvirtd, the daemon, QEMUs, run())."""
        ns = self.namespace
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and namespace_of(p) == ns)

    # ---- set-up ----

    def _prepare(self) -> None:
        """The host's directories and configuration: a copy of /etc/libvirt with libvirtd.conf
        and qemu.conf of our own, the hook, empty run/lib/log/cache."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        if self.etc.exists():
            shutil.rmtree(self.etc)
        self.etc.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree("/etc/libvirt", self.etc, symlinks=True, ignore=lambda d, names: [
            n for n in names if d == "/etc/libvirt" and n in NOT_COPIED])
        (self.etc / "qemu" / "networks" / "autostart").mkdir(parents=True)
        (self.etc / "libvirtd.conf").write_text(
            "# libvirt-synth testbed host: libvirtd.conf\n"
            f'host_uuid = "{self.host_uuid}"\n'
            f'log_filters = "{LIBVIRTD_LOG_FILTERS}"\n'
            'log_outputs = "1:file:/var/log/libvirt/libvirtd.log"\n')
        (self.etc / "qemu.conf").write_text(
            "# libvirt-synth testbed host: qemu.conf\n"
            'stdio_handler = "file"\n'
            "cgroup_controllers = [ ]\n"
            "remember_owner = 0\n"
            "namespaces = [ ]\n")
        hookinstall.install(str(self.dir / "etc-root"), self.socket, self.hook_python)
        for sub in ("run", "lib", "log", "cache"):
            d = self.dir / sub
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(mode=0o755)
        qemu = pwd.getpwnam(QEMU_USER)
        lib_qemu = self.dir / "lib" / "qemu"
        lib_qemu.mkdir(mode=0o750)
        for sub in QEMU_LIB_DIRS:
            (lib_qemu / sub).mkdir(parents=True)
        for d in [lib_qemu, *lib_qemu.rglob("*")]:
            os.chown(d, qemu.pw_uid, qemu.pw_gid)
        (self.dir / "log" / "qemu").mkdir(mode=0o700)
        # libvirt's cache of QEMU's capabilities: taken if it is valid here (same binaries, same
        # kernel), which saves probing QEMU at start; libvirtd probes again if it is not.
        caps = pathlib.Path("/var/cache/libvirt/qemu/capabilities")
        if caps.is_dir():
            shutil.copytree(caps, self.dir / "cache" / "qemu" / "capabilities")
        for _, target in BINDS:
            pathlib.Path(target).mkdir(parents=True, exist_ok=True)
        # libvirtd under a name of its own: `pgrep -x libvirtd` (scripts/start-libvirt, the tests'
        # libvirtctl) then finds the machine's libvirtd only.
        exe = shutil.which("libvirtd")
        if exe is None:
            raise errors.NotFoundError("libvirtd is not installed (Debian package libvirt-daemon-system)")
        (self.dir / "bin").mkdir(exist_ok=True)
        link = self.dir / "bin" / LIBVIRTD_NAME
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.realpath(exe))
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        self.daemon_config.write_text(self.daemon_config_text)

    def start(self, timeout: float = 60.0) -> Host:
        """Make the directories, start libvirtd in a new mount namespace and the daemon in it,
        and return once both answer. On failure everything started is stopped again."""
        if self._libvirtd is not None:
            raise errors.BusyError(f"host {self.name} is already started")
        check_requirements()
        try:
            self._prepare()
            self._start_libvirtd_unshared(timeout)
            self.start_daemon()
        except BaseException:
            self.stop()
            raise
        return self

    def _libvirtd_argv(self) -> list[str]:
        return [str(self.dir / "bin" / LIBVIRTD_NAME), "--pid-file", str(self.dir / "libvirtd.pid"),
                "--config", "/etc/libvirt/libvirtd.conf"]

    def _start_libvirtd_unshared(self, timeout: float) -> None:
        q = shlex.quote
        steps = [f"mount --bind {q(str(self.dir / src))} {q(dst)}" for src, dst in BINDS]
        steps.append(f"mount -t tmpfs -o mode=1777,size={q(self.shm_size)} tmpfs /dev/shm")
        script = " && ".join(steps) + " && exec " + " ".join(q(a) for a in self._libvirtd_argv())
        with open(self.libvirtd_out, "ab") as out:
            self._libvirtd = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                              stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                              start_new_session=True)
        self._wait_libvirtd(timeout)
        self._ns_fd = os.open(f"/proc/{self._libvirtd.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        if self.namespace == namespace_of("self"):
            raise errors.DeviceError(0, f"host {self.name}: libvirtd runs in this process's mount namespace, "
                                     "not a new one")

    def _wait_libvirtd(self, timeout: float) -> None:
        proc = self._libvirtd
        assert proc is not None
        lv = load_libvirt()
        sock = self.dir / "run" / "libvirt-sock"

        def dead() -> str | None:
            if proc.poll() is None:
                return None
            return (f"libvirtd exited with status {proc.returncode}:\n{_tail(self.libvirtd_out)}\n"
                    f"{self.libvirtd_log}:\n{_tail(self.libvirtd_log)}")

        def answers() -> Any:
            if not sock.exists():
                return None
            try:
                conn = lv.open(self.uri)
                conn.getLibVersion()
                return conn
            except lv.libvirtError:
                return None

        self._conn = _wait(answers, f"libvirtd of host {self.name} to answer on {self.uri}", timeout, 0.1, dead)

    def _nsenter(self, argv: Sequence[str]) -> tuple[list[str], tuple[int, ...]]:
        """argv run in the host's mount namespace, and the fd the child must inherit for it."""
        if self._ns_fd is None:
            raise errors.NotFoundError(f"host {self.name} is not started: no namespace to run {argv[0]} in")
        return ["nsenter", f"--mount=/proc/self/fd/{self._ns_fd}", "--", *argv], (self._ns_fd,)

    # ---- libvirt ----

    @property
    def conn(self) -> Any:
        """A libvirt connection to this host (libvirt-python's virConnect), opened once."""
        if self._conn is None:
            lv = load_libvirt()
            try:
                self._conn = lv.open(self.uri)
            except lv.libvirtError as e:
                raise errors.DeviceError(0, f"cannot connect to host {self.name} ({self.uri}): {e}") from None
        return self._conn

    def capabilities_uuid(self) -> str:
        """The host UUID libvirt reports in its capabilities XML."""
        import xml.etree.ElementTree as ET

        found = ET.fromstring(self.conn.getCapabilities()).findtext("host/uuid")
        if found is None:
            raise errors.NotFoundError(f"host {self.name}: no <host><uuid> in libvirt's capabilities")
        return found

    def migrate_uri(self, port: int | None = None) -> str:
        """Where QEMU on this host, as the destination, listens for a migration stream: tcp on
        127.0.0.1 only, on ``port`` or a port free now. Pass it with listen address 127.0.0.1
        (``migrate_params``): without, QEMU listens on every interface."""
        return f"tcp://{LOCALHOST}:{port if port is not None else free_port()}"

    def migrate_params(self, port: int | None = None) -> dict[str, Any]:
        """libvirt migration parameters for a migration to this host (tcp on 127.0.0.1)."""
        lv = load_libvirt()
        return {lv.VIR_MIGRATE_PARAM_URI: self.migrate_uri(port), lv.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: LOCALHOST}

    def migrate(self, domain: str, dest: Host, flags: int | None = None, params: dict[str, Any] | None = None,
                p2p: bool = False) -> Any:
        """Migrate ``domain`` from this host to ``dest`` and return it there (a virDomain of
        dest). Default flags: live, persistent on dest, undefined here. ``params`` are added to
        ``dest.migrate_params()``. p2p: this host's libvirtd talks to dest's itself."""
        lv = load_libvirt()
        if flags is None:
            flags = lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PERSIST_DEST | lv.VIR_MIGRATE_UNDEFINE_SOURCE
        all_params = {**dest.migrate_params(), **(params or {})}
        dom = self.conn.lookupByName(domain)
        try:
            if p2p:
                dom.migrateToURI3(dest.uri, all_params, flags | lv.VIR_MIGRATE_PEER2PEER)
                return dest.conn.lookupByName(domain)
            return dom.migrate3(dest.conn, all_params, flags)
        except lv.libvirtError as e:
            raise errors.DeviceError(0, f"migrating {domain} from host {self.name} to {dest.name}: {e}") from e

    def destroy_domains(self) -> list[str]:
        """Destroy every running domain and undefine every defined one; returns their names."""
        if self.libvirtd_pid is None:
            return []
        lv = load_libvirt()
        names = []
        try:
            doms = self.conn.listAllDomains()
        except lv.libvirtError as e:
            log.warning("host %s: cannot list domains: %s", self.name, e)
            return []
        undefine = (lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                    | lv.VIR_DOMAIN_UNDEFINE_NVRAM | lv.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
        for dom in doms:
            names.append(dom.name())
            try:
                if dom.isActive():
                    dom.destroy()
            except lv.libvirtError as e:
                log.warning("host %s: destroy %s: %s", self.name, dom.name(), e)
            try:
                if dom.isPersistent():
                    dom.undefineFlags(undefine)
            except lv.libvirtError as e:
                log.warning("host %s: undefine %s: %s", self.name, dom.name(), e)
        return names

    # ---- commands in the namespace ----

    def run(self, argv: Sequence[str], check: bool = True, timeout: float = 60.0,
            input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002 - as subprocess.run
        """Run a command in the host's mount namespace (its /dev/shm, its /etc/libvirt...) and
        return what it printed; check: raise if it fails."""
        cmd, fds = self._nsenter(argv)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, pass_fds=fds)
        if check and r.returncode != 0:
            raise errors.DeviceError(0, f"host {self.name}: {shlex.join(argv)} exited with {r.returncode}: "
                                     f"{r.stderr.strip()}")
        return r

    def shm(self) -> list[str]:
        """The names in the host's own /dev/shm."""
        return sorted(self.run(["ls", "-A", "/dev/shm"]).stdout.split())

    # ---- the daemon ----

    def start_daemon(self, timeout: float = 20.0) -> None:
        """Start virt-synthd in the host's namespace (its /dev/shm as the region directory, regions
        owned by the QEMU user) and return once it answers."""
        if self.daemon_pid is not None:
            raise errors.BusyError(f"host {self.name}: virt-synthd already runs (pid {self.daemon_pid})")
        cmd, fds = self._nsenter([sys.executable, "-m", "libvirt_synth.daemon.main",
                                  "--config", str(self.daemon_config), "--socket", self.socket,
                                  "--state-dir", str(self.state_dir), "--region-dir", "/dev/shm",
                                  "--qemu-user", QEMU_USER, "--log-level", "debug"])
        with open(self.daemon_log, "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=fds,
                                    start_new_session=True)
        self._daemon = proc

        def dead() -> str | None:
            if proc.poll() is None:
                return None
            return f"virt-synthd exited with status {proc.returncode}:\n{_tail(self.daemon_log)}"

        def answers() -> bool:
            try:
                client.call("health", self.socket, timeout=2)
                return True
            except client.RpcError:
                return False

        _wait(answers, f"virt-synthd of host {self.name} to answer on {self.socket}", timeout, 0.05, dead)

    def kill_daemon(self, sig: int = signal.SIGKILL, wait: bool = True, timeout: float = 15.0) -> int | None:
        """Send the daemon a signal; wait: until it exits, and return its exit status (negative:
        the signal that ended it). None if it was not running."""
        proc = self._daemon
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(sig)
        if not wait:
            return None
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise errors.TimeoutError(f"host {self.name}: virt-synthd did not exit within {timeout:g} s of "
                                      f"signal {signal.Signals(sig).name}") from None

    def stop_daemon(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; its exit status."""
        try:
            return self.kill_daemon(signal.SIGTERM, timeout=timeout)
        except errors.TimeoutError:
            return self.kill_daemon(signal.SIGKILL)

    def restart_daemon(self, timeout: float = 20.0) -> None:
        """Stop the daemon cleanly (SIGTERM) and start it again."""
        self.stop_daemon()
        self.start_daemon(timeout)

    def daemon_call(self, method: str, **params: Any) -> Any:
        """A JSON-RPC call to the host's daemon (libvirt_synth.daemon.client)."""
        return client.call(method, self.socket, **params)

    # ---- libvirtd ----

    def restart_libvirtd(self, timeout: float = 60.0) -> None:
        """Kill libvirtd (SIGKILL: running QEMUs go on) and start it again in the same namespace;
        it reads the hook again and runs "reconnect" for every running domain."""
        self._kill_libvirtd(signal.SIGKILL)
        cmd, fds = self._nsenter(self._libvirtd_argv())
        with open(self.libvirtd_out, "ab") as out:
            self._libvirtd = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=fds,
                                              start_new_session=True)
        self._wait_libvirtd(timeout)

    def _kill_libvirtd(self, sig: int, timeout: float = 20.0) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        proc = self._libvirtd
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # ---- tear-down ----

    def stop(self) -> None:
        """Destroy and undefine every domain, stop the daemon and libvirtd, kill what is left in
        the namespace and let it go (its mounts and /dev/shm go with it). Safe to call twice, and
        after a failed start."""
        with contextlib.suppress(Exception):
            self.destroy_domains()
        with contextlib.suppress(Exception):
            self.stop_daemon()
        self._kill_libvirtd(signal.SIGTERM, timeout=15.0)
        if self._ns_fd is not None:
            ns = self.namespace
            left = self.pids()
            for pid in left:
                log.warning("host %s: killing process %d, left in its namespace", self.name, pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(errors.TimeoutError):
                _wait(lambda: not any(namespace_of(p) == ns for p in left), f"host {self.name}'s processes to exit",
                      10.0)
            os.close(self._ns_fd)
            self._ns_fd = None
        self._libvirtd = None
        self._daemon = None


@contextlib.contextmanager
def two_hosts(base_dir: str | os.PathLike[str], extra_a: str = "", extra_b: str = "",
              timeout: float = 60.0) -> Iterator[tuple[Host, Host]]:
    """Hosts ``a`` and ``b`` in base_dir/a and base_dir/b, their daemons configured with extra_a
    and extra_b (TOML text), started and, however the block ends, stopped (every domain
    destroyed, no process or mount left). The directories stay, with the logs."""
    base = pathlib.Path(base_dir)
    a = Host("a", base / "a", extra_a)
    b = Host("b", base / "b", extra_b)
    try:
        a.start(timeout)
        b.start(timeout)
        yield a, b
    finally:
        for h in (b, a):
            h.stop()
