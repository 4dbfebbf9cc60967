#!/usr/bin/env python3
"""Draws KLD against effective bits for every method in `grinqh eval --json` files, one chart.

    scripts/pareto_svg.py OUT.svg RESULTS.json [NAME=MORE.json ...] [--title TEXT]

NAME= prefixes the series of that file (to tell apart two files of one method).

Standard library only: the SVG is written by hand. KLD is on a log scale.
"""
import json
import math
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
W, H, LEFT, RIGHT, TOP, BOTTOM = 720, 480, 80, 170, 40, 60


def main(argv):
    title = "KL divergence vs effective bits"
    if "--title" in argv:
        i = argv.index("--title")
        title = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) < 2:
        sys.exit(__doc__)
    out, inputs = argv[0], argv[1:]
    series = {}
    for arg in inputs:
        name, _, path = arg.rpartition("=")
        with open(path) as f:
            for r in json.load(f):
                if r["method"] == "bf16" or r["kld"] <= 0:
                    continue
                label = f'{name} {r["method"]}' if name else r["method"]
                series.setdefault(label, set()).add((r["effective_bits"], r["kld"]))
    points = [p for s in series.values() for p in s]
    if not points:
        sys.exit("no quantized results in the inputs")
    x_lo, x_hi = math.floor(min(p[0] for p in points)), math.ceil(max(p[0] for p in points))
    y_lo = math.floor(math.log10(min(p[1] for p in points)))
    y_hi = math.ceil(math.log10(max(p[1] for p in points)))
    if x_hi == x_lo:
        x_hi += 1
    if y_hi == y_lo:
        y_hi += 1

    def sx(x):
        return LEFT + (x - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT)

    def sy(kld):
        return TOP + (y_hi - math.log10(kld)) / (y_hi - y_lo) * (H - TOP - BOTTOM)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for x in range(x_lo, x_hi + 1):
        svg.append(f'<line x1="{sx(x)}" y1="{TOP}" x2="{sx(x)}" y2="{H - BOTTOM}" stroke="#ddd"/>')
        svg.append(f'<text x="{sx(x)}" y="{H - BOTTOM + 16}" text-anchor="middle">{x}</text>')
    for e in range(y_lo, y_hi + 1):
        y = sy(10 ** e)
        svg.append(f'<line x1="{LEFT}" y1="{y}" x2="{W - RIGHT}" y2="{y}" stroke="#ddd"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end">1e{e}</text>')
    svg.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 18}" text-anchor="middle">'
               'effective bits read per weight per decode step (scales included)</text>')
    svg.append(f'<text x="18" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 18 {(TOP + H - BOTTOM) / 2})">mean KL divergence to bf16 (log)</text>')
    for i, (method, pts) in enumerate(sorted(series.items())):
        color = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        path = " ".join(f"{sx(x):.1f},{sy(k):.1f}" for x, k in pts)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, k in pts:
            svg.append(f'<circle cx="{sx(x):.1f}" cy="{sy(k):.1f}" r="4" fill="{color}"/>')
        ly = TOP + 20 * i + 10
        svg.append(f'<line x1="{W - RIGHT + 15}" y1="{ly}" x2="{W - RIGHT + 40}" y2="{ly}" stroke="{color}" stroke-width="3"/>')
        svg.append(f'<text x="{W - RIGHT + 46}" y="{ly + 4}">{method}</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
