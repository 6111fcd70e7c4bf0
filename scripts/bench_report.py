#!/usr/bin/env python3
"""Turn the benchmarks' JSON result files into BENCHMARKS.md and its charts.

    python3 scripts/bench_report.py RESULTS_DIR OUTPUT.md CHARTS_DIR

Every benchmark writes one JSON file in the format of benches/RESULTS.md; this script only
lays them out, the same way for all of them: the machine and versions, then per benchmark its
method, charts (SVG, drawn with matplotlib), tables and targets. It fails (exit 1) on a result
file that does not follow the format, so a benchmark cannot silently drop out of the report.
It never fails because a target was missed: missed targets are reported, not hidden.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here; SVG only
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

# The order benchmarks appear in; unknown ones follow in name order.
ORDER = ["native_client", "browser", "wasm_size", "server", "backplane"]


class FormatError(Exception):
    """A result file that does not follow benches/RESULTS.md."""


def load_results(results_dir: Path) -> list[dict]:
    files = sorted(results_dir.glob("*.json"))
    if not files:
        raise FormatError(f"no *.json result files in {results_dir}")
    results = []
    for path in files:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise FormatError(f"{path}: not JSON: {error}") from error
        check(data, path)
        results.append(data)
    rank = {name: i for i, name in enumerate(ORDER)}
    results.sort(key=lambda r: (rank.get(r["benchmark"], len(ORDER)), r["benchmark"]))
    return results


def check(data: dict, path: Path) -> None:
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise FormatError(f"{path}: {what}")

    need(isinstance(data, dict), "top level must be an object")
    for key in ("benchmark", "title", "method"):
        need(isinstance(data.get(key), str) and data[key], f"missing string '{key}'")
    for table in data.get("tables", []):
        need(isinstance(table.get("columns"), list), "table without 'columns'")
        for row in table.get("rows", []):
            need(len(row) == len(table["columns"]), f"row {row} does not match {table['columns']}")
    for chart in data.get("charts", []):
        need(isinstance(chart.get("file"), str), "chart without 'file'")
        cats = chart.get("categories", [])
        for name, values in chart.get("series", {}).items():
            need(len(values) == len(cats), f"chart {chart['file']}: series '{name}' length")
    for target in data.get("targets", []):
        for key in ("what", "target"):
            need(key in target, f"target without '{key}'")


def within_spread(target: dict) -> bool:
    """Whether a target's threshold lies inside the middle half of the per-round values behind
    its median: one round in four or more lands on each side of it, so this run cannot tell a
    miss from a meet."""
    spread = target.get("spread")
    match = re.match(r"\s*(<=|>=|<|>)\s*([0-9.]+)", str(target.get("target", "")))
    if not spread or None in spread or not match:
        return False
    threshold = float(match.group(2))
    low, high = spread
    return low <= threshold <= high


def fmt_spread(spread) -> str:
    if not spread or None in spread:
        return "—"
    return f"{fmt(spread[0])} – {fmt(spread[1])}"


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}".replace(",", " ")
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def draw_chart(chart: dict, charts_dir: Path) -> Path:
    categories = chart["categories"]
    series = chart["series"]
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [c + (i - (len(series) - 1) / 2) * width for c in range(len(categories))]
        ys = [v if v is not None else 0 for v in values]
        bars = ax.bar(xs, ys, width, label=name)
        for bar, value in zip(bars, values):
            if value is None:
                bar.set_hatch("//")
    if chart.get("reference") is not None:
        ax.axhline(chart["reference"], color="black", linewidth=0.8, linestyle="--")
    if chart.get("log_y"):
        ax.set_yscale("log")
    ax.set_xticks(range(len(categories)), categories)
    ax.set_ylabel(chart.get("y_label", ""))
    ax.set_title(chart.get("title", ""), fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = charts_dir / f"{chart['file']}.svg"
    # A fixed hash salt and no date keep the SVG identical for identical numbers.
    fig.savefig(out, format="svg", metadata={"Date": None})
    plt.close(fig)
    return out


def command_output(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem_gib}",
        f"- OS: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- {command_output('rustc', '--version')}",
        f"- node {command_output('node', '--version')}",
        f"- date: {command_output('date', '-u', '+%Y-%m-%d %H:%M UTC')}",
    ]


def render(results: list[dict], md_path: Path, charts_dir: Path) -> str:
    charts_dir.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(charts_dir, md_path.parent)
    lines = [
        "# unisock benchmarks",
        "",
        "Generated by `bash scripts/bench.sh` (do not edit by hand). Every table compares",
        "contenders measured in the same run on the same machine; absolute numbers drift a lot",
        "between runs on these shared 2-core machines, so read the ratios.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Targets",
        "",
        "Where a value is the median of per-round ratios, *middle half* gives the 25th to 75th",
        "percentile of those per-round ratios: how far one round wanders on this machine. A miss",
        "whose target lies inside that range is marked *within noise*: at least one round in four",
        "fell on each side of the target, so this run cannot tell it from a meet.",
        "",
        "| benchmark | what | value | middle half | target | met |",
        "|---|---|---|---|---|---|",
    ]
    missed = 0
    noisy = 0
    for result in results:
        for target in result.get("targets", []):
            met = target.get("met")
            missed += met is False
            mark = {True: "yes", False: "**no**", None: "n/a"}[met]
            if met is False and within_spread(target):
                noisy += 1
                mark = "**no** (within noise)"
            lines.append(
                f"| {result['benchmark']} | {fmt(target['what'])} | {fmt(target.get('value'))} "
                f"| {fmt_spread(target.get('spread'))} | {fmt(target['target'])} | {mark} |"
            )
    summary = "Every target met."
    if missed:
        summary = f"{missed} target(s) missed"
        summary += f", {noisy} of them within noise." if noisy else "."
    lines += ["", summary, ""]

    for result in results:
        lines += [f"## {result['title']}", "", result["method"], ""]
        versions = result.get("versions") or {}
        if versions:
            lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
            lines.append("")
        for chart in result.get("charts", []):
            svg = draw_chart(chart, charts_dir)
            lines += [f"![{chart.get('title', chart['file'])}]({rel}/{svg.name})", ""]
        for table in result.get("tables", []):
            lines += [f"### {table.get('title', '')}", ""]
            lines.append("| " + " | ".join(fmt(c) for c in table["columns"]) + " |")
            lines.append("|" + "---|" * len(table["columns"]))
            for row in table.get("rows", []):
                lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
            lines.append("")
            if table.get("note"):
                lines += [table["note"], ""]
        for note in result.get("notes", []):
            lines.append(f"- {note}")
        if result.get("notes"):
            lines.append("")
    text = "\n".join(lines).rstrip() + "\n"
    md_path.write_text(text)
    return text


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    results_dir, md_path, charts_dir = Path(argv[1]), Path(argv[2]), Path(argv[3])
    try:
        results = load_results(results_dir)
    except FormatError as error:
        print(f"bench_report: {error}", file=sys.stderr)
        return 1
    render(results, md_path, charts_dir)
    total = sum(len(r.get("targets", [])) for r in results)
    missed = sum(t.get("met") is False for r in results for t in r.get("targets", []))
    print(f"bench_report: {md_path} from {len(results)} result files; {total - missed}/{total} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
