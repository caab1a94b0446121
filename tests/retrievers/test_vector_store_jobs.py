"""The vector stores' records and ingestion jobs on both gateway databases (SQLite, PostgreSQL), run
step by step (``IngestWorker.run_once``) with BM25 indices: leases, versions, removal, failures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ArtifactNotFoundError, NotFoundError
from core.vector_stores import ChunkingSpec, NewFile, store_tag
from hub.store import LocalStore
from retrievers.ingest_worker import IngestOptions, IngestWorker, words_of
from retrievers.uploaded_files import UploadedFiles
from retrievers.vector_store_records import VectorStoreRecords
from retrievers.vector_store_service import HubVectorStores
from tenancy.database import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    db = Database(url)
    yield db
    db.close()


def _service(database: Database, root: Path, lease_s: float = 30.0) -> tuple[HubVectorStores, LocalStore]:
    store = LocalStore(root / "hub")
    files = UploadedFiles(database, store.blobs, max_bytes=1 << 20)
    records = VectorStoreRecords(database)
    worker = IngestWorker(records, files, store, None, IngestOptions(lease_s=lease_s))
    return HubVectorStores(records, files, store, worker), store


def test_jobs_build_versions_remove_files_and_fail_unreadable_ones(
    database: Database, tmp_path: Path
) -> None:
    stores, hub = _service(database, tmp_path)
    files = stores.files
    a = files.create("p", "a.txt", "assistants", b"Rivers flow into the sea.")
    b = files.create("p", "b.md", "assistants", b"# Deserts\n\nDeserts get little rain.")
    bad = files.create("p", "bad.html", "assistants", b"<html><style>p{}</style></html>")
    store = stores.create("p", "docs", [NewFile(a.id), NewFile(b.id)], {"k": "v"})
    assert store.status == "in_progress" and store.file_counts.in_progress == 2
    assert stores.worker.run_once() is True and stores.worker.run_once() is False
    done = stores.get("p", store.id)
    assert done.status == "completed" and done.file_counts.completed == 2 and done.index_digest
    first = hub.resolve(store_tag(store.id))
    assert first.digest == done.index_digest and first.spec["backend"] == "bm25"
    assert stores.index_ref(store.id) == first.pinned_ref

    _, batch = stores.add_files("p", store.id, [NewFile(bad.id), NewFile(a.id)], batch=True)
    assert batch is not None and batch.status == "in_progress"
    stores.worker.run_once()
    settled = stores.get_batch("p", store.id, batch.id)
    assert settled.status == "completed" and settled.file_counts.failed == 1
    failed = stores.get_file("p", store.id, bad.id)
    assert failed.status == "failed" and failed.last_error is not None
    assert failed.last_error.code == "invalid_file"
    assert hub.resolve(store_tag(store.id)).spec["counts"]["documents"] == 2  # a.txt not doubled

    stores.delete_file("p", store.id, a.id)
    with pytest.raises(NotFoundError):  # gone from the store at once, from its index with the next job
        stores.get_file("p", store.id, a.id)
    stores.worker.run_once()
    assert hub.resolve(store_tag(store.id)).spec["counts"]["documents"] == 1
    stores.delete_file("p", store.id, b.id)
    stores.worker.run_once()
    assert stores.get("p", store.id).index_digest is None and stores.index_ref(store.id) is None
    with pytest.raises(ArtifactNotFoundError):  # an empty store has no index version
        hub.resolve(store_tag(store.id))
    assert hub.resolve(first.pinned_ref).digest == first.digest


def test_a_lease_keeps_a_second_worker_off_until_it_runs_out(database: Database, tmp_path: Path) -> None:
    stores, _ = _service(database, tmp_path, lease_s=0.5)
    other, _ = _service(database, tmp_path, lease_s=0.5)
    records = stores.records
    a = stores.files.create("p", "a.txt", "assistants", b"Mountains rise above the clouds.")
    store = stores.create("p", "leased", [NewFile(a.id)], {})
    assert records.claim(store.id, stores.worker.owner, 0.5)  # a worker that then stops
    assert other.worker.run_once() is False
    time.sleep(0.6)
    assert other.worker.run_once() is True
    assert stores.get("p", store.id).file_counts.completed == 1


def test_cancelling_a_batch_cancels_what_no_build_took(database: Database, tmp_path: Path) -> None:
    stores, _ = _service(database, tmp_path)
    a = stores.files.create("p", "a.txt", "assistants", b"Forests hold many trees.")
    store = stores.create("p", "cancel", [], {})
    _, batch = stores.add_files("p", store.id, [NewFile(a.id)], batch=True)
    assert batch is not None
    cancelled = stores.cancel_batch("p", store.id, batch.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.cancelled == 1
    assert stores.worker.run_once() is False  # nothing queued any more


def test_token_chunking_maps_to_words() -> None:
    assert words_of(ChunkingSpec()).size == 200
    static = words_of(ChunkingSpec(512, 128))
    assert (static.size, static.overlap) == (400, 100)
