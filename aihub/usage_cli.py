"""`aihub usage`: reports from the usage ledger, read from the database ``aihub serve`` writes to.

The CLI runs with the database's own rights (an operator's tool): ``--project`` narrows the report, and
leaving it out reports every project. Callers over HTTP only ever see their own project's usage.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from aihub.cli_errors import clean_errors

if TYPE_CHECKING:
    from tenancy.database import Database

usage_app = typer.Typer(
    help="Usage ledger reports (requests and tokens per model, key or day).", no_args_is_help=True
)

BY = ("model", "key", "day", "project")
FORMATS = ("table", "csv", "json")
COLUMNS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "streamed",
    "interrupted",
    "errors",
)
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """``2025-06-01``, ``2025-06-01T12:00`` (UTC unless an offset is given), or a duration back from
    now: ``30m``, ``12h``, ``7d``, ``2w``."""
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        amount, unit = match.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give an ISO date or time, or a duration like 7d, 12h") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _open_database(config: Path | None, database_url: str | None) -> Database:
    """The database ``aihub serve`` uses: ``--database-url``, else the config's ``tenancy`` section
    (or ``AIHUB_TENANCY_DATABASE_URL``), else SQLite under the app's home."""
    from ray_cluster.config import load_config
    from tenancy.build import open_database

    settings = load_config(config)
    tenancy = settings.tenancy
    if database_url is not None:
        tenancy = tenancy.model_copy(update={"database_url": database_url})
    return open_database(tenancy, settings.app.home)


@usage_app.command()
@clean_errors
def report(
    project: Annotated[str | None, typer.Option(help="Only this project (default: every project).")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this time: ISO date/time (UTC) or a duration back: 7d, 12h.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this time (excluded); same forms as --since.")
    ] = None,
    by: Annotated[str, typer.Option(help="Group by model, key, day (UTC) or project.")] = "model",
    output: Annotated[str, typer.Option("--format", help="table, csv or json (to stdout).")] = "table",
    config: Annotated[
        Path | None, typer.Option(help="aihub YAML config (its home holds the SQLite file).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="sqlite:///abs/path.db or postgresql://…; default: as `aihub serve`.")
    ] = None,
) -> None:
    """Requests and tokens per model, key, day or project."""
    from tenancy.usage_report import usage_report

    if by not in BY:
        raise typer.BadParameter(f"{by!r}: choose one of {', '.join(BY)}", param_hint="--by")
    if output not in FORMATS:
        raise typer.BadParameter(f"{output!r}: choose one of {', '.join(FORMATS)}", param_hint="--format")
    start = parse_moment(since) if since else None
    end = parse_moment(until) if until else None
    database = _open_database(config, database_url)
    try:
        rows = usage_report(database, project, since=start, until=end, by=by)  # type: ignore[arg-type]
    finally:
        database.close()
    records = [row.as_dict() for row in rows]
    if output == "json":
        meta = {
            "project": project,
            "since": start.isoformat() if start else None,
            "until": end.isoformat() if end else None,
            "by": by,
        }
        typer.echo(json.dumps({**meta, "rows": [{by: r.pop("group"), **r} for r in records]}, indent=2))
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow((by, *COLUMNS))
        for r in records:
            writer.writerow((r["group"], *(r[c] for c in COLUMNS)))
    else:
        scope = f"project {project}" if project else "all projects"
        table = Table(title=f"Usage by {by}, {scope}")
        table.add_column(by, overflow="fold")  # ids wrap, never cut short
        for column in COLUMNS:
            table.add_column(column.replace("_", " "), justify="right", no_wrap=True)
        for r in records:
            table.add_row(str(r["group"]), *(f"{r[c]:,}" for c in COLUMNS))
        if records:
            table.add_section()
            table.add_row("total", *(f"{sum(r[c] for r in records):,}" for c in COLUMNS))
        # Piped, rich would squeeze the table into 80 columns.
        Console(width=None if sys.stdout.isatty() else 160).print(table)
