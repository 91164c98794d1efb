# SPDX-License-Identifier: Apache-2.0
"""Bad input to the XML generator is reported with the line and the reason, never a traceback:
malformed XML, domains libvirt's schema rejects, bad device specs and template values."""

from __future__ import annotations

import pathlib

import pytest

from libvirt_synth import errors
from libvirt_synth.xml import designer, spec, template, validate

DATA = pathlib.Path(__file__).parent / "data" / "xml"
MINIMAL = (DATA / "minimal-in.xml").read_text()
CRYPTO = [spec.parse_cli("crypto")]


def inject_error(text: str, specs: list[spec.DeviceSpec] | None = None) -> validate.XmlError:
    with pytest.raises(validate.XmlError) as info:
        designer.inject(text, CRYPTO if specs is None else specs, "vm.xml")
    err = info.value
    assert isinstance(err, errors.SynthError) and isinstance(err, ValueError)
    return err


def test_malformed_xml_names_line_and_reason() -> None:
    err = inject_error(MINIMAL.replace("</name>", "</nam>"))
    assert err.line == 2 and "not well-formed" in err.reason and "mismatch" in err.reason
    assert str(err).startswith("vm.xml:2: not well-formed XML: Opening and ending tag mismatch")
    err = inject_error(MINIMAL[:-20])
    assert err.line is not None and "not well-formed" in str(err)


def test_not_a_domain() -> None:
    err = inject_error("<network>\n  <name>default</name>\n</network>\n")
    assert err.line == 1 and "expected a <domain> element, got <network>" in err.reason


def test_entities_are_not_expanded() -> None:
    evil = ('<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            + MINIMAL.replace("<name>minimal</name>", "<name>&x;</name>"))
    try:
        result = designer.inject(evil, CRYPTO)
    except validate.XmlError:
        return  # rejected: fine
    assert "root:" not in result.xml


@pytest.mark.parametrize(("edit", "line", "reason"), [
    # inside <devices>, libxml2 alone only says "Element domain failed to validate content"
    (("</os>", "</os>\n  <devices>\n    <shmem name='x' role='boss'/>\n  </devices>"), 9,
     "<shmem>: Invalid attribute role for element shmem"),
    (("</os>", "</os>\n  <devices>\n    <serial type='pty'/>\n    <frobnicator/>\n  </devices>"), 10,
     "<frobnicator>: libvirt's schema has no such element"),
    (("arch='x86_64'", "arch='z80'"), 6, "Invalid attribute arch for element type"),
    (("<memory unit='MiB'>256</memory>", "<memory unit='MiB'>lots</memory>"), 4,
     "<memory>: not accepted in <domain>: check its value"),
    (("<memory unit='MiB'>256</memory>", "<memory unit='MiB'>256</memory>\n  <vcpu>two</vcpu>"), 5, "<vcpu>"),
])
def test_schema_invalid_domain_names_line_and_reason(edit: tuple[str, str], line: int, reason: str) -> None:
    err = inject_error(MINIMAL.replace(*edit))
    assert err.line == line and reason in err.reason, str(err)
    assert str(err).startswith(f"vm.xml:{line}: ")


def test_several_schema_errors_are_all_reported() -> None:
    text = MINIMAL.replace("</os>", "</os>\n  <devices>\n    <shmem name='x' role='boss'/>\n"
                           "    <rng model='nope'/>\n  </devices>")
    err = inject_error(text)
    assert [p.line for p in err.problems] == [9, 10]
    assert "<rng>" in err.problems[1].reason


def test_bad_uuid() -> None:
    # libvirt's schema already rejects it; the designer would too.
    err = inject_error(MINIMAL.replace("0f3c2a1e-7b4d-4c8a-9e21-5d6f7a8b9c0d", "not-a-uuid"))
    assert err.line == 3


def test_bad_metadata_of_ours_is_reported() -> None:
    good = designer.inject(MINIMAL, CRYPTO).xml
    err = inject_error(good.replace('class="crypto"', 'class="teleport"'))
    assert err.line == 6 and "teleport" in err.reason
    err = inject_error(good.replace('queues="1"', 'queues="many"'))
    assert "queues" in err.reason


@pytest.mark.parametrize(("text", "message"), [
    ("teleport", "unknown device class 'teleport'"),
    ("crypto:size=3M", "power of two"),
    ("crypto:size=512K", "power of two from 1M"),
    ("crypto:size=4X", "is not a size"),
    ("crypto:queues=0", "queues must be positive"),
    ("crypto:queues=65", "queues must be 1..64"),
    ("packet:queues=3", "even number of queues"),
    ("crypto:channels=2", "channels are for packet devices"),
    ("packet:channels=1,queues=2", "not both"),
    ("crypto:ring-entries=100", "power of two in 8..4096"),
    ("crypto:kpi.throughput_gbps=fast", "not a non-negative number"),
    ("crypto:caps=aes 256", "capability 'aes 256' is not valid"),
    ("crypto:colour=red", "unknown key 'colour'"),
    ("crypto:size", "is not key=value"),
    ("crypto:name=a/b", "not a valid region name"),
    ("crypto:name=" + "x" * 32, "at most 31 characters"),
])
def test_bad_device_option(text: str, message: str) -> None:
    with pytest.raises(errors.ValueError, match=None) as info:
        designer.inject(MINIMAL, [spec.parse_cli(text)])
    assert message in str(info.value) and repr(text) in str(info.value)


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("devices:\n  - class: crypto\n    size: [1]\n", "devices[0]: size [1] is not a size"),
    ("devices:\n  - {class: crypto, colour: red}\n", "devices[0]: unknown key 'colour'"),
    ("devices:\n  - capabilities: [aes-256-gcm]\n", "'class' is missing"),
    ("devices:\n  - class: crypto\n    kpis: [1, 2]\n", "kpis must be a mapping"),
    ("vnfd: {}\n", "unknown top-level key 'vnfd'"),
    ("devices:\n  - class: crypto\n   bad: indent\n", "spec.yaml:3: not valid YAML"),
])
def test_bad_yaml_spec(yaml_text: str, message: str) -> None:
    with pytest.raises(errors.ValueError) as info:
        spec.parse_yaml(yaml_text, "spec.yaml")
    assert message in str(info.value)


def test_explicit_names() -> None:
    named = designer.inject(MINIMAL, [spec.parse_cli("crypto:name=vpn0")])
    assert [d.name for d in named.devices] == ["vpn0"]
    with pytest.raises(errors.ValueError, match="given to two devices"):
        designer.inject(MINIMAL, [spec.parse_cli("crypto:name=vpn0"), spec.parse_cli("compress:name=vpn0")])
    users = MINIMAL.replace("</os>", "</os>\n  <devices>\n    <shmem name='vpn0'/>\n  </devices>")
    with pytest.raises(errors.ValueError, match="not a synthetic device of this domain"):
        designer.inject(users, [spec.parse_cli("crypto:name=vpn0")])
    # A derived name never collides with the user's shmem, even one that looks like ours.
    prefix = designer.region_prefix("0f3c2a1e-7b4d-4c8a-9e21-5d6f7a8b9c0d")
    users = MINIMAL.replace("</os>", f"</os>\n  <devices>\n    <shmem name='{prefix}0'/>\n  </devices>")
    assert [d.name for d in designer.inject(users, CRYPTO).devices] == [f"{prefix}1"]


def test_missing_uuid_is_generated_after_the_name() -> None:
    result = designer.inject(MINIMAL.replace("  <uuid>0f3c2a1e-7b4d-4c8a-9e21-5d6f7a8b9c0d</uuid>\n", ""), CRYPTO)
    assert result.uuid_generated and result.changed
    assert f"<name>minimal</name>\n  <uuid>{result.uuid}</uuid>\n  <metadata>" in result.xml
    assert result.devices[0].name == f"{designer.region_prefix(result.uuid)}0"


def test_template_values() -> None:
    with pytest.raises(errors.ValueError, match="template vnf-kernel needs --kernel PATH and --initrd PATH"):
        template.fill("vnf-kernel", {})
    with pytest.raises(errors.ValueError, match="--disk does not apply to it"):
        template.fill("vnf-kernel", {"KERNEL": "/k", "INITRD": "/i", "DISK": "/d"})
    with pytest.raises(errors.ValueError, match="--memory 'lots'"):
        template.fill("vnf-disk", {"DISK": "/d", "MEMORY": "lots"})
    with pytest.raises(errors.ValueError, match="--domain-type 'xen'"):
        template.fill("vnf-disk", {"DISK": "/d", "DOMAIN_TYPE": "xen"})
    with pytest.raises(errors.NotFoundError, match=r"no template 'nope' \(templates: .*vnf-disk, vnf-kernel"):
        template.fill("nope", {})
    text, _ = template.fill("vnf-kernel", {"KERNEL": "vmlinuz", "INITRD": "/i", "CMDLINE": "a='<b>' & c"})
    assert f"<kernel>{pathlib.Path('vmlinuz').resolve()}</kernel>" in text
    assert "<cmdline>a=&apos;&lt;b&gt;&apos; &amp; c</cmdline>" in text
    assert template.placeholders(text) == []


def test_disk_format_is_read_from_the_image(tmp_path: pathlib.Path) -> None:
    img = tmp_path / "disk.img"
    img.write_bytes(b"QFI\xfb" + bytes(60))
    assert template.disk_format(str(img)) == "qcow2"
    img.write_bytes(bytes(64))
    assert template.disk_format(str(img)) == "raw"
    assert template.disk_format(str(tmp_path / "missing.qcow2")) == "qcow2"


def test_missing_schema_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv(validate.SCHEMA_DIR_ENV, str(tmp_path))
    validate.domain_schema.cache_clear()
    try:
        with pytest.raises(errors.NotFoundError, match="apt-get install libvirt0"):
            designer.inject(MINIMAL, CRYPTO)
    finally:
        monkeypatch.undo()
        validate.domain_schema.cache_clear()
