"""core.vector_stores.VectorStoreService: the stores' records, checks, and the ingestion worker."""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import TypeVar

from core.errors import ArtifactNotFoundError, InvalidRequestError, NotFoundError
from core.vector_stores import (
    STORE_NAMESPACE,
    FileBatchRecord,
    FileStatus,
    NewFile,
    Order,
    VectorStoreFileRecord,
    VectorStoreRecord,
    store_tag,
)
from hub.store import LocalStore
from retrievers.ingest_worker import IngestWorker
from retrievers.uploaded_files import UploadedFiles, new_id
from retrievers.vector_store_records import VectorStoreRecords

logger = logging.getLogger(__name__)
T = TypeVar("T")


class VectorStoreNotFoundError(NotFoundError):
    default_code = "vector_store_not_found"


def page(items: list[T], ids: list[str], limit: int, after: str | None) -> tuple[list[T], bool]:
    if after is not None:
        if after not in ids:
            raise InvalidRequestError(f"'after' names no object of this list: {after!r}", param="after")
        start = ids.index(after) + 1
        items = items[start:]
    return items[:limit], len(items) > limit


class HubVectorStores:
    def __init__(
        self, records: VectorStoreRecords, files: UploadedFiles, store: LocalStore, worker: IngestWorker
    ) -> None:
        self.records = records
        self.files = files
        self.store = store
        self.worker = worker

    def _store(self, project: str, store_id: str) -> VectorStoreRecord:
        record = self.records.store(store_id, project)
        if record is None:
            raise VectorStoreNotFoundError(
                f"No vector store found with id '{store_id}'.", param="vector_store_id"
            )
        return record

    def _sizes(self, project: str, files: Sequence[NewFile]) -> dict[str, int]:
        """Every file must be the project's (else 404 ``file_not_found``, before anything is queued)."""
        return {f.file_id: self.files.get(project, f.file_id).bytes for f in files}

    def create(
        self, project: str, name: str, files: Sequence[NewFile], metadata: Mapping[str, str]
    ) -> VectorStoreRecord:
        sizes = self._sizes(project, files)
        store_id = new_id("vs_")
        self.records.insert_store(store_id, project, name, metadata)
        if files:
            self.records.upsert_files(store_id, files, sizes, None)
            self.worker.wake()
        return self._store(project, store_id)

    def get(self, project: str, store_id: str) -> VectorStoreRecord:
        return self._store(project, store_id)

    def list(
        self, project: str, *, limit: int, order: Order, after: str | None
    ) -> tuple[builtins.list[VectorStoreRecord], bool]:
        stores = self.records.stores(project, descending=order == "desc")
        return page(stores, [s.id for s in stores], limit, after)

    def modify(
        self, project: str, store_id: str, *, name: str | None, metadata: Mapping[str, str] | None
    ) -> VectorStoreRecord:
        self._store(project, store_id)
        self.records.update_store(store_id, name, metadata)
        return self._store(project, store_id)

    def delete(self, project: str, store_id: str) -> None:
        self._store(project, store_id)
        self.records.delete_store(store_id)
        # The tag only: the blobs stay for whatever else references them (hub gc decides).
        with contextlib.suppress(ArtifactNotFoundError):
            self.store.untag(store_tag(store_id))

    def add_files(
        self, project: str, store_id: str, files: Sequence[NewFile], *, batch: bool
    ) -> tuple[builtins.list[VectorStoreFileRecord], FileBatchRecord | None]:
        self._store(project, store_id)
        if not files:
            raise InvalidRequestError("at least one file is needed", param="file_ids")
        unique = list({f.file_id: f for f in files}.values())
        sizes = self._sizes(project, unique)
        batch_id = new_id("vsfb_") if batch else None
        self.records.upsert_files(store_id, unique, sizes, batch_id)
        self.worker.wake()
        added = [r for f in unique if (r := self.records.file(store_id, f.file_id)) is not None]
        batch_record = self.records.batch(store_id, batch_id) if batch_id is not None else None
        return added, batch_record

    def list_files(
        self,
        project: str,
        store_id: str,
        *,
        limit: int,
        order: Order,
        after: str | None,
        status: FileStatus | None = None,
        batch_id: str | None = None,
    ) -> tuple[builtins.list[VectorStoreFileRecord], bool]:
        self._store(project, store_id)
        if batch_id is not None:
            self.get_batch(project, store_id, batch_id)
        files = self.records.files(store_id, descending=order == "desc", status=status, batch_id=batch_id)
        return page(files, [f.id for f in files], limit, after)

    def get_file(self, project: str, store_id: str, file_id: str) -> VectorStoreFileRecord:
        self._store(project, store_id)
        record = self.records.file(store_id, file_id)
        if record is None:
            raise NotFoundError(
                f"No file found with id '{file_id}' in vector store '{store_id}'.",
                param="file_id",
                code="file_not_found",
            )
        return record

    def delete_file(self, project: str, store_id: str, file_id: str) -> None:
        self.get_file(project, store_id, file_id)
        self.records.mark_removing(store_id, file_id)
        self.worker.wake()

    def get_batch(self, project: str, store_id: str, batch_id: str) -> FileBatchRecord:
        self._store(project, store_id)
        record = self.records.batch(store_id, batch_id)
        if record is None:
            raise NotFoundError(
                f"No file batch found with id '{batch_id}' in vector store '{store_id}'.",
                param="batch_id",
                code="file_batch_not_found",
            )
        return record

    def cancel_batch(self, project: str, store_id: str, batch_id: str) -> FileBatchRecord:
        self.get_batch(project, store_id, batch_id)
        self.records.cancel_batch(store_id, batch_id)
        return self.get_batch(project, store_id, batch_id)

    def index_ref(self, store_id: str) -> str | None:
        record = self.records.store(store_id)
        if record is None:
            raise VectorStoreNotFoundError(
                f"No vector store found with id '{store_id}'.", param="vector_store_id"
            )
        if record.index_digest is None:
            return None
        return f"{STORE_NAMESPACE}/{store_id}@{record.index_digest}"

    def project_of(self, store_id: str) -> str | None:
        record = self.records.store(store_id)
        return record.project if record is not None else None

    def start(self) -> None:
        self.worker.start()

    def close(self) -> None:
        self.worker.close()
