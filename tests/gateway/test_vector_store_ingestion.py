"""Vector stores made over the API, driven by the official client: ingestion jobs with OpenAI's
statuses, each change a new index artifact version in the hub, search by ``vs_…`` id, and errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from core.errors import ArtifactNotFoundError, NotFoundError
from core.vector_stores import store_tag
from gateway.vector_store_access import open_vector_store
from tests.gateway.files_hub import FilesGateway, files_gateway
from tests.support.openai_spec import SpecValidator

POLL_MS = 50


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilesGateway]:
    with files_gateway(tmp_path_factory.mktemp("vector-stores")) as served:
        yield served


@pytest.fixture(scope="module")
def client(gateway: FilesGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused", max_retries=0) as opened:
        yield opened


def _wait(client: openai.OpenAI, store_id: str, timeout_s: float = 60.0) -> openai.types.VectorStore:
    deadline = time.monotonic() + timeout_s
    while True:
        store = client.vector_stores.retrieve(store_id)
        if store.status == "completed":
            return store
        assert time.monotonic() < deadline, store
        time.sleep(POLL_MS / 1000)


def _spec_dump(model: openai.BaseModel) -> dict:
    return model.model_dump(exclude_none=False, exclude={"expires_after"})


def test_upload_and_poll_builds_a_hub_index_version_searchable_by_store_id(
    client: openai.OpenAI, gateway: FilesGateway, spec: SpecValidator
):
    store = client.vector_stores.create(name="pets", metadata={"team": "zoo"})
    spec.check("VectorStoreObject", _spec_dump(store))
    assert store.id.startswith("vs_") and store.status == "completed" and store.file_counts.total == 0
    # A store without files finds nothing (no index yet).
    assert client.vector_stores.search(store.id, query="anything").data == []

    added = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("lava.md", b"# Volcanoes\n\nA volcano erupts when magma rises and spews lava and ash."),
        poll_interval_ms=POLL_MS,
    )
    spec.check("VectorStoreFileObject", _spec_dump(added))
    assert added.status == "completed" and added.last_error is None
    assert added.chunking_strategy.type == "static"
    done = client.vector_stores.retrieve(store.id)
    spec.check("VectorStoreObject", _spec_dump(done))
    assert done.file_counts.completed == 1 and done.status == "completed" and done.usage_bytes > 0
    assert done.metadata == {"team": "zoo"}
    index = done.model_extra["hub_index"]  # type: ignore[index]
    tagged = gateway.store.resolve(store_tag(store.id))
    assert index["digest"] == tagged.digest and index["ref"] == tagged.pinned_ref
    assert tagged.kind == "index" and tagged.spec["counts"] == {"documents": 1, "chunks": 1}

    page = client.vector_stores.search(store.id, query="erupting mountain")
    top = page.data[0]
    assert top.file_id == added.id and top.filename == "lava.md"
    assert top.attributes is not None and top.attributes["file_id"] == added.id
    # What the file_search tool calls: the provider resolves vs_ ids to the store's current version.
    retriever = asyncio.run(open_vector_store(gateway.services, "default", store.id))
    hits = retriever.search_batch(["lava"], top_k=1)[0]
    assert hits[0].doc_id == added.id and hits[0].attributes["filename"] == "lava.md"
    assert retriever.info.digest == tagged.digest


def test_batches_are_idempotent_and_every_change_is_a_new_version(
    client: openai.OpenAI, gateway: FilesGateway, spec: SpecValidator
):
    store = client.vector_stores.create(name="batches")
    files = [
        ("cats.txt", b"Cats are small felines that purr and chase mice."),
        ("dogs.txt", b"Dogs are loyal companions that bark and fetch sticks."),
        ("bonds.html", b"<html><title>Bonds</title><p>Government bonds pay fixed interest.</p></html>"),
    ]
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id, files=files, poll_interval_ms=POLL_MS
    )
    spec.check("VectorStoreFileBatchObject", batch.model_dump())
    assert batch.id.startswith("vsfb_") and batch.status == "completed"
    assert batch.file_counts.completed == 3 and batch.file_counts.total == 3
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    spec.check(
        "ListVectorStoreFilesResponse", listed.model_dump(exclude={"data": {"__all__": {"expires_after"}}})
    )
    assert len(listed.data) == 3 and {f.status for f in listed.data} == {"completed"}
    first = gateway.store.resolve(store_tag(store.id))
    assert first.spec["counts"]["documents"] == 3

    # The same file again: its chunks are replaced, not doubled (the same content: the same digest).
    again = client.vector_stores.files.create_and_poll(
        file_id=listed.data[0].id, vector_store_id=store.id, poll_interval_ms=POLL_MS
    )
    assert again.status == "completed"
    assert gateway.store.resolve(store_tag(store.id)).spec["counts"] == first.spec["counts"]
    assert client.vector_stores.retrieve(store.id).file_counts.total == 3

    # Removing a file: a new version without it; the old one stays pinnable by digest.
    removed = client.vector_stores.files.delete(file_id=listed.data[0].id, vector_store_id=store.id)
    assert removed.deleted is True and removed.object == "vector_store.file.deleted"
    _wait(client, store.id)
    deadline = time.monotonic() + 30
    while gateway.store.resolve(store_tag(store.id)).spec["counts"]["documents"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert gateway.store.resolve(store_tag(store.id)).digest != first.digest
    assert gateway.store.resolve(first.pinned_ref).digest == first.digest
    hits = client.vector_stores.search(store.id, query="cats dogs bonds", max_num_results=10).data
    assert listed.data[0].id not in {h.file_id for h in hits} and len({h.file_id for h in hits}) == 2
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(file_id=listed.data[0].id, vector_store_id=store.id)


def test_delete_store_removes_the_tag_not_the_blobs(client: openai.OpenAI, gateway: FilesGateway):
    store = client.vector_stores.create(name="short-lived")
    client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("a.txt", b"Short lived text about rivers."), poll_interval_ms=POLL_MS
    )
    version = gateway.store.resolve(store_tag(store.id))
    deleted = client.vector_stores.delete(store.id)
    assert deleted.deleted is True and deleted.object == "vector_store.deleted"
    with pytest.raises(ArtifactNotFoundError):
        gateway.store.resolve(store_tag(store.id))
    assert gateway.store.resolve(version.pinned_ref).digest == version.digest
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.search(store.id, query="rivers")


def test_listing_modify_and_projects(client: openai.OpenAI, gateway: FilesGateway, spec: SpecValidator):
    store = client.vector_stores.create(name="listed")
    modified = client.vector_stores.update(store.id, name="renamed", metadata={"k": "v"})
    assert modified.name == "renamed" and modified.metadata == {"k": "v"}
    listing = client.vector_stores.list()
    assert store.id in [s.id for s in listing.data]
    # A store's own index artifacts are listed by their vs_ id only, never as hub indices.
    raw = httpx.get(f"{gateway.base_url}/v1/vector_stores").json()
    assert not any(s["id"].startswith("vector-stores/") for s in raw["data"])
    spec.check("VectorStoreObject", next(s for s in raw["data"] if s["id"] == store.id))
    # Another project sees nothing of it.
    stores = gateway.services.vector_stores
    assert stores is not None
    with pytest.raises(NotFoundError):
        stores.get("another-project", store.id)
    with pytest.raises(NotFoundError):
        asyncio.run(open_vector_store(gateway.services, "another-project", store.id))
    assert store.id not in [
        s.id for s in stores.list("another-project", limit=100, order="desc", after=None)[0]
    ]
    with pytest.raises(openai.NotFoundError):  # the store's index by its hub name: refused
        client.vector_stores.search(f"vector-stores/{store.id}:latest", query="x")


def test_bad_input_gets_openai_errors(client: openai.OpenAI, gateway: FilesGateway):
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.create(name="x", file_ids=["file-missing"])
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve("vs_missing")
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.create(
            name="x",
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
            },
        )
    with pytest.raises(openai.BadRequestError) as expiry:
        client.vector_stores.create(name="x", expires_after={"anchor": "last_active_at", "days": 1})
    assert expiry.value.code == "unsupported_parameter"
    store = client.vector_stores.create(name="errors")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-missing")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.retrieve("vsfb_missing", vector_store_id=store.id)
    # A file with no text fails with last_error, and the store stays usable.
    empty = client.files.create(
        file=("empty.html", b"<html><script>var x;</script></html>"), purpose="assistants"
    )
    failed = client.vector_stores.files.create_and_poll(
        file_id=empty.id, vector_store_id=store.id, poll_interval_ms=POLL_MS
    )
    assert failed.status == "failed" and failed.last_error is not None
    assert failed.last_error.code == "invalid_file"
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert counts.failed == 1 and counts.in_progress == 0


def test_static_chunking_splits_long_files(client: openai.OpenAI, gateway: FilesGateway):
    text = " ".join(f"word{i}" for i in range(600)).encode()
    store = client.vector_stores.create(name="chunks")
    added = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("long.txt", text),
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 128, "chunk_overlap_tokens": 0},
        },
        poll_interval_ms=POLL_MS,
    )
    assert added.chunking_strategy.static.max_chunk_size_tokens == 128  # type: ignore[union-attr]
    # 128 tokens are 100 words here: 600 words make 6 chunks.
    assert gateway.store.resolve(store_tag(store.id)).spec["counts"]["chunks"] == 6
