import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse, Response

from core.errors import NotFoundError
from gateway.fast_path.hot_routes import HotRouteMiddleware, PathPattern


async def _echo(request: Request) -> Response:
    value = request.path_params["store"]
    if value == "missing":
        raise NotFoundError("no such store")
    return JSONResponse({"hot": value})


PATTERN = PathPattern("POST", "/v1/vector_stores/", "/search", "store", _echo)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/vector_stores/indexes/pets:latest/search", "indexes/pets:latest"),
        ("POST", "/v1/vector_stores/a@sha256:00/search", "a@sha256:00"),
        ("POST", "/v1/vector_stores//search", None),  # empty id: left to the router
        ("POST", "/v1/vector_stores/search", None),
        ("GET", "/v1/vector_stores/x/search", None),
        ("POST", "/v1/vector_stores/x/searches", None),
    ],
)
def test_pattern_takes_one_non_empty_parameter(method: str, path: str, expected: str | None) -> None:
    assert PATTERN.match(method, path) == expected


def test_middleware_serves_patterns_and_leaves_the_rest_to_the_app() -> None:
    app = FastAPI()

    @app.post("/v1/vector_stores/{store:path}/search")
    async def routed(store: str) -> dict[str, str]:
        return {"routed": store}

    app.add_middleware(HotRouteMiddleware, routes={}, patterns=[PATTERN])
    with TestClient(app) as client:
        assert client.post("/v1/vector_stores/a/b/search").json() == {"hot": "a/b"}
        assert client.post("/v1/vector_stores//search").json() == {"routed": ""}
        missing = client.post("/v1/vector_stores/missing/search")
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == "no such store"
