"""`aihub bench ledger`: how many usage rows per second the ledger writes, SQLite and PostgreSQL.

One producer thread calls ``record()`` as fast as it can, as the gateway's requests would, and backs
off only while the queue is nearly full (so the figure is the writer's sustained rate, not the spill
file's). The clock stops when ``flush()`` returns, i.e. every row is committed; the rows are then
counted in the database, so a figure never counts a row that is not there. Bounded by ``rows`` and by
``max_seconds`` (the producer stops at the deadline; the figure covers the rows it recorded).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from core.tenancy import UsageRecord
from tenancy.database import Database
from tenancy.ledger import UsageLedger
from tenancy.settings import LedgerSettings
from tenancy.usage_schema import USAGE_SCHEMA

TARGET_ROWS_PER_S = 5_000  # DESIGN target on SQLite
MODELS = ("smollm2-135m-instruct", "rag/scifact:prod", "agent/helper:latest")


@dataclass(frozen=True)
class LedgerFigure:
    backend: str
    rows: int  # rows recorded and found in the database
    seconds: float  # first record() to flush() returned
    record_us: float  # mean cost of one record() call on the producer (the request path)
    overflowed: int
    spilled: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _record(index: int, now: float) -> UsageRecord:
    return UsageRecord(
        request_id=f"req-{index}",
        started_at=now,
        project=f"project-{index % 7}",
        key_id=f"key_{index % 50:04d}",
        endpoint="chat",
        model=MODELS[index % len(MODELS)],
        status=200 if index % 97 else 499,
        latency_s=0.25,
        prompt_tokens=120 + index % 40,
        completion_tokens=index % 300,
        composition="sha256:" + "ab" * 32 if index % 3 == 1 else None,
        streamed=index % 2 == 0,
        interrupted=index % 97 == 0,
    )


def measure(
    backend: str, url: str, spill_dir: Path, rows: int, settings: LedgerSettings, max_seconds: float
) -> LedgerFigure:
    database = Database(url)
    database.apply_schema(USAGE_SCHEMA)  # outside the figure; raises when the database is unreachable
    before = _count(database)
    ledger = UsageLedger(database, settings, spill_dir / f"{backend}-spill.jsonl")
    try:
        high_water = int(settings.queue_size * 0.9)
        recorded = 0
        record_s = 0.0
        start = time.perf_counter()
        deadline = start + max_seconds
        while recorded < rows and time.perf_counter() < deadline:
            if ledger.stats().queued >= high_water:
                time.sleep(0.001)  # back-pressure: measure the writer, not the overflow path
                continue
            wall = time.time()
            chunk = [_record(index, wall) for index in range(recorded, min(rows, recorded + 200))]
            t0 = time.perf_counter()
            for record in chunk:
                ledger.record(record)
            record_s += time.perf_counter() - t0
            recorded += len(chunk)
        if not ledger.flush(timeout_s=max(30.0, max_seconds)):
            raise RuntimeError(f"{backend}: flush timed out")
        seconds = time.perf_counter() - start
        stats = ledger.stats()
    finally:
        ledger.close()
    written = _count(database) - before
    database.close()
    # Overflowed rows go through the spill file and are replayed later: not counted in the figure.
    if written + stats.spilled < recorded:
        raise RuntimeError(f"{backend}: {recorded} rows recorded, {written} written, {stats.spilled} spilled")
    return LedgerFigure(
        backend=backend,
        rows=min(written, recorded),
        seconds=seconds,
        record_us=record_s / max(recorded, 1) * 1e6,
        overflowed=stats.overflowed,
        spilled=stats.spilled,
    )


def _count(database: Database) -> int:
    return int(database.execute("SELECT COUNT(*) FROM usage")[0][0])


def run_ledger_bench(
    postgres_urls: Sequence[str],
    rows: int,
    settings: LedgerSettings,
    max_seconds: float,
    console: Console,
) -> list[LedgerFigure]:
    figures: list[LedgerFigure] = []
    with tempfile.TemporaryDirectory(prefix="aihub-ledger-bench-") as tmp:
        work = Path(tmp)
        targets = [("sqlite", f"sqlite:///{work / 'usage.db'}")]
        targets += [("postgresql", url) for url in postgres_urls]
        for backend, url in targets:
            console.print(f"[bold]{backend}[/]: {rows:,} rows, batches of {settings.batch_size} …")
            figures.append(measure(backend, url, work, rows, settings, max_seconds))
    render(figures, settings, console)
    return figures


def render(figures: Sequence[LedgerFigure], settings: LedgerSettings, console: Console) -> None:
    table = Table(title=f"Usage ledger (batch {settings.batch_size}, queue {settings.queue_size})")
    target_column = f"≥ {TARGET_ROWS_PER_S:,}/s"
    for column in ("backend", "rows", "seconds", "rows/s", "record() µs", "overflowed", target_column):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for figure in figures:
        target = ""
        if figure.backend == "sqlite":
            met = figure.rows_per_s >= TARGET_ROWS_PER_S
            target = "[green]met[/]" if met else "[red]missed[/]"
        table.add_row(
            figure.backend,
            f"{figure.rows:,}",
            f"{figure.seconds:.2f}",
            f"{figure.rows_per_s:,.0f}",
            f"{figure.record_us:.1f}",
            f"{figure.overflowed:,}",
            target,
        )
    console.print(table)
