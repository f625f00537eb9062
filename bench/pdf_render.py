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

import weasyprint  # noqa: E402
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


def ours(_: int = 0) -> int:
    assert _document is not None
    return len(render_invoice_pdf(_document))


def bare(_: int = 0) -> int:
    return len(weasyprint.HTML(string=_html).write_pdf() or b"")


def html_only(_: int = 0) -> int:
    assert _document is not None
    return len(render_invoice_html(_document))


#: CPU milliseconds per render of each function run by `single`, over all its rounds
cpu_ms: dict[str, list[float]] = {}


def single(func: Callable[[int], int], count: int) -> float:
    """Renders per second of `func` run `count` times in this process (its CPU time noted too)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for index in range(count):
        func(index)
    cpu_ms.setdefault(func.__name__, []).append((time.process_time() - cpu_start) / count * 1000)
    return count / (time.perf_counter() - start)


def pooled(
    pool: ProcessPoolExecutor, func: Callable[[int], int], count: int, workers: int
) -> float:
    start = time.perf_counter()
    for _ in pool.map(func, range(count), chunksize=max(1, count // (workers * 4))):
        pass
    return count / (time.perf_counter() - start)


def alternate(measure: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median rate of each measurement over `rounds`, the measurements interleaved."""
    rates: dict[str, list[float]] = {name: [] for name in measure}
    for _ in range(rounds):
        for name, run in measure.items():
            rates[name].append(run())
    return {name: statistics.median(values) for name, values in rates.items()}


def report(title: str, rates: dict[str, float], cpu: dict[str, float] | None = None) -> None:
    print(f"\n{title}")
    for name, rate in rates.items():
        line = f"  {name:<34} {rate:8.1f} /s   {1000 / rate:7.1f} ms each"
        if cpu and name in cpu:
            line += f"   {cpu[name]:7.1f} ms CPU"
        print(line)
    if "render_invoice_pdf" in rates and "bare WeasyPrint" in rates:
        ratio = rates["bare WeasyPrint"] / rates["render_invoice_pdf"]
        print(f"  render_invoice_pdf time ÷ bare WeasyPrint time: {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="renders per round and kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--locale", default="en")
    args = parser.parse_args()

    _setup(args.locale, None)
    pdf = render_invoice_pdf(sample_invoice(locale=args.locale))
    print(
        f"WeasyPrint {weasyprint.__version__}, {os.cpu_count()} CPUs, locale {args.locale}, "
        f"{args.count} renders × {args.rounds} rounds; realistic invoice: {len(_html):,} B of "
        f"HTML → {len(pdf):,} B of PDF"
    )
    count, rounds = args.count, args.rounds

    rates = alternate(
        {
            "render_invoice_pdf": lambda: single(ours, count),
            "bare WeasyPrint": lambda: single(bare, count),
            "render_invoice_html (Jinja only)": lambda: single(html_only, count * 10),
        },
        rounds,
    )
    cpu = {
        "render_invoice_pdf": statistics.median(cpu_ms.pop("ours")),
        "bare WeasyPrint": statistics.median(cpu_ms.pop("bare")),
        "render_invoice_html (Jinja only)": statistics.median(cpu_ms.pop("html_only")),
    }
    report("single process, realistic invoice (1 page)", rates, cpu)

    with ProcessPoolExecutor(
        args.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_setup,
        initargs=(args.locale, None),
    ) as pool:
        pool_rates = alternate(
            {
                "render_invoice_pdf": lambda: pooled(pool, ours, count * 2, args.workers),
                "bare WeasyPrint": lambda: pooled(pool, bare, count * 2, args.workers),
            },
            rounds,
        )
    report(f"process pool of {args.workers}, realistic invoice (1 page)", pool_rates)

    _setup(args.locale, 40)
    long_rates = alternate(
        {
            "render_invoice_pdf": lambda: single(ours, max(1, count // 4)),
            "bare WeasyPrint": lambda: single(bare, max(1, count // 4)),
        },
        rounds,
    )
    long_cpu = {
        "render_invoice_pdf": statistics.median(cpu_ms.pop("ours")),
        "bare WeasyPrint": statistics.median(cpu_ms.pop("bare")),
    }
    report("single process, 40-line invoice (3 pages)", long_rates, long_cpu)

    best = pool_rates["render_invoice_pdf"]
    verdict = "meets" if best >= TARGET_PDFS_PER_SECOND else "MISSES"
    print(
        f"\nthroughput {best:.1f} PDFs/s on {args.workers} workers {verdict} the target of "
        f"{TARGET_PDFS_PER_SECOND:.0f} PDFs/s"
    )


if __name__ == "__main__":
    main()
