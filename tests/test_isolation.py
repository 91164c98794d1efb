# SPDX-License-Identifier: Apache-2.0
"""Each VM's QEMU is a uid of its own and its regions belong to it: a compromised QEMU cannot
open another VM's region (this kernel has no AppArmor or SELinux to stop it otherwise). The XML
generator allocates the uid and writes the static DAC <seclabel>; the hook hands it to the daemon,
which checks it and gives the regions to it. For real: two VMs under libvirt, and a process with
one VM's identity trying the other's region."""

from __future__ import annotations

import errno
import grp
import os
import pathlib
import subprocess
import time
from collections.abc import Iterator

import pytest
from lxml import etree
from test_xml_cli import run

from libvirt_synth import errors
from libvirt_synth.daemon import client
from libvirt_synth.hook import metadata
from libvirt_synth.xml import designer, spec

import libvirtctl
from daemonctl import Daemon, running

SHM = pathlib.Path("/dev/shm")
# Two uuids whose allocation starts at the same uid (uuid mod 65536): the second must take the next.
VMS = {"iso-a": "1a2b3c4d-0000-4000-8000-0000000a1234", "iso-b": "2b3c4d5e-0000-4000-8000-0000000b1234"}
PLAIN = libvirtctl.MINIMAL_DOMAIN
DAC = designer.Isolation()


def uid_of(xml: str) -> int | None:
    return metadata.parse_domain(xml)["uid"]


def labels(xml: str) -> list[tuple[str | None, str | None]]:
    root = etree.fromstring(xml.encode())
    return [(el.get("model"), el.findtext("label")) for el in root.findall("seclabel")]


# ---- the generator ----


def test_a_domain_gets_a_uid_of_its_own_and_keeps_it() -> None:
    xml = PLAIN.format(name="a", uuid=VMS["iso-a"])
    r = designer.inject(xml, [spec.parse_cli("crypto")], isolation=DAC)
    first, last = DAC.uids
    assert r.uid is not None and first <= r.uid <= last and uid_of(r.xml) == r.uid
    assert labels(r.xml) == [("dac", f"+{r.uid}:libvirt-qemu")]
    again = designer.inject(r.xml, None, isolation=designer.Isolation(taken=frozenset({r.uid + 1})))
    assert again.xml == r.xml, "injecting again changes nothing"
    # Another domain that has it already: this one moves to a free one.
    moved = designer.inject(r.xml, None, isolation=designer.Isolation(taken=frozenset({r.uid})))
    assert moved.uid not in (None, r.uid) and labels(moved.xml) == [("dac", f"+{moved.uid}:libvirt-qemu")]
    # No isolation: our label and the uid go; no devices: no uid either.
    plain = designer.inject(r.xml, None)
    assert labels(plain.xml) == [] and uid_of(plain.xml) is None
    assert labels(designer.inject(r.xml, [], isolation=DAC).xml) == []


def test_two_domains_that_start_at_the_same_uid_get_different_ones() -> None:
    a = designer.inject(PLAIN.format(name="a", uuid=VMS["iso-a"]), [spec.parse_cli("crypto")], isolation=DAC)
    b = designer.inject(PLAIN.format(name="b", uuid=VMS["iso-b"]), [spec.parse_cli("crypto")],
                        isolation=designer.Isolation(taken=frozenset({a.uid})))  # type: ignore[arg-type]
    assert b.uid == a.uid + 1  # type: ignore[operator]
    full = designer.Isolation(uids=(5000, 5001), taken=frozenset({5000, 5001}))
    with pytest.raises(errors.ValueError, match="no free uid left in 5000-5001"):
        designer.inject(PLAIN.format(name="a", uuid=VMS["iso-a"]), [spec.parse_cli("crypto")], isolation=full)


def test_a_users_own_dac_label_is_never_replaced() -> None:
    xml = PLAIN.format(name="a", uuid=VMS["iso-a"]).replace(
        "</devices>", "</devices>\n  <seclabel type='static' model='dac' relabel='yes'><label>+1234:+1234</label>"
        "</seclabel>")
    with pytest.raises(errors.ValueError, match="has a <seclabel model='dac'> of its own"):
        designer.inject(xml, [spec.parse_cli("crypto")], isolation=DAC)
    kept = designer.inject(xml, [spec.parse_cli("crypto")])
    assert labels(kept.xml) == [("dac", "+1234:+1234")] and uid_of(kept.xml) is None


def test_auto_is_dac_unless_a_mac_model_confines_qemu() -> None:
    assert designer.isolation_for("auto", ["none", "dac"]) is not None
    assert designer.isolation_for("auto", ["apparmor", "dac"]) is None
    assert designer.isolation_for("dac", ["selinux"]) is not None
    assert designer.isolation_for("none", []) is None


def test_the_cli_takes_the_range_and_group_from_the_daemons_configuration(tmp_path: pathlib.Path) -> None:
    cfg = tmp_path / "virt-synthd.toml"
    cfg.write_text('[isolation]\nuids = "700000-700009"\ngroup = "kvm"\n')
    src = tmp_path / "a.xml"
    src.write_text(PLAIN.format(name="a", uuid=VMS["iso-a"]))
    out = run("xml", str(src), "--device", "crypto", "--config", str(cfg), "--isolation", "dac").stdout
    uid = uid_of(out)
    assert uid is not None and 700000 <= uid <= 700009 and labels(out) == [("dac", f"+{uid}:kvm")]
    assert labels(run("xml", str(src), "--device", "crypto", "--isolation", "none").stdout) == []


# ---- the daemon ----


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    with running("synthd-iso-", config='[isolation]\nuids = "700000-700009"\n') as d:
        yield d


needs_root = pytest.mark.skipif(os.getuid() != 0, reason="gives regions to other uids (root)")


@needs_root
def test_the_daemon_gives_regions_to_the_domains_uid_and_no_uid_to_two_domains(daemon: Daemon) -> None:
    dev = {"name": "a0", "class": "crypto", "size": 1 << 20}
    with pytest.raises(client.RpcError, match="must be one of this host's \\[isolation\\] uids 700000-700009"):
        daemon.call("domain.create", uuid=VMS["iso-a"], name="iso-a", devices=[dev], uid=123)
    daemon.call("domain.create", uuid=VMS["iso-a"], name="iso-a", devices=[dev], uid=700003)
    st = os.stat(daemon.regions / "a0")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (700003, grp.getgrnam("libvirt-qemu").gr_gid, 0o600)
    with pytest.raises(client.RpcError, match="uid 700003 is already the QEMU identity of domain iso-a"):
        daemon.call("domain.create", uuid=VMS["iso-b"], name="iso-b",
                    devices=[{"name": "b0", "class": "crypto", "size": 1 << 20}], uid=700003)
    assert not (daemon.regions / "b0").exists()
    daemon.call("domain.destroy", uuid=VMS["iso-a"])  # its uid is free again
    daemon.call("domain.create", uuid=VMS["iso-b"], name="iso-b",
                devices=[{"name": "b0", "class": "crypto", "size": 1 << 20}], uid=700003)


# ---- for real: two VMs under libvirt ----

why_not = libvirtctl.available()


@pytest.fixture(scope="module")
def vms() -> Iterator[tuple[Daemon, dict[str, pathlib.Path]]]:
    with libvirtctl.hooked_daemon("synth-iso-") as d:
        files = {}
        try:
            for name, uuid in VMS.items():
                files[name] = d.base / f"{name}.xml"
                files[name].write_text(PLAIN.format(name=name, uuid=uuid))
                # As an operator would: define on the host, which knows the uids its domains have.
                run("define", str(files[name]), "--connect", "qemu:///system", "--device", "crypto:size=1M",
                    "--isolation", "dac")
            yield d, files
        finally:
            for name in VMS:
                libvirtctl.virsh("destroy", name, check=False)
                libvirtctl.virsh("undefine", name, check=False)
            for uuid in VMS.values():
                (SHM / f"{designer.region_prefix(uuid)}0").unlink(missing_ok=True)  # left only by a failed stop


PROBE = """import os, sys
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDWR))
        print("ok")
    except OSError as e:
        print(e.errno)
"""


def as_uid(uid: int, gid: int, *paths: str) -> list[str]:
    """What a process with this identity gets opening each path read-write (as a QEMU would)."""
    r = subprocess.run(["/usr/bin/python3", "-I", "-c", PROBE, *paths], user=uid, group=gid, extra_groups=[],
                       capture_output=True, text=True, timeout=30, check=True, cwd="/")
    return r.stdout.split()


@pytest.mark.slow
@pytest.mark.skipif(why_not is not None, reason=why_not or "")
def test_a_qemu_identity_cannot_open_another_vms_region(vms: tuple[Daemon, dict[str, pathlib.Path]]) -> None:
    d, _ = vms
    uids, regions = {}, {}
    for name in VMS:
        xml = libvirtctl.virsh("dumpxml", "--inactive", name).stdout
        dom = metadata.parse_domain(xml)
        uids[name], regions[name] = dom["uid"], str(SHM / dom["devices"][0]["name"])
    assert uids["iso-b"] == uids["iso-a"] + 1, "define saw iso-a's uid and gave iso-b the next one"
    for name in VMS:
        libvirtctl.virsh("start", name)
    try:
        group = grp.getgrnam("libvirt-qemu").gr_gid
        for name in VMS:
            pid = int(pathlib.Path(f"/run/libvirt/qemu/{name}.pid").read_text())
            assert os.stat(f"/proc/{pid}").st_uid == uids[name], f"{name}'s QEMU runs as its own uid"
            st = os.stat(regions[name])
            assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uids[name], group, 0o600)
            assert libvirtctl.virsh("domstate", name).stdout.strip() == "running"
        a, b = regions["iso-a"], regions["iso-b"]
        assert as_uid(uids["iso-a"], group, a, b) == ["ok", str(errno.EACCES)]
        assert as_uid(uids["iso-b"], group, a, b) == [str(errno.EACCES), "ok"]
        # The shared QEMU user of before would open both: that is what changed.
        qemu = int(subprocess.run(["id", "-u", "libvirt-qemu"], capture_output=True, text=True).stdout)
        assert as_uid(qemu, group, a, b) == [str(errno.EACCES), str(errno.EACCES)]
    finally:
        for name in VMS:
            libvirtctl.virsh("destroy", name, check=False)
    deadline = time.monotonic() + 10
    while any(os.path.exists(p) for p in regions.values()):
        assert time.monotonic() < deadline, "the regions went away with their VMs"
        time.sleep(0.1)
    for name in VMS:
        assert libvirtctl.virsh("domstate", name).stdout.strip() == "shut off"
