"""Turns criterion's results (target/criterion) into BENCHMARKS.md."""
import json
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
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

print("# Benchmarks\n")
print("Made by `bash scripts/bench.sh` (criterion, all strategies in one run; medians).")
print(f"Commit {rev}, {cpu}, {platform.machine()}. Shared, noisy machine: compare ratios within a run.\n")
print("| group | benchmark | dynamic | sandbox | sandbox / dynamic |")
print("|---|---|---|---|---|")
for (group, bench), by in sorted(rows.items()):
    if "dynamic" in by or "sandbox" in by:
        d, s = by.get("dynamic"), by.get("sandbox")
        ratio = f"{s / d:.2f}×" if d and s else ""
        print(f"| {group} | {bench} | {fmt(d) if d else ''} | {fmt(s) if s else ''} | {ratio} |")
others = [(g, b, k, v) for (g, b), by in sorted(rows.items()) for k, v in sorted(by.items())
          if k not in ("dynamic", "sandbox", "")]
if others:
    print("\n| reference points and threads | median |")
    print("|---|---|")
    for g, b, k, v in others:
        print(f"| {g}/{b}/{k} | {fmt(v)} |")
print("\n| sandbox cost | median |")
print("|---|---|")
for (group, bench), by in sorted(rows.items()):
    if "" in by:
        print(f"| {group}/{bench} | {fmt(by['']) } |")
idle = root / "idle_rss.json"
if idle.exists():
    data = json.loads(idle.read_text())
    print(f"\n| memory | value |\n|---|---|\n| resident memory per idle expat sandbox ({data['sandboxes']} alive) | {data['bytes_per_sandbox'] / 1024:.1f} KiB |")
levers = pathlib.Path("scripts/bench_levers.md")
if levers.exists():
    print()
    print(levers.read_text(), end="")
