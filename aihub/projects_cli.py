"""`aihub projects …`: projects' own limits (over all their keys together) in the tenancy database.

``aihub projects limits P`` shows them; with options it changes the ones given and keeps the others
(0 removes a limit, ``--clear`` removes all). Gateways see a change within ``tenancy.limits.
project_cache_s`` (1 s by default).
"""

from __future__ import annotations

import json
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aihub.cli_errors import clean_errors
from core.tenancy import Limits

if TYPE_CHECKING:
    from tenancy.projects import ProjectInfo, ProjectLimitStore

projects_app = typer.Typer(help="Projects and their limits (the tenancy database).", no_args_is_help=True)
out = Console()

ConfigOption = Annotated[Path | None, typer.Option(help="aihub YAML config (app.home, tenancy).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Limit = Annotated[int | None, typer.Option(min=0, help="0 removes this limit.")]


class Period(StrEnum):
    day = "day"
    month = "month"


def _open_store(config: Path | None) -> ProjectLimitStore:
    from ray_cluster.config import load_config
    from tenancy.build import open_database
    from tenancy.projects import ProjectLimitStore

    settings = load_config(config)
    return ProjectLimitStore(open_database(settings.tenancy, settings.app.home))


def limits_text(limits: Limits) -> str:
    parts = [
        f"rpm {limits.rpm}" if limits.rpm else "",
        f"tpm {limits.tpm}" if limits.tpm else "",
        f"concurrency {limits.max_concurrency}" if limits.max_concurrency else "",
        f"{limits.token_budget} tokens/{limits.budget_period}" if limits.token_budget else "",
    ]
    return ", ".join(part for part in parts if part) or "-"


def _limits_dict(limits: Limits) -> dict[str, Any]:
    return {
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "max_concurrency": limits.max_concurrency,
        "token_budget": limits.token_budget,
        "budget_period": limits.budget_period,
    }


def _as_dict(info: ProjectInfo) -> dict[str, Any]:
    return {
        "project": info.name,
        **_limits_dict(info.limits),
        "keys": info.keys,
        "active_keys": info.active_keys,
    }


@projects_app.command("ls")
@clean_errors
def list_projects(config: ConfigOption = None, as_json: JsonOpt = False) -> None:
    """Every project with limits or keys: its limits and how many keys it has."""
    store = _open_store(config)
    try:
        projects = store.list()
    finally:
        store.database.close()
    if as_json:
        typer.echo(json.dumps([_as_dict(info) for info in projects], indent=2))
        return
    table = Table(title=f"{len(projects)} project(s)")
    for column in ("project", "limits", "keys", "active"):
        table.add_column(column, overflow="fold")
    for info in projects:
        table.add_row(info.name, limits_text(info.limits), str(info.keys), str(info.active_keys))
    out.print(table)


@projects_app.command("limits")
@clean_errors
def set_limits(
    project: str,
    rpm: Limit = None,
    tpm: Limit = None,
    max_concurrency: Limit = None,
    token_budget: Annotated[
        int | None, typer.Option(min=0, help="Tokens per --per period; 0 removes it.")
    ] = None,
    per: Annotated[Period | None, typer.Option(help="The token budget's period (day or month).")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every limit of the project first.")] = False,
    config: ConfigOption = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a project's limits, or change those given (the others stay)."""
    given = {"rpm": rpm, "tpm": tpm, "max_concurrency": max_concurrency, "token_budget": token_budget}
    changes: dict[str, Any] = {name: value or None for name, value in given.items() if value is not None}
    if per is not None:
        changes["budget_period"] = per.value
    store = _open_store(config)
    try:
        limits = Limits() if clear else store.get(project)
        if changes or clear:
            limits = store.set(project, replace(limits, **changes))
    finally:
        store.database.close()
    if as_json:
        typer.echo(json.dumps({"project": project, **_limits_dict(limits)}, indent=2))
    else:
        typer.echo(f"{project}: {limits_text(limits)}")
