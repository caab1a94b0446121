"""``/ui`` and ``/ui/api``: the pages are open, the data behind the gateway's keys; the JSON the pages
read, on a real hub (``console_hub``); off with ``console=False``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from tests.gateway.console_hub import ConsoleHub, make_console_hub

KEY = {"authorization": "Bearer sk-ui"}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> ConsoleHub:
    return make_console_hub(tmp_path_factory.mktemp("console-api"))


@pytest.fixture(scope="module")
def client(console: ConsoleHub) -> Iterator[TestClient]:
    app = create_app(GatewaySettings(api_keys=["sk-ui"]), console.hub.services)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=KEY)
    assert response.status_code == 200, response.text
    return response.json()


def test_pages_are_open_data_needs_the_key(client: TestClient) -> None:
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/ui/").text == page.text
    script = client.get("/ui/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/../pyproject.toml").status_code in (401, 404)
    refused = client.get("/ui/api/artifacts")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/ui/api/artifacts", headers={"authorization": "Bearer nope"}).status_code == 401
    assert client.get("/ui/nothing.js").status_code == 401  # not a page: behind the key like any path


def test_every_module_the_page_imports_is_served(client: TestClient) -> None:
    import re

    pending, seen = ["/ui/app.js"], set()
    while pending:
        path = pending.pop()
        seen.add(path)
        source = client.get(path)
        assert source.status_code == 200, path
        for name in re.findall(r'from "\./([\w.]+)"', source.text):
            if f"/ui/{name}" not in seen:
                pending.append(f"/ui/{name}")
    assert {"/ui/hub.js", "/ui/playground.js", "/ui/evals.js", "/ui/usage.js", "/ui/graph.js"} <= seen
    for source in seen:  # nothing from another host: no CDN, no fonts, no analytics
        assert "http://" not in client.get(source).text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in client.get(source).text


def test_listing_by_kind_namespace_and_search(client: TestClient) -> None:
    body = get(client, "/ui/api/artifacts")
    assert [a["name"] for a in body["data"]] == [
        "datasets/hpc-qa",
        "indexes/kb",
        "models/tiny",
        "pipelines/support",
        "prompts/support",
    ]
    assert body["kinds"] == ["dataset", "index", "model", "pipeline", "prompt"]
    pipeline = next(a for a in body["data"] if a["name"] == "pipelines/support")
    assert pipeline["versions"] == 2 and {t["tag"] for t in pipeline["tags"]} == {"latest", "prod", "v1"}
    assert [a["name"] for a in get(client, "/ui/api/artifacts", kind="prompt")["data"]] == ["prompts/support"]
    assert [a["name"] for a in get(client, "/ui/api/artifacts", namespace="models")["data"]] == [
        "models/tiny"
    ]
    assert [a["name"] for a in get(client, "/ui/api/artifacts", q="PROD")["data"]] == ["pipelines/support"]
    assert get(client, "/ui/api/artifacts", q="no-such-thing")["data"] == []
    first_two = get(client, "/ui/api/artifacts", limit=2)
    assert [a["name"] for a in first_two["data"]] == ["datasets/hpc-qa", "indexes/kb"] and first_two[
        "total"
    ] == 5


def test_artifact_versions_files_and_referrers(client: TestClient, console: ConsoleHub) -> None:
    body = get(client, "/ui/api/artifact", name="pipelines/support")
    assert [v["digest"] for v in body["versions"]] == [console.pipeline_v2, console.pipeline_v1]
    newest, oldest = body["versions"]
    assert newest["tags"] == ["latest", "prod"] and oldest["tags"] == ["v1"]
    assert newest["spec"]["retrieval"]["top_k"] == 2 and newest["size"] > 0
    assert {r["ref"] for r in newest["referrers"]} == {console.report_a, console.report_b}
    assert oldest["referrers"] == []
    headline = {r["ref"]: r["headline"] for r in newest["referrers"]}
    assert headline[console.report_a] == {"ndcg@10": 0.625, "exact_match": 0.5}
    model = get(client, "/ui/api/artifact", name="models/tiny")["versions"][0]
    assert [(f["path"], f["size"]) for f in model["files"]] == [("model.safetensors", 18)]
    missing = client.get("/ui/api/artifact", params={"name": "models/nope"}, headers=KEY)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "artifact_not_found"


def test_lock_graph_links_pipeline_to_its_parts(client: TestClient, console: ConsoleHub) -> None:
    graph = get(client, "/ui/api/lock", ref="pipelines/support:prod")
    assert graph["root"] == console.pipeline_v2
    kinds = {n["digest"]: n["kind"] for n in graph["nodes"]}
    assert sorted(kinds.values()) == ["index", "model", "pipeline", "prompt"]
    assert {e["field"] for e in graph["edges"] if e["source"] == console.pipeline_v2} == {
        "model",
        "prompt",
        "indices.0",
    }
    assert graph["composition_digest"].startswith("sha256:")
    bad = client.get("/ui/api/lock", params={"ref": "Not a ref!"}, headers=KEY)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_reference"


def test_diff_of_prompt_versions_and_of_kinds_that_differ(client: TestClient, console: ConsoleHub) -> None:
    diff = get(client, "/ui/api/diff", a=console.prompt_v1, b=console.prompt_v2)
    assert diff["changed"] is True
    assert [line["text"] for line in diff["lines"] if line["op"] == "-"] == [
        "  {% endfor %}Question: {{ question }}"
    ]
    assert [line["text"] for line in diff["lines"] if line["op"] == "+"] == [
        "  {% endfor %}Answer briefly, citing [n].",
        "  Question: {{ question }}",
    ]
    same = get(client, "/ui/api/diff", a=console.prompt_v2, b="prompts/support:latest")
    assert same["changed"] is False and {line["op"] for line in same["lines"]} == {"="}
    mixed = client.get("/ui/api/diff", params={"a": console.prompt_v1, "b": "models/tiny"}, headers=KEY)
    assert mixed.status_code == 400


def test_report_compare_and_stored_plot(client: TestClient, console: ConsoleHub) -> None:
    report = get(client, "/ui/api/report", ref=console.report_a)
    assert report["subject"] == console.pipeline_v2
    assert report["report"]["metrics"] == {"ndcg@10": 0.625, "exact_match": 0.5}
    assert report["plot"] == "report.png" and report["has_items"] is True
    plot = client.get("/ui/api/file", params={"ref": console.report_a, "path": "report.png"}, headers=KEY)
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content.startswith(b"\x89PNG")
    compare = get(client, "/ui/api/compare", a=console.report_a, b=console.report_b)
    assert compare["paired"] == 4
    ndcg = next(m for m in compare["metrics"] if m["metric"] == "ndcg@10")
    assert ndcg == {"metric": "ndcg@10", "a": 0.625, "b": 0.8125, "delta": 0.1875, "wins": 2, "losses": 0}
    assert compare["items"][0]["id"] == "q2"
    assert compare["items"][0]["scores"]["exact_match"] == {"a": 0.0, "b": 1.0, "delta": 1.0}
    not_report = client.get("/ui/api/report", params={"ref": "models/tiny"}, headers=KEY)
    assert not_report.status_code == 400
    no_file = client.get("/ui/api/file", params={"ref": console.report_a, "path": "nope.png"}, headers=KEY)
    assert no_file.status_code == 404


def test_console_off_and_no_hub(console: ConsoleHub, tmp_path: Path) -> None:
    with TestClient(create_app(GatewaySettings(console=False), console.hub.services)) as off:
        assert off.get("/ui").status_code == 404
        assert off.get("/ui/api/artifacts").status_code == 404
    with TestClient(create_app(GatewaySettings(), GatewayServices())) as bare:
        assert bare.get("/ui").status_code == 200
        answer = bare.get("/ui/api/artifacts")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "no_hub"
