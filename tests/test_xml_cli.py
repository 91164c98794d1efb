# SPDX-License-Identifier: Apache-2.0
"""virt-synth xml / define / undefine as a user runs them (separate processes), and the examples
of docs/libvirt.md, which must run as written."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from test_xml_golden import virt_xml_validate

from libvirt_synth.hook import metadata

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "libvirt_synth.cli"]
KERNEL = ["--template", "vnf-kernel", "--kernel", "/boot/vmlinuz", "--initrd", "/boot/initrd.img"]


def run(*args: str, check: bool = True, stdin: str | None = None,
        cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, input=stdin, cwd=cwd)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("cmd", ["xml", "define", "undefine"])
def test_help_has_examples(cmd: str) -> None:
    out = run(cmd, "--help").stdout
    assert f"usage: virt-synth {cmd}" in out and "examples:" in out and "(default: None)" not in out
    if cmd != "undefine":
        assert "kpi.NAME=NUMBER" in out and "--template" in out


def test_xml_writes_validates_and_is_idempotent(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "vnf.xml"
    r = run("xml", *KERNEL, "--name", "cli-vnf", "--memory", "1G", "-d", "crypto:caps=aes-256-gcm",
            "-d", "packet:channels=2", "-o", str(out))
    assert r.stdout.startswith(f"wrote {out}\ndomain cli-vnf (")
    assert "added    synth-" in r.stdout
    text = out.read_text()
    assert "<memory unit=\"MiB\">1024</memory>" in text
    virt_xml_validate(text, tmp_path)
    # No device options: the devices it has are kept, byte for byte.
    run("xml", str(out), "--in-place")
    assert out.read_text() == text
    # Same devices again from standard input: the same XML.
    again = run("xml", "-", "-d", "crypto:caps=aes-256-gcm", "-d", "packet:channels=2", stdin=text).stdout
    assert again == text
    # --no-devices takes them all out.
    bare = run("xml", str(out), "--no-devices").stdout
    assert metadata.parse_devices(bare)[2] == [] and "<shmem" not in bare


def test_xml_json(tmp_path: pathlib.Path) -> None:
    doc = json.loads(run("xml", *KERNEL, "--uuid", "8d2c7b9a-3e4f-4a1b-8c5d-6e7f8091a2b3", "--json",
                         "-d", "compress:caps=deflate,size=2M").stdout)
    assert doc["uuid"] == "8d2c7b9a-3e4f-4a1b-8c5d-6e7f8091a2b3" and doc["output"] is None
    assert doc["devices"] == [{"name": "synth-8d2c7b9a3e4f-0", "class": "compress", "size": 2 << 20, "queues": 1,
                               "ring_entries": 256, "capabilities": ["deflate"], "kpis": {}, "options": {},
                               "status": "added"}]
    assert metadata.parse_devices(doc["xml"])[2][0]["name"] == "synth-8d2c7b9a3e4f-0"
    virt_xml_validate(doc["xml"], tmp_path)


def test_errors_are_one_clear_line_each(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<domain type='qemu'>\n  <name>x</nam>\n</domain>\n")
    r = run("xml", str(bad), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"virt-synth xml: error: {bad}:2: not well-formed XML: Opening and ending tag")
    r = run("xml", *KERNEL, "-d", "crypto:size=3M", check=False)
    assert r.returncode == 1 and "power of two" in r.stderr and "Traceback" not in r.stderr
    r = run("xml", "--template", "vnf-kernel", check=False)
    assert r.returncode == 1 and "needs --kernel PATH and --initrd PATH" in r.stderr
    r = run("xml", str(bad), "--kernel", "/k", check=False)
    assert r.returncode == 1 and "--kernel is a template value" in r.stderr
    r = run("xml", check=False)
    assert r.returncode == 1 and "templates: vnf-disk, vnf-kernel" in r.stderr
    r = run("define", str(tmp_path / "missing.xml"), check=False)
    assert r.returncode == 1 and "missing.xml does not exist" in r.stderr
    r = run("undefine", "nope", check=False)
    assert r.returncode == 1 and "no domain 'nope' on test:///default" in r.stderr


def test_define_on_the_test_driver(tmp_path: pathlib.Path) -> None:
    r = run("define", *KERNEL, "--name", "cli-def", "-d", "crypto", "--start", "--json")
    doc = json.loads(r.stdout)
    assert doc["defined"]["name"] == "cli-def" and doc["defined"]["active"] is True
    assert doc["defined"]["devices"] == [d["name"] for d in doc["devices"]]
    assert "test driver" in doc["notes"][0]
    text = run("define", *KERNEL, "-d", "crypto", "--dry-run").stdout
    assert text.startswith("<!-- libvirt-synth template vnf-kernel") and "<shmem name=\"synth-" in text
    virt_xml_validate(text, tmp_path)


def test_define_domain_redefines_a_defined_domain() -> None:
    """test:///default comes with a running domain named "test": give it a device."""
    r = run("define", "--domain", "test", "-d", "compress:caps=deflate")
    assert r.stdout.startswith("defined domain test (6695eb01-f6a4-8304-79aa-97f2502e193f) on test:///default")
    assert "added    synth-6695eb01f6a4-0" in r.stdout and "next start" in r.stdout
    r = run("undefine", "test", "--json", check=False)
    assert r.returncode == 1 and "is running" in r.stderr
    assert json.loads(run("undefine", "test", "--force", "--json").stdout)["destroyed"] is True


def doc_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "libvirt.md").read_text()
    return re.findall(r"^```(sh|python)\n(.*?)^```", text, flags=re.M | re.S)


def run_doc_blocks(cwd: pathlib.Path) -> None:
    """Every sh and python block of docs/libvirt.md, in order, in cwd; each must succeed and print
    what its "# output" comments show."""
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(ROOT))
    blocks = doc_blocks()
    assert len(blocks) >= 6
    for lang, code in blocks:
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "sh" else [sys.executable, "-c", code]
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"docs/libvirt.md example failed:\n{code}\n{r.stdout}{r.stderr}"
        # A "# output" comment right after the commands shows what they print.
        shown = [ln[2:] for ln in code.splitlines() if ln.startswith("# ")]
        for line in shown:
            assert line in r.stdout, f"docs/libvirt.md promises {line!r}; got:\n{r.stdout}"


def test_docs_examples_run(tmp_path: pathlib.Path) -> None:
    run_doc_blocks(tmp_path)
    for name in ("ipsec-gw-1.xml", "ipsec-gw-2.xml", "with-spec.xml", "pgw-1.xml", "dry-run.xml"):
        virt_xml_validate((tmp_path / name).read_text(), tmp_path)
