# SPDX-License-Identifier: Apache-2.0
"""One check of a device, at every door: ``virt-synth xml``/``define``, the VNFD loader, the
libvirt hook and virt-synthd refuse the same mistakes with the same words, and the first of them
that sees a mistake refuses it. The tables the check restates from the C core are pinned to it."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from test_hook import domain_xml, run_hook
from test_vnfd import GOOD
from test_xml_cli import KERNEL, run

from libvirt_synth import capabilities, vnfd
from libvirt_synth._native import lib
from libvirt_synth.abi import PKT_MAX_FRAME, PKT_MIN_FRAME
from libvirt_synth.daemon import client
from libvirt_synth.host.plugins import catalog

from daemonctl import Daemon, hooked, running

UUID = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"

# (--device, what the refusal says): the list, then their neighbours.
REFUSED = [
    ("crypto:caps=aes-512-gcm", "unknown capability 'aes-512-gcm'"),
    ("crypto:caps=zstd", "capability 'zstd' is a compress capability, not a crypto one"),
    ("compress:caps=aes-256-gcm", "capability 'aes-256-gcm' is a crypto capability, not a compress one"),
    ("crypto:kpi.bogus=1", "unknown KPI 'bogus'"),
    ("crypto:kpi.packets_per_s=1", "KPI 'packets_per_s' does not apply to crypto devices"),
    ("crypto:opt.foo=bar", "unknown crypto option 'foo'"),
    ("packet:opt.link0=wire:peer", "unknown packet option 'link0'; did you mean link?"),
    ("packet:opt.link.1=wire:peer", "option link.1: the device has 1 channel"),
    ("packet:opt.link=cable:peer", "is not a link: expected wire:DEVICE[.CHANNEL] or tap:IFNAME"),
    ("packet:opt.max_frame=20000", "option max_frame = '20000': expected 14..9216"),
    ("compress:caps=zstd,opt.zstd_window_log=40", "option zstd_window_log = '40': expected 10..30"),
    ("crypto:caps=hmac-sha256,plugin=ipsec-mb", "plugin 'ipsec-mb' does not serve hmac-sha256"),
    ("crypto:caps=aes-256-gcm,plugin=zstd", "plugin 'zstd' is a compress plugin, not a crypto one"),
    ("packet:plugin=openssl", "packet devices are served by the data path itself and take no plugin"),
]


def metadata_of(device: str) -> str:
    """The <synth:device> the generator would write for a --device, without its check."""
    from libvirt_synth.xml import spec
    from libvirt_synth.xml.config import SynthDeviceConfig

    s = spec.parse_cli(device)
    packet = s.dev_class == "packet"
    dev = SynthDeviceConfig(name="synth-3f2a1b4c5d6e-0", dev_class=s.dev_class, size=1 << 20,
                            queues=s.queues or (2 if packet else 1), ring_entries=256, plugin=s.plugin,
                            capabilities=s.capabilities, kpis=s.kpis, options=s.options)
    from lxml import etree

    el = dev.format_dom()
    return etree.tostring(el).decode().replace(' xmlns:synth="https://libvirt-synth.org/xmlns/domain/1"', "")


@pytest.mark.parametrize("device, message", REFUSED)
def test_xml_and_define_refuse_it_before_anything_is_written(device: str, message: str,
                                                             tmp_path: pathlib.Path) -> None:
    for cmd in ("xml", "define"):
        out = tmp_path / f"{cmd}.xml"
        r = run(cmd, *KERNEL, "--device", device, *(["-o", str(out)] if cmd == "xml" else []), check=False)
        assert r.returncode == 1 and r.stdout == "", r.stdout
        assert message in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert not out.exists()


@pytest.fixture(scope="module")
def hook_env() -> Iterator[tuple[Daemon, pathlib.Path]]:
    with running("synth-check-") as d, hooked(d) as hook:
        yield d, hook


@pytest.mark.parametrize("device, message", REFUSED)
def test_the_hook_refuses_it_without_asking_the_daemon(device: str, message: str,
                                                       hook_env: tuple[Daemon, pathlib.Path]) -> None:
    d, hook = hook_env
    xml = domain_xml(metadata_of(device))
    r = run_hook(hook, "prepare", "begin", xml, sock=str(d.base / "nobody-listens.sock"))
    assert r.returncode == 1 and message in r.stderr and "not running" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("device, message", REFUSED)
def test_the_daemon_refuses_it_from_any_caller(device: str, message: str,
                                               hook_env: tuple[Daemon, pathlib.Path]) -> None:
    from libvirt_synth.hook import metadata

    d, _ = hook_env
    _, _, devices = metadata.parse_devices(domain_xml(metadata_of(device)), check=False)
    with pytest.raises(client.RpcError) as e:
        d.call("domain.create", uuid=UUID, name="vnf", devices=devices)
    assert message in str(e.value)
    assert d.call("devices.list") == [] and list(d.regions.iterdir()) == []


def test_the_daemon_checks_plugins_against_what_this_host_has(hook_env: tuple[Daemon, pathlib.Path]) -> None:
    d, _ = hook_env
    here = {p.name for p in catalog() if p.available}
    devices = [{"name": "x", "class": "crypto", "capabilities": ["aes-256-gcm"], "plugin": "no-such-plugin"}]
    with pytest.raises(client.RpcError, match="plugin 'no-such-plugin' is not in this host's catalog"):
        d.call("domain.create", uuid=UUID, name="vnf", devices=devices)
    if "af-alg" not in here:  # this kernel has no AF_ALG: a plugin this build carries but cannot run here
        devices[0]["plugin"] = "af-alg"
        with pytest.raises(client.RpcError, match="plugin 'af-alg' is not in this host's catalog"):
            d.call("domain.create", uuid=UUID, name="vnf", devices=devices)
    devices[0]["plugin"] = "openssl"
    d.call("domain.create", uuid=UUID, name="vnf", devices=devices)
    d.call("domain.destroy", uuid=UUID)


def test_a_class_pin_that_cannot_serve_a_device_refuses_it() -> None:
    with running("synth-check-", config='[plugins.pin]\ncrypto = "ipsec-mb"\n') as d:
        with pytest.raises(client.RpcError, match="the configuration pins crypto devices to ipsec-mb: plugin "
                                                  "'ipsec-mb' does not serve hmac-sha256"):
            d.call("domain.create", uuid=UUID, name="vnf",
                   devices=[{"name": "x", "class": "crypto", "capabilities": ["hmac-sha256"]}])
        d.call("domain.create", uuid=UUID, name="vnf",
               devices=[{"name": "x", "class": "crypto", "capabilities": ["aes-256-gcm"]}])


def test_an_external_plugin_is_left_to_the_host_with_a_note(tmp_path: pathlib.Path) -> None:
    r = run("xml", *KERNEL, "--device", "crypto:caps=aes-256-gcm,plugin=ext-gcm", "-o", str(tmp_path / "x.xml"))
    assert "plugin 'ext-gcm' is not one this build carries; virt-synthd checks" in r.stderr


def test_the_vnfd_loader_refuses_bad_options_with_their_path() -> None:
    text = GOOD.replace("      - class: crypto", "      - class: packet\n        options: {link0: 'wire:x'}") \
        .replace("aes-256-gcm", "io")
    with pytest.raises(vnfd.VnfdError) as e:
        vnfd.loads(text, "x.yaml")
    assert [(p.path, p.message[:33]) for p in e.value.problems] == [
        ("$.vdus.gw.devices[0].options", "unknown packet option 'link0'; di")]


def test_links_within_a_domain_are_checked_as_a_whole(tmp_path: pathlib.Path) -> None:
    r = run("xml", *KERNEL, "--device", "packet:name=a,opt.link=wire:c", "--device", "crypto:name=c", check=False)
    assert r.returncode == 1 and "c is a crypto device, not a packet device" in r.stderr, r.stderr
    r = run("xml", *KERNEL, "--device", "packet:name=a,opt.link=wire:b", "--device", "packet:name=b",
            "--device", "packet:name=c,opt.link=wire:b", check=False)
    assert r.returncode == 1 and "b channel 0 is linked twice" in r.stderr, r.stderr
    # Both ends naming each other is one wire; a peer outside the domain is another VM's device.
    run("xml", *KERNEL, "--device", "packet:name=a,opt.link=wire:b", "--device", "packet:name=b,opt.link=wire:a")
    run("xml", *KERNEL, "--device", "packet:name=a,opt.link=wire:other-vm-dev.1")


# ---- the tables the check restates, pinned to the C core ----


def test_the_plugin_table_is_what_the_c_catalog_serves() -> None:
    for p in catalog():
        assert p.name in capabilities.PLUGINS, f"{p.name} is missing from capabilities.PLUGINS"
        cls, serves = capabilities.PLUGINS[p.name]
        assert cls == p.dev_class
        if p.available:  # what it serves here is what the table says it can serve
            assert set(p.algorithms) == set(serves), p.name
    assert set(capabilities.PLUGINS) == {p.name for p in catalog()}


def test_the_limits_are_the_c_cores() -> None:
    assert (capabilities.PKT_MIN_FRAME, capabilities.PKT_MAX_FRAME) == (PKT_MIN_FRAME, PKT_MAX_FRAME)
    from libvirt_synth.host.compress import LIMITS

    assert {k: v[:2] for k, v in capabilities.RANGES["compress"].items()} == {k: v[:2] for k, v in LIMITS.items()}
    assert capabilities.RANGES["packet"]["max_frame"][:2] == (PKT_MIN_FRAME, lib.SYNTH_PKT_MAX_FRAME)
