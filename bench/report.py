"""Render docs/benchmarks.md from the benchmarks' JSON figures (the results protocol of
bench/_common.py): `make bench` runs every benchmark with BENCH_RESULTS_DIR set, then this.

    .venv/bin/python bench/report.py bench/results --output docs/benchmarks.md

The explanations live in the template, bench/benchmarks.md.j2; every figure comes from the JSON
files, each beside its target, with the command that produced it and the machine it ran on. A
benchmark without a JSON file (not run, or crashed) is reported as such.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).resolve().parent
BENCHES = [
    "customer_search",
    "console_list",
    "ingest",
    "current_usage",
    "period_close",
    "pdf_render",
    "load",
]
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def ms(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f} ms"


def num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{float(value):,.{digits}f}"


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("✓" if met else "✗ **missed**")


def ratio(a: float | None, b: float | None) -> str:
    return "—" if not a or not b else f"{a / b:.1f}×"


def load(directory: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in BENCHES:
        path = directory / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def machine(results: dict[str, Any]) -> dict[str, Any]:
    """The machine as the benchmarks saw it; PostgreSQL's version from any that reached it,
    and the range of load averages at their ends."""
    machines = [doc["machine"] for doc in results.values()]
    if not machines:
        return {}
    merged = dict(machines[0])
    merged["postgresql"] = next((m["postgresql"] for m in machines if m.get("postgresql")), None)
    loads = [m["load_average"] for m in machines if m.get("load_average") is not None]
    merged["load_range"] = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "—"
    return merged


def render(results: dict[str, Any]) -> str:
    environment = Environment(  # noqa: S701 - Markdown, not HTML
        loader=FileSystemLoader(HERE),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(ms=ms, num=num, verdict=verdict)
    environment.globals.update(ratio=ratio, backends=BACKENDS)
    template = environment.get_template("benchmarks.md.j2")
    return template.render(r=results, machine=machine(results), missing=[
        name for name in BENCHES if name not in results
    ])  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="directory of the benchmarks' JSON files")
    parser.add_argument("--output", type=Path, help="Markdown file (default: standard output)")
    args = parser.parse_args()
    results = load(args.results)
    if not results:
        print(f"no benchmark figures in {args.results}", file=sys.stderr)
        return 1
    text = render(results)
    if args.output:
        args.output.write_text(text)
        print(f"{args.output} rendered from {len(results)} benchmarks' figures")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
