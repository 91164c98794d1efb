# SPDX-License-Identifier: Apache-2.0
"""Charts (libvirt_synth/plot.py): SVG that parses, one bar per bucket with heights in proportion,
one line per series; `virt-synth stats DEVICE --plot` draws the device's service-time histogram
from the daemon's own counters; a name that is not .svg is refused before any work."""

from __future__ import annotations

import pathlib
import xml.etree.ElementTree as ET

import pytest

from libvirt_synth import errors, plot
from libvirt_synth.guest import Device

from daemonctl import running

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_are_in_proportion_and_lines_one_per_series() -> None:
    root = ET.fromstring(plot.bars("t", ["a", "b", "c"], [10, 40, 20], "x", "y"))
    heights = [float(r.get("height", "0")) for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(heights) == 3 and heights[1] == max(heights)
    assert abs(heights[0] / heights[1] - 0.25) < 0.01 and abs(heights[2] / heights[1] - 0.5) < 0.01
    root = ET.fromstring(plot.lines("t", {"one": [(64, 1.0), (1500, 5.0)], "two": [(64, 2.0), (16384, 9.0)]},
                                    "bytes", "Gb/s"))
    lines = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "series"]
    assert [p.findtext(f"{SVG}title") for p in lines] == ["one", "two"]
    with pytest.raises(errors.ValueError):
        plot.lines("t", {"bad": [(0, 1.0)]}, "x", "y")
    with pytest.raises(errors.ValueError, match="SVG"):
        plot.check_path("chart.png")


def test_stats_plot_is_the_devices_service_time_histogram(tmp_path: pathlib.Path) -> None:
    with running("synth-plot-") as d:
        d.call("domain.create", uuid="9b4c5d6e-7f8a-4b9c-8d0e-1f2a3b4c5d6e", name="vm",
               devices=[{"name": "plot-c0", "class": "crypto", "size": 1 << 20}])
        with Device.open(str(d.regions / "plot-c0")) as g:
            for _ in range(200):
                g.queue(0).nop()
        out = tmp_path / "lat.svg"
        d.cli("stats", "plot-c0", "--plot", str(out))
        hist = d.call("stats", name="plot-c0")["devices"]["plot-c0"]["latency_ns"]
        root = ET.fromstring(out.read_text())
        bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
        counts = [int(float(b.findtext(f"{SVG}title", "").rsplit(": ", 1)[1])) for b in bars]
        assert counts == [n for _, n in sorted(hist.items(), key=lambda kv: int(kv[0]))] and sum(counts) >= 200
        r = d.cli("stats", "--plot", str(tmp_path / "lat.png"), check=False)
        assert r.returncode == 1 and "SVG" in r.stderr
