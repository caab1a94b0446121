"""`aihub keys …`: create, list, show and revoke projects' API keys in the tenancy database.

``create`` prints the new token once, alone on stdout (``KEY=$(aihub keys create --project p)``), and
its details on stderr; nothing prints it again: the database keeps only a keyed hash.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aihub.cli_errors import clean_errors
from core.errors import NotFoundError
from core.tenancy import KeyInfo, Limits, Scopes, parse_list

if TYPE_CHECKING:
    from tenancy.keys import KeyStore

keys_app = typer.Typer(help="Projects' API keys (the tenancy database).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option(help="aihub YAML config (app.home, tenancy).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Positive = Annotated[int | None, typer.Option(min=1)]


class Period(StrEnum):
    day = "day"
    month = "month"


def _open_store(config: Path | None) -> KeyStore:
    from ray_cluster.config import load_config
    from tenancy.build import load_secret, open_database
    from tenancy.keys import KeyStore

    settings = load_config(config)
    home = settings.app.home
    return KeyStore(open_database(settings.tenancy, home), load_secret(settings.tenancy, home))


def parse_expiry(text: str) -> float:
    """``YYYY-MM-DD`` (midnight UTC, the start of that day) or an ISO 8601 datetime (naive: UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: use YYYY-MM-DD or an ISO 8601 datetime", param_hint="--expires"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _limits_text(limits: Limits) -> str:
    parts = [f"rpm {limits.rpm}" if limits.rpm else "", f"tpm {limits.tpm}" if limits.tpm else ""]
    parts.append(f"concurrency {limits.max_concurrency}" if limits.max_concurrency else "")
    parts.append(f"{limits.token_budget} tokens/{limits.budget_period}" if limits.token_budget else "")
    return ", ".join(part for part in parts if part) or "-"


def _as_dict(info: KeyInfo, now: float) -> dict[str, Any]:
    limits = info.limits
    return {
        "id": info.key_id,
        "project": info.project,
        "label": info.label,
        "models": list(info.scopes.models),
        "endpoints": list(info.scopes.endpoints),
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "max_concurrency": limits.max_concurrency,
        "token_budget": limits.token_budget,
        "budget_period": limits.budget_period,
        "admin": info.admin,
        "created_at": _when(info.created_at),
        "expires_at": None if info.expires_at is None else _when(info.expires_at),
        "revoked_at": None if info.revoked_at is None else _when(info.revoked_at),
        "status": info.status(now),
    }


def _detail_table(info: KeyInfo, now: float) -> Table:
    table = Table(show_header=False, title=info.key_id)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in (
        ("project", info.project),
        ("label", info.label or "-"),
        ("models", ", ".join(info.scopes.models)),
        ("endpoints", ", ".join(info.scopes.endpoints)),
        ("limits", _limits_text(info.limits)),
        ("admin", "yes" if info.admin else "no"),
        ("created", _when(info.created_at)),
        ("expires", _when(info.expires_at)),
        ("revoked", _when(info.revoked_at)),
        ("status", info.status(now)),
    ):
        table.add_row(name, value)
    return table


@keys_app.command()
@clean_errors
def create(
    project: Annotated[str, typer.Option(help="The project the key belongs to.")],
    models: Annotated[str | None, typer.Option(help="Model id globs, e.g. 'rag/p-*,smollm2-*'.")] = None,
    endpoints: Annotated[str | None, typer.Option(help="Endpoint families, e.g. 'chat,embeddings'.")] = None,
    rpm: Positive = None,
    tpm: Positive = None,
    max_concurrency: Positive = None,
    token_budget: Annotated[int | None, typer.Option(min=1, help="Tokens per --per period.")] = None,
    per: Annotated[Period, typer.Option(help="The token budget's period.")] = Period.day,
    expires: Annotated[str | None, typer.Option(help="YYYY-MM-DD (midnight UTC) or ISO datetime.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May manage keys over HTTP.")] = False,
    label: Annotated[str, typer.Option(help="A note on what the key is for.")] = "",
    config: ConfigOption = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; its token is printed now and never again."""
    expires_at = parse_expiry(expires) if expires is not None else None
    store = _open_store(config)
    try:
        token, info = store.create(
            project,
            scopes=Scopes(models=parse_list(models), endpoints=parse_list(endpoints)),
            limits=Limits(
                rpm=rpm,
                tpm=tpm,
                max_concurrency=max_concurrency,
                token_budget=token_budget,
                budget_period=per.value,
            ),
            admin=admin,
            label=label,
            expires_at=expires_at,
        )
    finally:
        store.database.close()
    if as_json:
        typer.echo(json.dumps({**_as_dict(info, time.time()), "key": token}, indent=2))
    else:
        err.print(_detail_table(info, time.time()))
        typer.echo(token)
    err.print("[yellow]This is the only time the key is shown: store it now.[/]", highlight=False)


@keys_app.command("ls")
@clean_errors
def list_keys(
    project: Annotated[str | None, typer.Option(help="Only this project's keys.")] = None,
    config: ConfigOption = None,
    as_json: JsonOpt = False,
) -> None:
    """Every key (of a project): ids, scopes, limits and status; never a secret."""
    store = _open_store(config)
    try:
        keys = store.list(project)
    finally:
        store.database.close()
    now = time.time()
    if as_json:
        typer.echo(json.dumps([_as_dict(info, now) for info in keys], indent=2))
        return
    table = Table(title=f"{len(keys)} key(s)")
    for column in ("id", "project", "label", "models", "endpoints", "limits", "admin", "expires", "status"):
        table.add_column(column, no_wrap=column in ("id", "status"), overflow="fold")
    for info in keys:
        table.add_row(
            info.key_id,
            info.project,
            info.label,
            ",".join(info.scopes.models),
            ",".join(info.scopes.endpoints),
            _limits_text(info.limits),
            "yes" if info.admin else "",
            _when(info.expires_at),
            info.status(now),
        )
    out.print(table)


@keys_app.command()
@clean_errors
def show(key_id: str, config: ConfigOption = None, as_json: JsonOpt = False) -> None:
    """One key's project, scopes, limits and status; never its secret."""
    store = _open_store(config)
    try:
        info = store.get(key_id)
    finally:
        store.database.close()
    if info is None:
        raise NotFoundError("No such key.")
    if as_json:
        typer.echo(json.dumps(_as_dict(info, time.time()), indent=2))
    else:
        out.print(_detail_table(info, time.time()))


@keys_app.command()
@clean_errors
def revoke(key_id: str, config: ConfigOption = None) -> None:
    """Revoke a key: every gateway refuses it within a second (``tenancy.key_cache_s``)."""
    store = _open_store(config)
    try:
        info = store.revoke(key_id)
    finally:
        store.database.close()
    if info is None:
        raise NotFoundError("No such key.")
    typer.echo(f"revoked {info.key_id} (project {info.project}) at {_when(info.revoked_at)}")
