# SPDX-License-Identifier: Apache-2.0
"""Charts as SVG, with the standard library alone: a bar chart (a latency histogram) and a line
chart on a log2 x axis (throughput per payload size). ``virt-synth stats --plot`` and
``bench/crypto --plot`` write them; any browser or image viewer shows them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from libvirt_synth import errors

W, H = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 80, 170, 40, 70
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def check_path(path: str) -> None:
    """Refuse, before any work, a file name that is not an SVG."""
    if not path.lower().endswith(".svg"):
        raise errors.ValueError(f"--plot {path}: charts are written as SVG; give a file name ending in .svg")


def _nice(top: float) -> float:
    """A round upper bound for an axis."""
    if top <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if top <= step * mag:
            return float(step * mag)
    return float(10 * mag)


def _frame(title: str, xlabel: str, ylabel: str, ymax: float) -> list[str]:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
           f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}" stroke="black"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="black"/>',
           f'<text x="{LEFT + pw / 2}" y="{H - 18}" text-anchor="middle">{escape(xlabel)}</text>',
           f'<text transform="translate(18,{TOP + ph / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>']
    for i in range(5):
        v = ymax * i / 4
        y = TOP + ph - ph * i / 4
        out.append(f'<line x1="{LEFT - 4}" y1="{y}" x2="{LEFT + pw}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4}" text-anchor="end">{v:g}</text>')
    return out


def bars(title: str, labels: Sequence[str], values: Sequence[float], xlabel: str, ylabel: str) -> str:
    """One bar per label, e.g. operations per service-time bucket."""
    if len(labels) != len(values):
        raise errors.ValueError("a bar chart needs one value per label")
    ymax = _nice(max(values, default=0))
    out = _frame(title, xlabel, ylabel, ymax)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(len(values), 1)
    slot = pw / n
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = ph * v / ymax
        x = LEFT + i * slot + slot * 0.1
        out.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + ph - h:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
                   f'fill="{COLOURS[0]}"><title>{escape(label)}: {v:g}</title></rect>')
        out.append(f'<text x="{x + slot * 0.4:.1f}" y="{TOP + ph + 14}" text-anchor="end" font-size="10" '
                   f'transform="rotate(-45 {x + slot * 0.4:.1f} {TOP + ph + 14})">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def lines(title: str, series: dict[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str) -> str:
    """One line per series over a log2 x axis (payload sizes), e.g. Gb/s per size."""
    points = [p for pts in series.values() for p in pts]
    if not points or any(x <= 0 for x, _ in points):
        raise errors.ValueError("a line chart needs points with x > 0")
    ymax = _nice(max(y for _, y in points))
    out = _frame(title, xlabel, ylabel, ymax)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    lo, hi = math.log2(min(x for x, _ in points)), math.log2(max(x for x, _ in points))
    span = hi - lo or 1.0

    def px(x: float) -> float:
        return LEFT + pw * (math.log2(x) - lo) / span

    for x in sorted({x for x, _ in points}):
        out.append(f'<text x="{px(x):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{x:g}</text>')
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{TOP + ph - ph * y / ymax:.1f}" for x, y in sorted(pts))
        out.append(f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                   f'<title>{escape(name)}</title></polyline>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{TOP + ph - ph * y / ymax:.1f}" r="3" fill="{colour}">'
                       f'<title>{escape(name)} {x:g}: {y:g}</title></circle>')
        ly = TOP + 16 * i + 8
        out.append(f'<line x1="{W - RIGHT + 12}" y1="{ly}" x2="{W - RIGHT + 32}" y2="{ly}" stroke="{colour}" '
                   'stroke-width="2"/>')
        out.append(f'<text x="{W - RIGHT + 36}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(path: str, svg: str) -> None:
    with open(path, "w") as f:
        f.write(svg)
