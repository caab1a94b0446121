"""Stored /v1/responses on SQLite and PostgreSQL: project scoping, replacement, the row cap, and the
tenancy-off file under the home."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import PayloadTooLargeError
from core.responses import ResponseStore, StoredResponse
from tenancy.database import Database
from tenancy.response_store import SqlResponseStore, open_response_store
from tenancy.services import build_tenancy
from tenancy.settings import TenancySettings


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tenancy.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    db = Database(url)
    yield db
    db.close()


def _row(response_id: str, project: str = "alpha", text: str = "hello") -> StoredResponse:
    return StoredResponse(
        id=response_id,
        project=project,
        created_at=1_700_000_000.0,
        response={"id": response_id, "object": "response", "output": [{"type": "message", "text": text}]},
        input_items=[{"id": "msg_1", "type": "message", "role": "user", "content": text}],
        history=[{"id": "msg_0", "type": "message", "role": "user", "content": "earlier"}],
    )


def test_rows_are_scoped_to_their_project(database: Database) -> None:
    store = SqlResponseStore(database)
    assert isinstance(store, ResponseStore)
    store.put(_row("resp_1"))
    got = store.get("alpha", "resp_1")
    assert got == _row("resp_1")
    assert store.get("beta", "resp_1") is None
    assert store.delete("beta", "resp_1") is False
    assert store.get("alpha", "resp_1") is not None
    assert store.delete("alpha", "resp_1") is True
    assert store.get("alpha", "resp_1") is None
    assert store.delete("alpha", "resp_1") is False


def test_a_row_over_the_cap_is_refused(database: Database) -> None:
    store = SqlResponseStore(database, max_row_bytes=2048)
    store.put(_row("resp_small", text="x" * 500))
    with pytest.raises(PayloadTooLargeError) as refused:
        store.put(_row("resp_big", text="x" * 2000))
    assert refused.value.code == "response_too_large" and "2048" in refused.value.message
    assert store.get("alpha", "resp_big") is None


def test_stores_share_the_database_and_reopen(tmp_path: Path) -> None:
    store = open_response_store(tmp_path / "home")
    store.put(_row("resp_kept"))
    assert (tmp_path / "home" / "gateway.db").is_file()
    assert open_response_store(tmp_path / "home").get("alpha", "resp_kept") == _row("resp_kept")
    settings = TenancySettings(enabled=True, response_row_max_bytes=4096)
    tenancy = build_tenancy(settings, tmp_path / "tenant-home")
    assert tenancy.responses is not None and tenancy.responses.max_row_bytes == 4096
    tenancy.responses.put(_row("resp_t"))
    again = build_tenancy(settings, tmp_path / "tenant-home").responses
    assert again is not None and again.get("alpha", "resp_t") == _row("resp_t")
