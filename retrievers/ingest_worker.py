"""The background ingestion of vector stores: one daemon thread per gateway process takes a store with
queued files (under a lease in the database, so several gateways never build one store at once),
builds a new index version from the current one and pushes it to the hub, then settles the files.

A gateway stopped mid-build leaves the rows queued and the hub tag where it was (a push moves the tag
only once every blob is stored), so the next start resumes the job once the lease has run out."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.embedder import Embedder
from core.errors import AihubError, ArtifactNotFoundError
from core.vector_stores import STORE_NAMESPACE, ChunkingSpec, FileError, store_tag
from hub.store import LocalStore
from retrievers.chunking import DEFAULT_CHUNK_WORDS, Chunking
from retrievers.documents import Document
from retrievers.embedding_checkpoint import BatchCheckpoint
from retrievers.index_builder import Backend, BuildOptions, PreviousVersion, build_index, load_previous
from retrievers.uploaded_documents import uploaded_document
from retrievers.uploaded_files import UploadedFiles
from retrievers.vector_store_queue import PendingFile
from retrievers.vector_store_records import VectorStoreRecords
from retrievers.vector_store_schema import REMOVING

logger = logging.getLogger(__name__)

# MiniLM's 256-token input is about 200 words; OpenAI's chunking is given in tokens.
WORDS_PER_TOKEN = DEFAULT_CHUNK_WORDS / 256


def words_of(spec: ChunkingSpec) -> Chunking:
    if spec.is_auto:
        return Chunking()
    assert spec.max_chunk_size_tokens is not None
    size = max(1, round(spec.max_chunk_size_tokens * WORDS_PER_TOKEN))
    overlap = min(size - 1, round((spec.chunk_overlap_tokens or 0) * WORDS_PER_TOKEN))
    return Chunking(size=size, overlap=overlap, split_passages=True)


@dataclass(frozen=True, slots=True)
class IngestOptions:
    backend: Backend = "hybrid"
    embedder_ref: str | None = None  # the embedder's pinned hub reference (dense backends)
    lease_s: float = 30.0
    poll_s: float = 1.0
    files_per_build: int = 2000
    # Finished embedding batches are kept here while a build runs, so a build interrupted by a restart
    # resumes from its last finished batch (retrievers.embedding_checkpoint); None: it starts over.
    resume_dir: Path | None = None


class IngestWorker:
    def __init__(
        self,
        records: VectorStoreRecords,
        files: UploadedFiles,
        store: LocalStore,
        embedder: Embedder | None,
        options: IngestOptions,
    ) -> None:
        self.records = records
        self.files = files
        self.store = store
        self.embedder = embedder
        self.options = (
            options
            if embedder is not None
            else IngestOptions(
                backend="bm25",
                lease_s=options.lease_s,
                poll_s=options.poll_s,
                files_per_build=options.files_per_build,
                resume_dir=options.resume_dir,
            )
        )
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the thread ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="aihub-ingest", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stops taking jobs; a build under way is abandoned with the process (its rows stay queued)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # the database is down, say: try again later
                logger.exception("ingestion pass failed")
                worked = False
            if not worked:
                self._wake.wait(self.options.poll_s)
                self._wake.clear()

    def run_once(self) -> bool:
        """Builds one store with queued work, if any; True when it did."""
        for store_id in self.records.stores_with_work():
            if self._stop.is_set():
                return False
            if not self.records.claim(store_id, self.owner, self.options.lease_s):
                continue
            try:
                self.ingest(store_id)
            finally:
                self.records.release(store_id, self.owner)
            return True
        return False

    # --- one job ---------------------------------------------------------------------------------

    def _documents(
        self, project: str, store_id: str, pending: list[PendingFile]
    ) -> dict[Chunking, list[Document]]:
        groups: dict[Chunking, list[Document]] = {}
        with tempfile.TemporaryDirectory(prefix="aihub-uploads-") as tmp:
            for file in pending:
                if file.status != REMOVING:
                    self._read(project, store_id, file, groups, Path(tmp))
        return groups

    def _read(
        self,
        project: str,
        store_id: str,
        file: PendingFile,
        groups: dict[Chunking, list[Document]],
        folder: Path,
    ) -> None:
        """Adds the file's document to its chunking's group, or marks the file failed."""
        try:
            record = self.files.get(project, file.file_id)
            data = self.store.blobs.read_bytes(record.digest)
            document = uploaded_document(file.file_id, record.filename, data, file.attributes, folder)
        except ArtifactNotFoundError as exc:
            self.records.fail(store_id, file, FileError("invalid_file", exc.message))
            return
        except AihubError as exc:
            unsupported = exc.code == "unsupported_file"
            error = FileError("unsupported_file" if unsupported else "invalid_file", exc.message)
            self.records.fail(store_id, file, error)
            return
        groups.setdefault(words_of(file.chunking), []).append(document)

    def _heartbeat(self, store_id: str) -> Callable[[str, int, int], None]:
        renewed = [time.monotonic()]

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "resumed batches":
                logger.info("vector store %s: resumed %d finished embedding batch(es)", store_id, done)
            now = time.monotonic()
            if now - renewed[0] > self.options.lease_s / 3:
                renewed[0] = now
                self.records.renew(store_id, self.owner, self.options.lease_s)

        return progress

    def _previous(self, store_id: str, digest: str | None) -> PreviousVersion | None:
        if digest is None:
            return None
        artifact = self.store.resolve(f"{STORE_NAMESPACE}/{store_id}@{digest}")
        return load_previous(self.store.materialize(artifact.pinned_ref), artifact.spec)

    def ingest(self, store_id: str) -> None:
        record = self.records.store(store_id)
        if record is None:
            return
        pending = self.records.pending(store_id, self.options.files_per_build)
        started = time.perf_counter()
        groups = self._documents(record.project, store_id, pending)
        read_s = time.perf_counter() - started
        readable = {d.doc_id for documents in groups.values() for d in documents}
        done = [f for f in pending if f.status == REMOVING or f.file_id in readable]
        removed = [f.file_id for f in pending if f.status == REMOVING]
        digest = record.index_digest
        logger.info(
            "vector store %s: building from %d file(s), removing %d", store_id, len(readable), len(removed)
        )
        try:
            if groups or removed:
                digest = self._build(store_id, digest, groups, removed)
        except Exception as exc:
            if self._stop.is_set():
                raise
            logger.exception("ingestion of %s failed", store_id)
            message = exc.message if isinstance(exc, AihubError) else f"{type(exc).__name__}: {exc}"
            for file in done:
                if file.status != REMOVING:
                    self.records.fail(store_id, file, FileError("server_error", message))
            return
        if not self.records.commit(store_id, digest, done):  # deleted meanwhile: drop its tag again
            self._untag(store_id)
            return
        logger.info(
            "vector store %s: %d file(s) settled in %.2f s (%.2f s reading them), index %s",
            store_id,
            len(done),
            time.perf_counter() - started,
            read_s,
            digest,
        )

    def _build(
        self, store_id: str, digest: str | None, groups: dict[Chunking, list[Document]], removed: list[str]
    ) -> str | None:
        previous = self._previous(store_id, digest)
        if previous is not None and removed and not groups:
            remaining = {r.doc_id for r in previous.table.rows} - set(removed)
            if not remaining:  # the store is empty again: no index
                self._untag(store_id)
                return None
        progress = self._heartbeat(store_id)
        with tempfile.TemporaryDirectory(prefix="aihub-vs-") as tmp:
            built = None
            checkpoints: list[BatchCheckpoint] = []
            batches = list(groups.items()) or [(Chunking(), [])]
            for n, (chunking, documents) in enumerate(batches):
                options = BuildOptions(
                    backend=self.options.backend, chunking=chunking, embedder_ref=self.options.embedder_ref
                )
                built = build_index(
                    documents,
                    Path(tmp) / f"step-{n}",
                    options,
                    embedder=self.embedder,
                    previous=previous,
                    progress=progress,
                    removed=removed if n == 0 else (),
                    resume_dir=self.options.resume_dir,
                )
                if built.checkpoint is not None:
                    checkpoints.append(built.checkpoint)
                if n + 1 < len(batches):
                    previous = load_previous(built.folder, built.spec)
            assert built is not None
            name = store_tag(store_id).rpartition(":")[0]
            files = {relative: built.folder / relative for relative in built.files}
            artifact = self.store.push("index", name, built.spec, files, tags=("latest",))
        for checkpoint in checkpoints:  # pushed: the kept batches are no longer needed
            checkpoint.discard()
        return artifact.digest

    def _untag(self, store_id: str) -> None:
        with contextlib.suppress(ArtifactNotFoundError):
            self.store.untag(store_tag(store_id))
