"""An ingestion job survives a gateway restart: `aihub serve` killed (SIGKILL) mid-build leaves the hub
tag untouched and the files queued; the next start resumes the job and settles every file once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import openai
import pytest

from aihub.gateway_process import GatewayProcess
from core.app_settings import DEFAULT_EMBEDDER, DEFAULT_EMBEDDER_REF
from core.errors import ArtifactNotFoundError
from core.vector_stores import store_tag
from hub.store import LocalStore
from tests.gateway.files_hub import import_minilm

pytestmark = pytest.mark.slow
FILES = 120


def _config(home: Path) -> dict[str, object]:
    return {
        "app": {
            "home": str(home),
            "models": [],
            "embedders": [{"id": DEFAULT_EMBEDDER, "ref": DEFAULT_EMBEDDER_REF}],
            "default_embedder": DEFAULT_EMBEDDER,
            "prepare_defaults": False,
            "demo": False,
        },
        "retrievers": {"ingest_lease_s": 2.0, "ingest_poll_s": 0.1},
    }


def _text(n: int) -> bytes:
    words = " ".join(f"topic{n} passage word{i % 97} about subject {n % 13}" for i in range(60))
    return f"Document {n}. {words}".encode()


def test_a_job_killed_mid_build_resumes_at_the_next_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    import_minilm(LocalStore(home / "hub"))
    config = _config(home)
    first = GatewayProcess(config, tmp_path / "first", ready_timeout_s=300).__enter__()
    client = openai.OpenAI(base_url=f"{first.base_url}/v1", api_key="unused", max_retries=0)
    try:
        file_ids = [
            client.files.create(file=(f"doc{n}.txt", _text(n)), purpose="assistants").id for n in range(FILES)
        ]
        store = client.vector_stores.create(name="restart")
        batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=file_ids)
        deadline = time.monotonic() + 60
        while f"vector store {store.id}: building" not in first.log_path.read_text():
            assert time.monotonic() < deadline, "the worker never took the job"
            time.sleep(0.1)
        batches = home / "cache" / "retrievers" / "ingest-batches"
        while not list(batches.glob("*/*.npy")):  # kill once a first embedding batch is finished
            assert time.monotonic() < deadline, "no embedding batch was finished"
            time.sleep(0.05)
        status = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
        assert status.status == "in_progress" and status.file_counts.in_progress == FILES
    finally:
        client.close()
        assert first.process is not None
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
    assert "settled" not in first.log_path.read_text()  # killed mid-build
    # No tag points at a half-built index.
    with pytest.raises(ArtifactNotFoundError):
        LocalStore(home / "hub").resolve(store_tag(store.id))

    with GatewayProcess(config, tmp_path / "second", ready_timeout_s=300) as second:
        client = openai.OpenAI(base_url=f"{second.base_url}/v1", api_key="unused", max_retries=0)
        with client:
            resumed = client.vector_stores.file_batches.poll(
                batch.id, vector_store_id=store.id, poll_interval_ms=200
            )
            assert resumed.status == "completed"
            assert resumed.file_counts.completed == FILES and resumed.file_counts.failed == 0
            finished = client.vector_stores.retrieve(store.id)
            hit = client.vector_stores.search(store.id, query="topic7 passage").data[0]
            log = second.log_path.read_text()
    tagged = LocalStore(home / "hub").resolve(store_tag(store.id))
    assert finished.model_extra["hub_index"]["digest"] == tagged.digest  # type: ignore[index]
    assert tagged.spec["counts"]["documents"] == FILES
    assert hit.file_id in file_ids and hit.filename.startswith("doc")
    assert f"vector store {store.id}: {FILES} file(s) settled" in log
    # The embedding went on from the batches the killed gateway had finished.
    assert f"vector store {store.id}: resumed" in log
    assert not list(batches.glob("*/*.npy"))  # dropped once the version was pushed
