# SPDX-License-Identifier: Apache-2.0
"""The two-host testbed (libvirt_synth/testbed/hosts.py): two libvirtd, each with a virt-synthd,
in mount namespaces of their own on this machine. The hosts are apart (own host UUID, own
/dev/shm, own daemon configuration); a guest without synthetic devices live-migrates from one to
the other over tcp on 127.0.0.1 and runs on there; a guest with a synthetic crypto device gets it
from its own host's daemon, in that host's /dev/shm alone, through the hook installed in that
host's /etc/libvirt; and the harness leaves no process behind when a test fails inside it. Root
only; the machine's own libvirtd is not touched. About 30 s (two TCG guest boots)."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import twohostbed
from twohostbed import Bed
from waiting import until

from libvirt_synth.testbed import hosts as testhosts
from libvirt_synth.testbed import vm as guestvm
from libvirt_synth.testbed.hosts import Host, two_hosts

import libvirtctl

why_not = twohostbed.why_not()
pytestmark = [pytest.mark.skipif(why_not is not None, reason=why_not or ""), pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHM = pathlib.Path("/dev/shm")
PINS = ("ipsec-mb", "openssl")  # host a's crypto plugin, host b's
SEED = 20240611
PLAIN = ("synth-2h-plain", "2a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d")
CRYPTO = ("synth-2h-crypto", "2c0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2e")
REGION = "synth-2h-crypto-0"


def pin(plugin: str) -> str:
    return f'[plugins.pin]\ncrypto = "{plugin}"\n'


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    with twohostbed.bed("synth-2h-", pin(PINS[0]), pin(PINS[1])) as b:
        yield b


def domain_xml(bed: Bed, name: str, uuid: str, devices: list[str], steps: tuple[str, ...]) -> tuple[str, pathlib.Path]:
    console = bed.base / f"{name}.console.log"
    cmdline = guestvm.Inputs.make(SEED, steps=steps).cmdline()
    return guestvm.domain_xml(name, uuid, str(bed.image.kernel), str(bed.image.initrd), cmdline, devices,
                              str(console)), console


def console_has(console: pathlib.Path, text: str) -> bool:
    try:
        return text in console.read_text(errors="replace")
    except FileNotFoundError:
        return False


def qemu_pid(host: Host, name: str) -> int:
    """The pid of a domain's QEMU, from the host's /run/libvirt/qemu/<name>.pid."""
    return int((host.dir / "run" / "qemu" / f"{name}.pid").read_text())


def in_namespace(pid: int, host: Host) -> bool:
    st = os.stat(f"/proc/{pid}/ns/mnt")
    return (st.st_dev, st.st_ino) == host.namespace


def names(host: Host) -> list[str]:
    return sorted(d.name() for d in host.conn.listAllDomains())


def served(host: Host) -> list[str]:
    return sorted(d["name"] for d in host.daemon_call("devices.list") if d["served"])


def failure_report(host: Host, domain: str) -> str:
    log = host.qemu_log(domain)
    return (f"{log}:\n{log.read_text(errors='replace')[-2000:] if log.exists() else '(none)'}\n"
            f"{host.libvirtd_log}:\n{host.libvirtd_log.read_text(errors='replace')[-3000:]}")


def test_the_two_hosts_are_apart(bed: Bed) -> None:
    a, b = bed.a, bed.b
    # Each libvirtd reports its own host UUID: libvirt's same-host check before a migration.
    assert a.capabilities_uuid() == a.host_uuid and b.capabilities_uuid() == b.host_uuid
    assert a.host_uuid != b.host_uuid
    # libvirtd and virt-synthd of a host share its namespace, which is neither the other's nor ours.
    me = os.stat("/proc/self/ns/mnt")
    assert a.namespace != b.namespace and (me.st_dev, me.st_ino) not in (a.namespace, b.namespace)
    for h in (a, b):
        assert h.libvirtd_pid is not None and h.daemon_pid is not None
        assert in_namespace(h.libvirtd_pid, h) and in_namespace(h.daemon_pid, h)
        assert h.libvirtd_pid in h.pids() and h.daemon_pid in h.pids()
    # The machine's libvirtd is the only one `pgrep -x libvirtd` finds (libvirtctl restarts it so).
    found = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True).stdout.split()
    assert not {a.libvirtd_pid, b.libvirtd_pid} & {int(p) for p in found}
    # A file in a's /dev/shm is in a's alone.
    probe = "synth-2h-apart"
    a.run(["sh", "-c", f"echo a > /dev/shm/{probe}"])
    try:
        assert probe in a.shm() and a.run(["cat", f"/dev/shm/{probe}"]).stdout == "a\n"
        assert probe not in b.shm() and not (SHM / probe).exists()
        assert b.run(["test", "-e", f"/dev/shm/{probe}"], check=False).returncode == 1
    finally:
        a.run(["rm", f"/dev/shm/{probe}"])
    # Each daemon runs with its own configuration, and each libvirtd has the hook calling it.
    assert a.daemon_call("plugins")["pins"] == {"crypto": PINS[0]}
    assert b.daemon_call("plugins")["pins"] == {"crypto": PINS[1]}
    for h in (a, b):
        hook = h.run(["cat", "/etc/libvirt/hooks/qemu.d/libvirt-synth"]).stdout
        assert f'hook.SOCKET_PATH = "{h.socket}"' in hook


def test_a_guest_without_synthetic_devices_live_migrates_from_a_to_b(bed: Bed) -> None:
    import libvirt

    a, b = bed.a, bed.b
    name, uuid = PLAIN
    xml, console = domain_xml(bed, name, uuid, [], ("shell",))  # the shell waits on the console: it runs on
    dom = a.conn.defineXML(xml)
    try:
        dom.create()
        until(lambda: console_has(console, "@@SYNTH-BEGIN shell"), "the guest to boot on a", 90)
        source_qemu = qemu_pid(a, name)
        assert in_namespace(source_qemu, a)
        try:
            moved = a.migrate(name, b)
        except OSError:
            pytest.fail(f"migration failed\n{failure_report(a, name)}\n{failure_report(b, name)}")
        assert moved.state() == [libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_MIGRATED]
        assert moved.isPersistent() and moved.UUIDString() == uuid
        assert name not in names(a) and names(b) == [name]
        # The guest's QEMU now runs in b's namespace, and a's is gone.
        dest_qemu = qemu_pid(b, name)
        assert in_namespace(dest_qemu, b)
        until(lambda: source_qemu not in a.pids(), "a's QEMU to exit", 20)
        # The guest's kernel runs on b: an NMI sent there is answered on the console (which b's
        # QEMU opened anew when it started, so nothing in it is from before the move).
        moved.injectNMI()
        until(lambda: console_has(console, "NMI received for unknown reason"), "the guest on b to answer an NMI",
              30)
        # And back, peer to peer: b's libvirtd calls a's itself.
        back = b.migrate(name, a, p2p=True)
        assert back.state() == [libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_MIGRATED]
        assert names(a) == [name] and name not in names(b) and in_namespace(qemu_pid(a, name), a)
    finally:
        for h in (a, b):
            h.destroy_domains()


def test_a_guest_with_a_synthetic_device_gets_it_from_its_own_hosts_daemon(bed: Bed) -> None:
    a, b = bed.a, bed.b
    name, uuid = CRYPTO
    xml, console = domain_xml(bed, name, uuid, [f"crypto:name={REGION},caps=aes-256-gcm"], ("probe", "shell"))
    dom = a.conn.defineXML(xml)
    try:
        dom.create()  # a's libvirtd ran the hook in a's /etc/libvirt: a's daemon made the region first
        assert served(a) == [REGION] and b.daemon_call("devices.list") == []
        assert [d["plugin"] for d in a.daemon_call("devices.list")] == [PINS[0]]
        assert REGION in a.shm() and REGION not in b.shm() and not (SHM / REGION).exists()
        owner = a.run(["stat", "-c", "%U %a %s", f"/dev/shm/{REGION}"]).stdout.split()
        assert owner == [testhosts.QEMU_USER, "600", str(4 << 20)]
        pid = qemu_pid(a, name)
        assert in_namespace(pid, a)
        assert f"/dev/shm/{REGION}" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        # The guest finds the device on its PCI bus, served by a's crypto plugin.
        until(lambda: console_has(console, "@@SYNTH-END probe"), "the guest's probe", 90)
        devs = guestvm.parse_console(console.read_text(errors="replace")).step("probe").of("device")
        assert [(d["name"], d["class"], d["backend"], d["dev_status"]) for d in devs] == \
            [(REGION, "crypto", PINS[0], 1)], devs
        dom.destroy()  # the release hook: a's daemon destroys the device and its region
        until(lambda: a.daemon_call("devices.list") == [], "a's daemon to drop the device", 20)
        assert REGION not in a.shm()
    finally:
        for h in (a, b):
            h.destroy_domains()


def test_a_hosts_daemon_is_killed_and_started_again_in_the_hosts_namespace(bed: Bed) -> None:
    a = bed.a
    before = a.daemon_pid
    assert a.kill_daemon(signal.SIGKILL) == -signal.SIGKILL and a.daemon_pid is None
    a.start_daemon()
    assert a.daemon_pid not in (None, before) and a.daemon_pid in a.pids()
    again = a.daemon_pid
    a.restart_daemon()  # SIGTERM, then started again: its configuration is the host's still
    assert a.daemon_pid not in (None, again) and a.daemon_pid in a.pids()
    assert a.daemon_call("plugins")["pins"] == {"crypto": PINS[0]}
    assert a.daemon_call("health")["pid"] == a.daemon_pid


@pytest.mark.parametrize(("directory", "covered"), [("/dev/shm/synth-2h", "/dev/shm"),
                                                    ("/var/lib/libvirt/synth-2h", "/var/lib/libvirt"),
                                                    ("/run/libvirt", "/run/libvirt")])
def test_a_host_directory_that_its_namespace_would_hide_is_refused(directory: str, covered: str) -> None:
    with pytest.raises(ValueError, match=f"is under {covered}, which the host's namespace mounts over"):
        Host("a", directory)


def test_two_hosts_leaves_nothing_behind_when_the_block_fails() -> None:
    """A block that raises, with a QEMU running on a: every process of both hosts ends, and no
    process (this one included) holds their namespaces any more."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="synth-2h-fail-", dir="/var/tmp"))
    seen: dict[str, Any] = {}
    try:
        with pytest.raises(RuntimeError, match="the test failed here"), two_hosts(base) as (a, b):
            a.conn.createXML(libvirtctl.MINIMAL_DOMAIN.format(name="synth-2h-left", uuid="2f0b1c2d-3e4f-4a5b-8c6d-"
                                                                "7e8f9a0b1c2f"))
            seen["qemu"] = qemu_pid(a, "synth-2h-left")
            seen["pids"] = a.pids() + b.pids()
            seen["ns"] = {a.namespace, b.namespace}
            assert seen["qemu"] in seen["pids"] and len(seen["pids"]) == 5  # 2 libvirtd, 2 daemons, QEMU
            raise RuntimeError("the test failed here")
        left = [p for p in os.listdir("/proc") if p.isdigit() and testhosts.namespace_of(p) in seen["ns"]]
        assert left == []
        assert not any(os.path.exists(f"/proc/{p}") and testhosts.namespace_of(p) is not None for p in seen["pids"])
        held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.islink(f"/proc/self/fd/{fd}")]
        assert not [h for h in held if h in {f"mnt:[{ino}]" for _, ino in seen["ns"]}]
    finally:
        for pid in seen.get("pids", []):  # in case the harness failed to: never leave a QEMU running
            if testhosts.namespace_of(pid) in seen.get("ns", set()):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
