# SPDX-License-Identifier: Apache-2.0
"""docs/openssl.md's host example runs as written, from the source tree, and shows the device did
the work: the provider's summary counts operations and no fallback."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

from tlsbed import SUMMARY

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_host_example_runs() -> None:
    text = (ROOT / "docs/openssl.md").read_text()
    section = text[text.index("## Trying it on a host"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, flags=re.M | re.S)
    assert len(blocks) == 1, "docs/openssl.md, Trying it on a host: one sh example"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSSL_", "LIBVIRT_SYNTH_OSSL_"))}
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", blocks[0]], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    found = SUMMARY.findall(r.stderr)
    assert found, r.stderr
    _, ops, fallbacks, _ = found[-1]
    assert int(ops) > 1000 and int(fallbacks) == 0, found[-1]
    assert "AES-256-GCM" in r.stdout
