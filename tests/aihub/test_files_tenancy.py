"""Files and vector stores under tenancy, as `aihub serve` composes it: rows in the tenancy database,
and a project never sees another's files or stores. No embedder: stores are indexed with BM25."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from aihub.compose import build_services, open_store
from gateway.app import create_app
from ray_cluster.config import AihubConfig
from retrievers.settings import RetrieverSettings
from tenancy.build import load_secret, open_database
from tenancy.keys import KeyStore
from tenancy.settings import TenancySettings
from tests.support.server_thread import ServerThread


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, str, AihubConfig]]:
    tenancy = TenancySettings(enabled=True)
    config = AihubConfig.build(tmp_path / "home", tenancy=tenancy)
    config = dataclasses.replace(
        config, retrievers=RetrieverSettings(work_dir=tmp_path / "work", ingest_poll_s=0.05)
    )
    keys = KeyStore(open_database(tenancy, config.app.home), load_secret(tenancy, config.app.home))
    alpha, _ = keys.create("alpha")
    beta, _ = keys.create("beta")
    app = create_app(config.gateway_settings(), build_services(config, open_store(config)))
    with ServerThread(app) as url:
        yield url, alpha, beta, config


def test_projects_never_see_each_others_files_or_stores(served) -> None:
    url, alpha_key, beta_key, config = served
    alpha = openai.OpenAI(base_url=f"{url}/v1", api_key=alpha_key, max_retries=0)
    beta = openai.OpenAI(base_url=f"{url}/v1", api_key=beta_key, max_retries=0)
    uploaded = alpha.files.create(
        file=("glaciers.txt", b"Glaciers carve valleys into rock."), purpose="assistants"
    )
    store = alpha.vector_stores.create(name="alpha-store", file_ids=[uploaded.id])
    deadline = time.monotonic() + 30
    while alpha.vector_stores.retrieve(store.id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    hits = alpha.vector_stores.search(store.id, query="glaciers valleys").data
    assert hits and hits[0].file_id == uploaded.id and hits[0].filename == "glaciers.txt"

    with pytest.raises(openai.NotFoundError):
        beta.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        beta.files.content(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        beta.files.delete(uploaded.id)
    assert uploaded.id not in [f.id for f in beta.files.list().data]
    with pytest.raises(openai.NotFoundError):
        beta.vector_stores.retrieve(store.id)
    with pytest.raises(openai.NotFoundError):
        beta.vector_stores.search(store.id, query="glaciers")
    with pytest.raises(openai.NotFoundError):
        beta.vector_stores.delete(store.id)
    with pytest.raises(openai.NotFoundError):  # another project's file cannot be put in one's own store
        beta.vector_stores.create(name="theft", file_ids=[uploaded.id])
    assert store.id not in [s.id for s in beta.vector_stores.list().data]
    assert store.id in [s.id for s in alpha.vector_stores.list().data]

    # The rows live in the tenancy database, owned by the project.
    database = open_database(config.tenancy, config.app.home)
    assert database.execute("SELECT project FROM aihub_files WHERE id = ?", (uploaded.id,)) == [("alpha",)]
    assert database.execute("SELECT project FROM aihub_vector_stores WHERE id = ?", (store.id,)) == [
        ("alpha",)
    ]
    database.close()
    alpha.close()
    beta.close()
