"""``/ui``: the web console. Static pages (no build step, nothing from a CDN) and the JSON they read.

The pages themselves hold no data and are served to anyone (a browser cannot send a bearer key when it
navigates); everything under ``/ui/api`` goes through the same authentication as ``/v1``, and the pages
send the key the user typed in (kept in sessionStorage).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from core.errors import NotFoundError
from core.store import ArtifactStore, BrowsableStore
from gateway import eval_views, hub_browser
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.state import gateway_state

STATIC_DIR = Path(__file__).resolve().parent.parent / "console"
PREFIX = "/ui"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
# Only this origin: a page that tried to reach another host (a CDN, a tracker) would be refused.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_FILE_TYPES = {
    ".png": "image/png",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
MAX_FILE_BYTES = 16 * 1024 * 1024

router = APIRouter(include_in_schema=False)
T = TypeVar("T")


def static_files() -> dict[str, Path]:
    """URL path → file, for every page asset (LICENSE files of vendored code included)."""
    files = {f"{PREFIX}/{p.name}": p for p in sorted(STATIC_DIR.iterdir()) if p.suffix in _TYPES}
    files[PREFIX] = files[f"{PREFIX}/"] = STATIC_DIR / "index.html"
    return files


def open_paths() -> tuple[str, ...]:
    """The console's page paths, reachable without a key (they hold no data)."""
    return tuple(static_files())


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _assets() -> dict[str, _Asset]:
    """The pages, read once: they are small and served from memory (no file I/O per request)."""
    assets = {}
    for url, path in static_files().items():
        body = path.read_bytes()
        assets[url] = _Asset(body, _TYPES[path.suffix], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return assets


_ASSETS = _assets()


def _page(request: Request) -> Response:
    asset = _ASSETS[request.url.path]
    # no-cache: the browser revalidates (a 304 when unchanged), so an upgraded gateway is seen at once.
    headers = {**SECURITY_HEADERS, "cache-control": "no-cache", "etag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


for _path in _ASSETS:
    router.add_api_route(_path, _page, methods=["GET"], include_in_schema=False)


def _stores(request: Request) -> tuple[ArtifactStore, BrowsableStore]:
    request.scope[ENDPOINT_SCOPE_KEY] = "console"
    store = gateway_state(request).services.store
    if store is None or not isinstance(store, BrowsableStore):
        raise NotFoundError("This gateway has no hub to browse.", code="no_hub")
    return store, store


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers={"cache-control": "no-store"})


async def _call(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)  # the store reads files: off the event loop


@router.get(f"{PREFIX}/api/artifacts")
async def artifacts(
    request: Request,
    kind: str | None = None,
    namespace: str | None = None,
    q: str | None = None,
    limit: int | None = Query(None, ge=1),
) -> Response:
    _, browser = _stores(request)
    return _json(await _call(hub_browser.list_artifacts, browser, kind, namespace, q, limit))


@router.get(f"{PREFIX}/api/artifact")
async def artifact(request: Request, name: str = Query(..., min_length=1)) -> Response:
    store, browser = _stores(request)
    return _json(await _call(hub_browser.artifact_detail, store, browser, name))


@router.get(f"{PREFIX}/api/lock")
async def lock(request: Request, ref: str = Query(..., min_length=1)) -> Response:
    _, browser = _stores(request)
    return _json(await _call(hub_browser.lock_graph, browser, ref))


@router.get(f"{PREFIX}/api/diff")
async def diff(
    request: Request, a: str = Query(..., min_length=1), b: str = Query(..., min_length=1)
) -> Response:
    store, _ = _stores(request)
    return _json(await _call(hub_browser.diff_specs, store, a, b))


@router.get(f"{PREFIX}/api/report")
async def report(request: Request, ref: str = Query(..., min_length=1)) -> Response:
    store, browser = _stores(request)
    return _json(await _call(eval_views.report_view, store, browser, ref))


@router.get(f"{PREFIX}/api/compare")
async def compare(
    request: Request, a: str = Query(..., min_length=1), b: str = Query(..., min_length=1)
) -> Response:
    store, browser = _stores(request)
    return _json(await _call(eval_views.compare_view, store, browser, a, b))


@router.get(f"{PREFIX}/api/file")
async def file(
    request: Request, ref: str = Query(..., min_length=1), path: str = Query(..., min_length=1)
) -> Response:
    """One stored file of an artifact (an eval report's plot, say), shown inline only for safe types."""
    store, browser = _stores(request)
    digest = (await _call(store.resolve_digest, ref))[1]
    data = await _call(browser.read_file, digest, path, MAX_FILE_BYTES)
    media_type = _FILE_TYPES.get(Path(path).suffix, "application/octet-stream")
    return Response(data, media_type=media_type, headers={"x-content-type-options": "nosniff"})
