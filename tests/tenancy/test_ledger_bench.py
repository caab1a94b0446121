"""`aihub bench ledger`, small: every recorded row is counted in the database before a figure is made."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from bench.ledger_bench import measure, run_ledger_bench
from tenancy.settings import LedgerSettings


def test_the_bench_counts_rows_in_the_database() -> None:
    out = io.StringIO()
    figures = run_ledger_bench([], 3000, LedgerSettings(batch_size=200), 30.0, Console(file=out, width=120))
    (sqlite,) = figures
    assert sqlite.backend == "sqlite" and sqlite.rows == 3000 and sqlite.rows_per_s > 0
    assert "rows/s" in out.getvalue() and "3,000" in out.getvalue()


def test_the_bench_on_postgresql(postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    figure = measure("postgresql", postgres.new_database(), tmp_path, 2000, LedgerSettings(), 30.0)
    assert figure.rows == 2000 and figure.overflowed == 0
