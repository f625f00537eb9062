"""Fault-injection tests, run by `make faults` only (pyproject's addopts ignore this directory).

They drive real processes (gunicorn, `flask … close-periods`, a PostgreSQL cluster of their
own) with the benchmarks' helpers, so bench/ is importable from here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
