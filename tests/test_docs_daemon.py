# SPDX-License-Identifier: Apache-2.0
"""The examples of docs/daemon.md's operator sections run, as written, against a real virt-synthd
serving a domain gw1 (device gw1-c0, asking for a KPI), found through $LIBVIRT_SYNTH_SOCKET."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from daemonctl import running

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTIONS = ("Cleaning up after a VM that vanished", "Charts", "SLA: what each device achieves")


def blocks(section: str) -> list[str]:
    text = (ROOT / "docs" / "daemon.md").read_text()
    start = text.index(section)
    end = min((i for i in (text.find("\n## ", start + 1), text.find("\n### ", start + 1)) if i > 0), default=len(text))
    return re.findall(r"^```sh\n(.*?)^```", text[start:end], flags=re.M | re.S)


@pytest.mark.parametrize("section", SECTIONS)
def test_the_sections_examples_run(section: str, tmp_path: pathlib.Path) -> None:
    found = blocks(section)
    assert found, f"docs/daemon.md, {section}: no sh example"
    with running("synth-docs-") as d:
        env = dict(os.environ, LIBVIRT_SYNTH_SOCKET=d.socket,
                   PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        for code in found:
            d.call("domain.create", uuid="0c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", name="gw1",
                   devices=[{"name": "gw1-c0", "class": "crypto", "size": 1 << 20, "capabilities": ["aes-256-gcm"],
                             "kpis": {"ops_per_s": 1000}}])
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=120)
            assert r.returncode == 0, f"docs/daemon.md, {section}:\n{code}\n{r.stdout}{r.stderr}"
