"""`aihub usage report` on a SQLite ledger: table, csv and json, and the database `aihub serve` uses."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aihub.usage_cli import parse_moment, usage_app
from core.tenancy import UsageRecord
from tenancy.database import Database
from tenancy.ledger import UsageLedger
from tenancy.settings import LedgerSettings

DAY = datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp()
runner = CliRunner()
root = typer.Typer()  # as aihub.cli mounts it
root.add_typer(usage_app, name="usage")


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(root, ["usage", "report", *args], env={"COLUMNS": "160"})
    return result.exit_code, result.output


def fill(url: str, spill: Path) -> None:
    database = Database(url)
    ledger = UsageLedger(database, LedgerSettings(flush_interval_s=0.05), spill)
    for index, (project, model, prompt, completion) in enumerate(
        [("climate", "smollm2", 100, 40), ("climate", "smollm2", 20, 2), ("climate", "rag/docs:prod", 7, 3),
         ("physics", "smollm2", 999, 999)]
    ):  # fmt: skip
        ledger.record(
            UsageRecord(
                request_id=f"r{index}",
                started_at=DAY + index * 86_400,
                project=project,
                key_id=f"key_{project}",
                endpoint="chat",
                model=model,
                status=200,
                latency_s=0.1,
                prompt_tokens=prompt,
                completion_tokens=completion,
                streamed=True,
                interrupted=index == 1,
            )
        )
    assert ledger.flush(timeout_s=30)
    ledger.close()
    database.close()


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    fill(url, tmp_path / "spill.jsonl")
    return url


def report(*args: str) -> str:
    code, output = invoke(*args)
    assert code == 0, output
    return output


def test_csv(url: str) -> None:
    out = report("--database-url", url, "--project", "climate", "--by", "model", "--format", "csv")
    assert list(csv.reader(io.StringIO(out))) == [
        ["model", "requests", "prompt_tokens", "completion_tokens", "total_tokens", "streamed", "interrupted", "errors"],
        ["rag/docs:prod", "1", "7", "3", "10", "1", "0", "0"],
        ["smollm2", "2", "120", "42", "162", "2", "1", "0"],
    ]  # fmt: skip


def test_json_with_a_time_range(url: str) -> None:
    out = report(
        "--database-url", url, "--project", "climate", "--by", "day", "--format", "json",
        "--since", "2025-06-02", "--until", "2025-06-03T00:00:00+00:00",
    )  # fmt: skip
    payload = json.loads(out)
    assert payload["project"] == "climate" and payload["by"] == "day"
    assert payload["since"] == "2025-06-02T00:00:00+00:00"
    assert payload["rows"] == [
        {
            "day": "2025-06-02",
            "requests": 1,
            "prompt_tokens": 20,
            "completion_tokens": 2,
            "total_tokens": 22,
            "streamed": 1,
            "interrupted": 1,
            "errors": 0,
        }
    ]


def test_table_of_every_project(url: str) -> None:
    out = report("--database-url", url, "--by", "project")
    assert "Usage by project, all projects" in out
    lines = out.splitlines()
    assert any("climate" in line and "127" in line for line in lines)
    assert any("physics" in line and "999" in line for line in lines)
    assert any(line.strip("│ ").startswith("total") and "1,126" in line for line in lines)


def test_the_database_of_aihub_serve_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --database-url: SQLite under the app's home, as `aihub serve` opens it."""
    home = tmp_path / "home"
    fill(f"sqlite:///{home / 'tenancy.db'}", tmp_path / "spill.jsonl")
    monkeypatch.setenv("AIHUB_HOME", str(home))
    monkeypatch.delenv("AIHUB_TENANCY_DATABASE_URL", raising=False)
    out = report("--project", "physics", "--by", "key", "--format", "csv")
    assert out.splitlines()[1] == "key_physics,1,999,999,1998,1,0,0"


def test_bad_options_are_one_line_errors(url: str) -> None:
    code, output = invoke("--database-url", url, "--by", "week")
    assert code == 2 and "model, key, day, project" in output
    code, output = invoke("--database-url", url, "--format", "xml")
    assert code == 2 and "table, csv, json" in output
    code, output = invoke("--database-url", url, "--since", "last tuesday")
    assert code == 2 and "duration" in output


def test_parse_moment() -> None:
    now = datetime(2025, 6, 10, 12, tzinfo=UTC)
    assert parse_moment("7d", now=now) == datetime(2025, 6, 3, 12, tzinfo=UTC)
    assert parse_moment("90m", now=now) == datetime(2025, 6, 10, 10, 30, tzinfo=UTC)
    assert parse_moment("2025-06-01") == datetime(2025, 6, 1, tzinfo=UTC)
    with pytest.raises(typer.BadParameter):
        parse_moment("yesterday")


def test_the_config_files_tenancy_section(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    fill(url, tmp_path / "spill.jsonl")
    config = tmp_path / "aihub.yaml"
    config.write_text(f"app:\n  home: {tmp_path / 'home'}\ntenancy:\n  database_url: {url}\n")
    out = report("--config", str(config), "--by", "project", "--format", "csv")
    assert out.splitlines()[1:] == ["climate,3,127,45,172,3,1,0", "physics,1,999,999,1998,1,0,0"]
