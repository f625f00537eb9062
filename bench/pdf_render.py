"""Invoice PDF benchmark: render_invoice_pdf() against a bare WeasyPrint render of the same HTML.

The document is the realistic invoice of docs/sample_invoice.py (the screenshot's: seller with an
SVG logo, customer with address and metadata, six fee lines with graduated tiers and a filtered
charge, a coupon, two taxes, prepaid credits; one A4 page). Three ways, in the same run:

- `render_invoice_pdf(doc)`: view model → Jinja (translations, Babel formatting) → WeasyPrint with
  the static-only URL fetcher — what the jobs process runs;
- bare WeasyPrint: `weasyprint.HTML(string=html).write_pdf()` of the identical HTML, rendered once
  beforehand — the floor our own code adds to;
- the HTML alone: `render_invoice_html(doc)`, to show where the difference goes.

Each is timed single-process (`--count` renders, rounds alternating so that a noisy neighbour
hurts both) and, for throughput, on a process pool of `--workers` (2 on the 2-core target
machine). Target: ≥ 10 PDFs/s on 2 cores. A 40-line invoice (3 pages) is timed too.

    .venv/bin/python bench/pdf_render.py
    .venv/bin/python bench/pdf_render.py --count 400 --workers 2 --locale fr
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))
sys.path.insert(0, str(ROOT / "bench"))

import weasyprint  # noqa: E402
from _common import add_json_option, save_results  # noqa: E402
from sample_invoice import sample_invoice  # noqa: E402

from billing.pdf import InvoiceDocument, render_invoice_html, render_invoice_pdf  # noqa: E402

TARGET_PDFS_PER_SECOND = 10.0

_document: InvoiceDocument | None = None
_html: str = ""


def _setup(locale: str, lines: int | None) -> None:
    """Per process: the document, its pre-rendered HTML, and one warm-up render of each kind."""
    global _document, _html
    _document = sample_invoice(locale=locale, lines=lines)
    _html = render_invoice_html(_document)
    render_invoice_pdf(_document)
    weasyprint.HTML(string=_html).write_pdf()


def ours(_: int = 0) -> float:
    """One render_invoice_pdf(); returns the CPU seconds it took in this process."""
    assert _document is not None
    cpu = time.process_time()
    render_invoice_pdf(_document)
    return time.process_time() - cpu


def bare(_: int = 0) -> float:
    cpu = time.process_time()
    weasyprint.HTML(string=_html).write_pdf()
    return time.process_time() - cpu


def html_only(_: int = 0) -> float:
    assert _document is not None
    cpu = time.process_time()
    render_invoice_html(_document)
    return time.process_time() - cpu


#: CPU milliseconds per render, per measurement name, one figure per round
cpu_ms: dict[str, list[float]] = {}


def single(name: str, func: Callable[[int], float], count: int) -> float:
    """Renders per second of `func` run `count` times in this process (its CPU time noted)."""
    start = time.perf_counter()
    cpu = sum(func(index) for index in range(count))
    elapsed = time.perf_counter() - start
    cpu_ms.setdefault(name, []).append(cpu / count * 1000)
    return count / elapsed


def pooled(
    name: str, pool: ProcessPoolExecutor, func: Callable[[int], float], count: int, workers: int
) -> float:
    """Renders per second of `func` run `count` times on the pool (the workers' CPU time noted)."""
    start = time.perf_counter()
    cpu = sum(pool.map(func, range(count), chunksize=max(1, count // (workers * 4))))
    elapsed = time.perf_counter() - start
    cpu_ms.setdefault(name, []).append(cpu / count * 1000)
    return count / elapsed


def alternate(measure: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median rate of each measurement over `rounds`, the measurements interleaved."""
    rates: dict[str, list[float]] = {name: [] for name in measure}
    for _ in range(rounds):
        for name, run in measure.items():
            rates[name].append(run())
    return {name: statistics.median(values) for name, values in rates.items()}


def report(title: str, rates: dict[str, float]) -> dict[str, dict[str, float]]:
    """Rates and CPU per render of one table's measurements (their CPU figures consumed)."""
    print(f"\n{title}")
    figures = {}
    for name, rate in rates.items():
        cpu = statistics.median(cpu_ms.pop(name))
        figures[name] = {"per_s": rate, "ms_each": 1000 / rate, "cpu_ms": cpu}
        print(f"  {name:<34} {rate:8.1f} /s   {1000 / rate:7.1f} ms each   {cpu:7.1f} ms CPU")
    if "render_invoice_pdf" in rates and "bare WeasyPrint" in rates:
        ratio = rates["bare WeasyPrint"] / rates["render_invoice_pdf"]
        print(f"  render_invoice_pdf time ÷ bare WeasyPrint time: {ratio:.3f}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="renders per round and kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--locale", default="en")
    add_json_option(parser)
    args = parser.parse_args()

    _setup(args.locale, None)
    html_bytes = len(_html.encode())
    pdf = render_invoice_pdf(sample_invoice(locale=args.locale))
    print(
        f"WeasyPrint {weasyprint.__version__}, {os.cpu_count()} CPUs, locale {args.locale}, "
        f"{args.count} renders × {args.rounds} rounds; realistic invoice: {len(_html):,} B of "
        f"HTML → {len(pdf):,} B of PDF"
    )
    count, rounds = args.count, args.rounds
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    rates = alternate(
        {
            "render_invoice_pdf": lambda: single("render_invoice_pdf", ours, count),
            "bare WeasyPrint": lambda: single("bare WeasyPrint", bare, count),
            "render_invoice_html (Jinja only)": lambda: single(
                "render_invoice_html (Jinja only)", html_only, count * 10
            ),
        },
        rounds,
    )
    single_figures = report("single process, realistic invoice (1 page)", rates)

    with ProcessPoolExecutor(
        args.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_setup,
        initargs=(args.locale, None),
    ) as pool:
        # start the workers (spawn, import, warm-up renders) before the clock runs
        list(pool.map(html_only, range(args.workers * 4)))
        pool_rates = alternate(
            {
                name: lambda name=name, func=func: pooled(name, pool, func, count * 2, args.workers)
                for name, func in (("render_invoice_pdf", ours), ("bare WeasyPrint", bare))
            },
            rounds,
        )
        pool_cpu = statistics.median(cpu_ms["render_invoice_pdf"])
    pool_figures = report(f"process pool of {args.workers}, realistic invoice (1 page)", pool_rates)

    _setup(args.locale, 40)
    long_count = max(1, count // 4)
    long_rates = alternate(
        {
            "render_invoice_pdf": lambda: single("render_invoice_pdf", ours, long_count),
            "bare WeasyPrint": lambda: single("bare WeasyPrint", bare, long_count),
        },
        rounds,
    )
    long_figures = report("single process, 40-line invoice (3 pages)", long_rates)

    measured = pool_rates["render_invoice_pdf"]
    capacity = args.workers * 1000 / pool_cpu
    verdict = "meets" if measured >= TARGET_PDFS_PER_SECOND else "MISSES"
    print(
        f"\nthroughput {measured:.1f} PDFs/s measured on {args.workers} workers {verdict} the "
        f"target of {TARGET_PDFS_PER_SECOND:.0f} PDFs/s; CPU-bound capacity of {args.workers} "
        f"otherwise idle cores: {capacity:.1f} PDFs/s ({pool_cpu:.1f} ms CPU per PDF)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    save_results("pdf_render", args, measured >= TARGET_PDFS_PER_SECOND, {
        "weasyprint": weasyprint.__version__, "count": count, "rounds": rounds,
        "workers": args.workers, "locale": args.locale, "html_bytes": html_bytes,
        "pdf_bytes": len(pdf), "single": single_figures, "pool": pool_figures,
        "long": long_figures, "target_per_s": TARGET_PDFS_PER_SECOND,
        "capacity_per_s": capacity,
    })  # fmt: skip


if __name__ == "__main__":
    main()
