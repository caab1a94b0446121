"""The key store on SQLite and on a real PostgreSQL server: lifecycle, validation, and no stored secret."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import InvalidRequestError, InvalidSpecError
from core.tenancy import KeyInfo, KeyManager, Limits, Scopes
from tenancy.build import database_url, load_secret, open_database, secret_path
from tenancy.database import Database
from tenancy.keys import KeyStore, parse_token
from tenancy.secret import load_or_create_secret
from tenancy.settings import TenancySettings

SECRET = b"s" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'tenancy.db'}")
    else:
        db = Database(request.getfixturevalue("postgres").new_database())
    yield db
    db.close()


def test_lifecycle_create_list_get_revoke(database: Database) -> None:
    store = KeyStore(database, SECRET)
    assert isinstance(store, KeyManager)
    limits = Limits(rpm=60, tpm=10_000, max_concurrency=4, token_budget=1_000_000, budget_period="month")
    token, info = store.create(
        "climate",
        scopes=Scopes(models=("rag/p-*", "smollm2-*"), endpoints=("chat", "embeddings")),
        limits=limits,
        label="ci bot",
        expires_at=time.time() + 3600,
    )
    other_token, other = store.create("physics", admin=True)
    assert token.startswith(f"sk-aihub-{info.key_id}-") and parse_token(token) == info.key_id
    assert parse_token(other_token) == other.key_id and other.key_id != info.key_id
    assert info.status(time.time()) == "active"

    assert store.get(info.key_id) == info  # every field round-trips, limits and scopes included
    assert [k.key_id for k in store.list()] == [info.key_id, other.key_id]
    assert store.list("climate") == [info]
    assert store.list("nobody") == []
    assert store.get(other.key_id) == KeyInfo(
        key_id=other.key_id, project="physics", admin=True, created_at=other.created_at
    )

    revoked = store.revoke(info.key_id)
    assert revoked is not None and revoked.revoked_at is not None
    assert revoked.status(time.time()) == "revoked"
    again = store.revoke(info.key_id)
    assert again is not None and again.revoked_at == revoked.revoked_at  # the first time stays
    assert store.revoke("key_doesnotexist") is None
    assert store.get("key_doesnotexist") is None
    assert store.get(other.key_id) == other  # untouched

    # A second store on the same database (another gateway) sees the same keys.
    assert KeyStore(database, SECRET).get(info.key_id) == revoked


def test_the_stored_row_never_holds_the_secret(database: Database) -> None:
    store = KeyStore(database, SECRET)
    token, info = store.create("climate", label="scan me")
    secret_part = token.removeprefix(f"sk-aihub-{info.key_id}-")
    assert len(secret_part) >= 43
    rows = database.execute("SELECT * FROM api_keys")
    assert len(rows) == 1
    for value in rows[0]:
        text = str(value)
        assert token not in text and secret_part not in text and secret_part[:16] not in text
        assert SECRET.decode() not in text
    # What is stored is the keyed hash of the whole token, nothing reversible.
    stored = store.lookup(info.key_id)
    assert stored is not None and stored.digest == store.digest(token)
    assert KeyStore(database, b"t" * 32).digest(token) != store.digest(token)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"project": ""}, "project"),
        ({"project": "has space"}, "project"),
        ({"project": "x" * 65}, "project"),
        ({"scopes": Scopes(endpoints=("chat", "nope"))}, "endpoints"),
        ({"scopes": Scopes(models=())}, "models"),
        ({"scopes": Scopes(models=("a b",))}, "models"),
        ({"limits": Limits(rpm=0)}, "rpm"),
        ({"limits": Limits(token_budget=-5)}, "token_budget"),
        ({"limits": Limits(budget_period="week")}, "budget_period"),  # type: ignore[arg-type]
        ({"label": "line\nbreak"}, "label"),
        ({"expires_at": 1.0}, "expires_at"),
    ],
)
def test_invalid_keys_are_refused(tmp_path: Path, kwargs: dict, param: str) -> None:
    store = KeyStore(Database(f"sqlite:///{tmp_path / 't.db'}"), SECRET)
    arguments = {"project": "climate", **kwargs}
    with pytest.raises(InvalidRequestError) as caught:
        store.create(arguments.pop("project"), **arguments)
    assert caught.value.param == param
    assert store.list() == []
    store.database.close()


def test_parse_token_accepts_only_the_exact_format() -> None:
    good = "sk-aihub-key_abcdefgh2345-" + "A" * 43
    assert parse_token(good) == "key_abcdefgh2345"
    for bad in (
        good + "\n",
        good[:-1],
        " " + good,
        good.upper(),
        good + "A",
        "sk-aihub-key_ABCDEFGH2345-" + "A" * 43,
    ):
        assert parse_token(bad) is None


def test_secret_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "tenancy.secret"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["tenancy.secret"]  # no temporary file left


def test_concurrent_first_use_agrees_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "tenancy.secret"
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(load_or_create_secret(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 8


def test_an_operator_secret_is_used_and_a_short_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "own.secret"
    path.write_text("correct horse battery staple, long enough for hmac\n")
    os.chmod(path, 0o600)
    assert load_or_create_secret(path) == b"correct horse battery staple, long enough for hmac"
    path.write_text("short")
    with pytest.raises(InvalidSpecError) as caught:
        load_or_create_secret(path)
    assert "short" not in caught.value.message  # the path is named, never the content


def test_build_defaults_live_in_home(tmp_path: Path) -> None:
    settings = TenancySettings()
    assert database_url(settings, tmp_path) == f"sqlite:///{tmp_path / 'tenancy.db'}"
    assert secret_path(settings, tmp_path) == tmp_path / "tenancy.secret"
    database = open_database(settings, tmp_path)
    store = KeyStore(database, load_secret(settings, tmp_path))
    store.create("default")
    assert (tmp_path / "tenancy.db").exists() and (tmp_path / "tenancy.secret").exists()
    database.close()
    custom = TenancySettings(database_url="sqlite:////elsewhere/x.db", secret_file=tmp_path / "s")
    assert database_url(custom, tmp_path) == "sqlite:////elsewhere/x.db"
    assert secret_path(custom, tmp_path) == tmp_path / "s"
