"""Composition of ``/v1/files`` and vector stores made over the API: the gateway database (the tenancy
database when tenancy is on, else ``<home>/gateway.db``), the hub's blobs, and the ingestion worker
with the default embedder."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from core.embedder import Embedder
from core.errors import AihubError
from core.sql import SqlDatabase
from hub.store import LocalStore
from ray_cluster.config import AihubConfig
from retrievers.ingest_worker import IngestOptions, IngestWorker
from retrievers.uploaded_files import UploadedFiles
from retrievers.vector_store_records import VectorStoreRecords
from retrievers.vector_store_service import HubVectorStores

logger = logging.getLogger(__name__)


def gateway_database(settings: AihubConfig) -> SqlDatabase:
    """The gateway's own SQLite file, for a gateway without tenancy."""
    from tenancy.database import Database

    return Database(f"sqlite:///{(settings.app.home / 'gateway.db').expanduser().absolute()}")


def _embedder_ref(settings: AihubConfig, store: LocalStore, embedder_id: str | None) -> str | None:
    config = next((e for e in settings.app.embedders if e.id == embedder_id), None)
    if config is None or config.ref is None:
        return None
    try:
        return store.resolve(config.ref).pinned_ref
    except AihubError:
        return None


def build_file_services(
    settings: AihubConfig,
    store: LocalStore,
    embedders: Mapping[str, Embedder],
    default_embedder: str | None,
    database: SqlDatabase,
) -> tuple[UploadedFiles, HubVectorStores]:
    """Stores are indexed with the default embedder when it is a hub model (else BM25 only)."""
    files = UploadedFiles(database, store.blobs, settings.gateway.max_file_bytes)
    records = VectorStoreRecords(database)
    embedder_ref = _embedder_ref(settings, store, default_embedder)
    embedder = embedders.get(default_embedder) if default_embedder and embedder_ref else None
    retrievers = settings.retrievers
    options = IngestOptions(
        backend=retrievers.ingest_backend if embedder is not None else "bm25",
        embedder_ref=embedder_ref,
        lease_s=retrievers.ingest_lease_s,
        poll_s=retrievers.ingest_poll_s,
        files_per_build=retrievers.ingest_files_per_build,
        resume_dir=retrievers.work_dir / "ingest-batches",
    )
    worker = IngestWorker(records, files, store, embedder, options)
    logger.info("vector stores are indexed as %s (%s)", options.backend, embedder_ref or "no embedder")
    return files, HubVectorStores(records, files, store, worker)


def uploaded_blobs(settings: AihubConfig) -> set[str]:
    """The blob digests of every uploaded file in the gateway databases ``settings`` names (the tenancy
    database, ``<home>/gateway.db``): what ``aihub hub gc`` must keep."""
    from tenancy.build import database_url
    from tenancy.database import Database, DatabaseError

    own = settings.app.home / "gateway.db"
    tenancy_url = database_url(settings.tenancy, settings.app.home)
    urls = [f"sqlite:///{own.expanduser().absolute()}"] if own.exists() else []
    if settings.tenancy.database_url or (settings.app.home / "tenancy.db").exists():
        urls.append(tenancy_url)
    digests: set[str] = set()
    for url in urls:
        database = Database(url)
        try:
            tables = database.execute(_FILES_TABLE_QUERY[database.kind])
            if tables:
                digests.update(
                    str(row[0]) for row in database.execute("SELECT DISTINCT digest FROM aihub_files")
                )
        except DatabaseError:
            logger.warning("could not read uploaded files from %r", database)
            raise
        finally:
            database.close()
    return digests


_FILES_TABLE_QUERY = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'aihub_files'",
    "postgresql": "SELECT tablename FROM pg_tables WHERE tablename = 'aihub_files'",
}
