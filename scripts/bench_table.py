"""Turns criterion's results (target/criterion) into BENCHMARKS.md."""
import json
import os
import pathlib
import platform
import subprocess

root = pathlib.Path("target/criterion")
rows = {}
for est in sorted(root.glob("**/new/estimates.json")):
    rel = est.parent.parent.relative_to(root).parts
    median = json.loads(est.read_text())["median"]["point_estimate"]  # ns
    if len(rel) == 3:
        group, bench, strategy = rel
    else:
        group, bench, strategy = rel[0], rel[1], ""
    rows.setdefault((group, bench), {})[strategy] = median


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
# The commit measured: HEAD, unless the table is regenerated later (for a
# new lever row) from results measured at another commit.
rev = os.environ.get("BENCH_REV") or subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

print("# Benchmarks\n")
print("![Per-call cost by strategy](BENCHMARKS.svg)\n")
print("Made by `bash scripts/bench.sh` (criterion, all strategies in one run; medians).")
print(f"Commit {rev}, {cpu}, {platform.machine()}. Shared, noisy machine: compare ratios within a run.\n")
STRATEGIES = ("dynamic", "stubs", "sandbox", "process")
print("| group | benchmark | dynamic | stubs | sandbox | process | stubs / dynamic | sandbox / dynamic | process / dynamic |")
print("|---|---|---|---|---|---|---|---|---|")
for (group, bench), by in sorted(rows.items()):
    if any(k in by for k in STRATEGIES):
        d, t, s, p = (by.get(k) for k in STRATEGIES)
        ratio = lambda x: f"{x / d:.2f}×" if d and x else ""
        cells = " | ".join(fmt(v) if v else "" for v in (d, t, s, p))
        print(f"| {group} | {bench} | {cells} | {ratio(t)} | {ratio(s)} | {ratio(p)} |")
others = [(g, b, k, v) for (g, b), by in sorted(rows.items()) for k, v in sorted(by.items())
          if k not in STRATEGIES + ("",)]
if others:
    print("\n| reference points and threads | median |")
    print("|---|---|")
    for g, b, k, v in others:
        print(f"| {g}/{b}/{k} | {fmt(v)} |")
print("\n| lifecycle cost (sandbox, process) | median |")
print("|---|---|")
for (group, bench), by in sorted(rows.items()):
    if "" in by:
        print(f"| {group}/{bench} | {fmt(by['']) } |")
idle = root / "idle_rss.json"
if idle.exists():
    data = json.loads(idle.read_text())
    print(f"\n| memory | value |\n|---|---|\n| resident memory per idle expat sandbox ({data['sandboxes']} alive) | {data['bytes_per_sandbox'] / 1024:.1f} KiB |")
cpu = root / "expat_tree_cpu.json"
if cpu.exists():
    data = json.loads(cpu.read_text())
    print("\n| `expat_tree` 15MB, whole process, 7 runs | wall (median) | CPU, user + system (median) | CPU / wall |")
    print("|---|---|---|---|")
    for name, v in data.items():
        print(f"| {name} | {v['wall_ms']:.0f} ms | {v['cpu_ms']:.0f} ms | {v['cpu_ms'] / v['wall_ms']:.2f} |")
levers = pathlib.Path("scripts/bench_levers.md")
if levers.exists():
    print()
    print(levers.read_text(), end="")


def chart(path):
    """Per-call cost by strategy as an SVG bar chart (log scale), beside
    BENCHMARKS.md: one group of bars per `call/*` benchmark."""
    import math

    colours = {"dynamic": "#4477aa", "stubs": "#66ccee", "sandbox": "#ee6677", "process": "#aa3377",
               "native_fn_pointer": "#228833", "wasmtime_typed_func": "#ccbb44"}
    groups = []
    for (group, bench), by in sorted(rows.items()):
        if group == "call":
            groups.append((bench, [(k, by[k]) for k in STRATEGIES if k in by]))
    anchors = rows.get(("anchor", "int_add"), {})
    for g in groups:
        if g[0] == "int_add":
            g[1].extend(sorted(anchors.items()))
    if not groups:
        return
    lo = min(v for _, bars in groups for _, v in bars)
    hi = max(v for _, bars in groups for _, v in bars)
    lo_e, hi_e = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    left, width, bar, gap = 190, 560, 16, 14
    height = 40 + sum(len(b) * bar + gap for _, b in groups) + 40
    x = lambda v: left + width * (math.log10(v) - lo_e) / (hi_e - lo_e)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14">Per-call cost by strategy (median, log scale) — commit {rev}</text>']
    for e in range(lo_e, hi_e + 1):
        xe = x(10 ** e)
        out.append(f'<line x1="{xe:.1f}" y1="30" x2="{xe:.1f}" y2="{height - 30}" stroke="#ddd"/>')
        out.append(f'<text x="{xe:.1f}" y="{height - 14}" text-anchor="middle">{fmt(10 ** e)}</text>')
    y = 40
    for bench, bars in groups:
        out.append(f'<text x="{left - 8}" y="{y + len(bars) * bar / 2 + 4:.0f}" text-anchor="end">{bench}</text>')
        for k, v in bars:
            out.append(f'<rect x="{left}" y="{y}" width="{max(x(v) - left, 1):.1f}" height="{bar - 2}" '
                       f'fill="{colours.get(k, "#999")}"/>')
            out.append(f'<text x="{x(v) + 4:.1f}" y="{y + bar - 5}">{k} {fmt(v)}</text>')
            y += bar
        y += gap
    out.append("</svg>")
    pathlib.Path(path).write_text("\n".join(out) + "\n")


chart("BENCHMARKS.svg")
