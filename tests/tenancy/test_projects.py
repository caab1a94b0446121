"""Projects' limits: the store on SQLite and PostgreSQL (set, get, list, cache, validation) and
`aihub projects ls|limits` through typer's runner on the embedded SQLite database."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aihub.projects_cli import projects_app
from core.errors import InvalidRequestError
from core.tenancy import Limits
from tenancy.database import Database
from tenancy.keys import KeyStore
from tenancy.projects import ProjectInfo, ProjectLimitStore

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tenancy.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    db = Database(url)
    yield db
    db.close()


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_set_get_and_list_with_key_counts(database: Database) -> None:
    store = ProjectLimitStore(database)
    assert store.get("climate") == Limits()  # no row: no limits
    limits = Limits(rpm=60, tpm=10_000, max_concurrency=4, token_budget=1_000_000, budget_period="month")
    assert store.set("climate", limits) == limits
    assert ProjectLimitStore(database).get("climate") == limits
    store.set("climate", Limits(rpm=30))  # replaces every limit
    assert ProjectLimitStore(database).get("climate") == Limits(rpm=30)
    keys = KeyStore(database, b"s" * 32)
    keys.create("climate")
    _, revoked = keys.create("physics")
    keys.create("physics")
    keys.revoke(revoked.key_id)
    assert store.list() == [
        ProjectInfo("climate", Limits(rpm=30), keys=1, active_keys=1),
        ProjectInfo("physics", Limits(), keys=2, active_keys=1),
    ]


def test_the_cache_serves_without_the_database_until_it_is_stale(database: Database) -> None:
    ticks = Ticks()
    store = ProjectLimitStore(database, cache_s=1.0, monotonic=ticks)
    assert store.cached("bio") == (None, False)
    store.get("bio")
    assert store.cached("bio") == (Limits(), True)
    ProjectLimitStore(database).set("bio", Limits(tpm=5))  # another gateway's change
    assert store.cached("bio") == (Limits(), True)
    ticks.now += 1.5
    assert store.cached("bio") == (Limits(), False)  # stale: the limiter reads it again
    store.get("bio")
    assert store.cached("bio") == (Limits(tpm=5), True)


@pytest.mark.parametrize(
    ("project", "limits"),
    [
        ("", Limits()),
        ("has space", Limits()),
        ("ok", Limits(rpm=0)),
        ("ok", Limits(tpm=-1)),
        ("ok", Limits(token_budget=2**62)),
        ("ok", Limits(budget_period="week")),  # type: ignore[arg-type]
    ],
)
def test_invalid_names_and_limits_are_refused(tmp_path: Path, project: str, limits: Limits) -> None:
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    with pytest.raises(InvalidRequestError):
        ProjectLimitStore(database).set(project, limits)
    database.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("AIHUB_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("AIHUB_TENANCY_DATABASE_URL", "AIHUB_TENANCY_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    return home


def projects(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(projects_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_limits_are_shown_changed_one_by_one_removed_and_listed(home: Path) -> None:
    assert projects("limits", "climate") == (0, "climate: -\n", "")
    code, out, err = projects("limits", "climate", "--rpm", "60", "--token-budget", "5000", "--per", "month")
    assert code == 0, err
    assert out == "climate: rpm 60, 5000 tokens/month\n"
    code, out, _ = projects("limits", "climate", "--tpm", "900", "--rpm", "0", "--json")  # 0 removes rpm
    assert json.loads(out) == {
        "project": "climate",
        "rpm": None,
        "tpm": 900,
        "max_concurrency": None,
        "token_budget": 5000,
        "budget_period": "month",
    }
    assert projects("limits", "physics", "--max-concurrency", "3")[0] == 0
    code, out, _ = projects("ls", "--json")
    assert [(p["project"], p["tpm"], p["max_concurrency"], p["keys"]) for p in json.loads(out)] == [
        ("climate", 900, None, 0),
        ("physics", None, 3, 0),
    ]
    code, out, _ = projects("ls")
    assert code == 0 and "tpm 900, 5000 tokens/month" in out and "concurrency 3" in out
    assert projects("limits", "climate", "--clear")[1] == "climate: -\n"
    code, _, err = projects("limits", "bad name", "--rpm", "5")
    assert code == 1 and "project name" in err
    code, _, _ = projects("limits", "climate", "--rpm", "-1")
    assert code == 2  # typer refuses it before anything runs


def test_the_group_is_mounted_on_the_aihub_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aihub.cli", "projects", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ls" in result.stdout and "limits" in result.stdout
