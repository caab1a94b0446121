"""`aihub keys create|ls|show|revoke` through typer's runner, on the embedded SQLite database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aihub.keys_cli import keys_app
from tenancy.database import Database
from tenancy.keys import KeyStore, parse_token
from tenancy.secret import load_or_create_secret

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("AIHUB_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables wide enough to show whole ids
    for name in ("AIHUB_TENANCY_DATABASE_URL", "AIHUB_TENANCY_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    return home


def keys(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(keys_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_prints_the_secret_once_and_nothing_shows_it_again(home: Path) -> None:
    code, out, err = keys(
        "create",
        "--project",
        "climate",
        "--models",
        "rag/p-*,smollm2-*",
        "--endpoints",
        "chat,embeddings",
        "--rpm",
        "60",
        "--tpm",
        "10000",
        "--max-concurrency",
        "4",
        "--token-budget",
        "100000",
        "--per",
        "month",
        "--expires",
        "2999-01-01",
        "--label",
        "ci bot",
    )
    assert code == 0, err
    token = out.strip()
    key_id = parse_token(token)
    assert key_id is not None  # stdout is the token alone: KEY=$(aihub keys create …)
    assert (out + err).count(token) == 1
    assert "only time" in err and key_id in err

    secret = token.removeprefix(f"sk-aihub-{key_id}-")
    for args in (
        ("ls",),
        ("ls", "--json"),
        ("ls", "--project", "climate"),
        ("show", key_id),
        ("show", key_id, "--json"),
    ):
        code, out, err = keys(*args)
        assert code == 0, err
        assert key_id in out
        assert secret not in out + err and secret[:12] not in out + err

    code, out, _ = keys("show", key_id, "--json")
    shown = json.loads(out)
    assert shown["models"] == ["rag/p-*", "smollm2-*"] and shown["endpoints"] == ["chat", "embeddings"]
    assert (shown["rpm"], shown["tpm"], shown["max_concurrency"]) == (60, 10000, 4)
    assert (shown["token_budget"], shown["budget_period"]) == (100000, "month")
    assert shown["expires_at"] == "2999-01-01 00:00:00Z" and shown["status"] == "active"

    # The database the CLI wrote is the gateway's: <home>/tenancy.db hashed with <home>/tenancy.secret.
    store = KeyStore(
        Database(f"sqlite:///{home / 'tenancy.db'}"), load_or_create_secret(home / "tenancy.secret")
    )
    stored = store.lookup(key_id)
    assert stored is not None and stored.digest == store.digest(token)
    store.database.close()


def test_revoke_and_unknown_keys(home: Path) -> None:
    code, out, err = keys("create", "--project", "climate", "--admin", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["admin"] is True and parse_token(created["key"]) == created["id"]
    code, out, _ = keys("revoke", created["id"])
    assert code == 0 and f"revoked {created['id']}" in out
    code, out, _ = keys("show", created["id"], "--json")
    assert json.loads(out)["status"] == "revoked"
    code, out, _ = keys("ls", "--project", "other", "--json")
    assert code == 0 and json.loads(out) == []
    for args in (("show", "key_nope"), ("revoke", "key_nope")):
        code, _, err = keys(*args)
        assert code == 1 and "No such key" in err


def test_bad_input_is_a_clean_error(home: Path) -> None:
    code, _, err = keys("create", "--project", "bad name")
    assert code == 1 and "project name" in err
    code, _, err = keys("create", "--project", "p", "--endpoints", "chat,teleport")
    assert code == 1 and "teleport" in err
    code, _, err = keys("create", "--project", "p", "--expires", "next tuesday")
    assert code == 2 and "YYYY-MM-DD" in err
    code, _, err = keys("create", "--project", "p", "--expires", "2001-01-01")
    assert code == 1 and "future" in err
    code, _, _ = keys("create", "--project", "p", "--rpm", "0")
    assert code == 2
    assert keys("ls", "--json")[1].strip() == "[]"


def test_the_config_file_names_the_database_and_secret(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "aihub.yaml"
    db, secret = tmp_path / "elsewhere" / "keys.db", tmp_path / "elsewhere" / "keys.secret"
    config.write_text(f"tenancy:\n  database_url: sqlite:///{db}\n  secret_file: {secret}\n")
    code, out, err = keys("create", "--project", "p", "--config", str(config))
    assert code == 0, err
    assert db.exists() and secret.exists() and not (home / "tenancy.db").exists()
    code, out, _ = keys("ls", "--config", str(config), "--json")
    assert len(json.loads(out)) == 1


def test_the_aihub_command_mounts_keys() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aihub.cli", "keys", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for command in ("create", "ls", "show", "revoke"):
        assert command in result.stdout
