"""`aihub bench console`: how fast the web console's pages load on a hub of many artifacts.

A hub of ``count`` prompt artifacts (in 25 namespaces; one of them in 4 tagged versions) is served by the real
app on uvicorn; Debian's chromium (through Playwright, no browser download) opens each page in a fresh
context (nothing cached) and the page itself says when it has drawn its data (``body[data-ready]``,
``performance.now()`` since navigation start). The gateway runs in a child process, so the browser
driver in this one does not share its interpreter. The JSON listing is timed on its own too. Target:
every page ≤ 300 ms.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from hub.store import LocalStore

TARGET_MS = 300.0
CHROMIUM = "/usr/bin/chromium"
VERSIONED = "team-00/prompt-00000"
PAGE_ROWS = 100  # gateway/console/hub.js draws this many rows, then offers "Show all"


@dataclass(frozen=True)
class PageTiming:
    page: str
    median_ms: float
    worst_ms: float
    runs: int


def build_hub(root: Path, count: int) -> LocalStore:
    """``count`` prompt artifacts, one of them in 4 tagged versions; pushes run 8 at a time (each one fsyncs
    its blobs)."""
    store = LocalStore(root / "hub")
    if len({e.name for e in store.tag_entries()}) >= count:
        return store  # built by an earlier run in the same --work-dir

    def push(i: int) -> None:
        spec = {"template": f"Item {i}. Question: {{{{ question }}}}", "variables": ["question"]}
        store.push("prompt", f"team-{i % 25:02d}/prompt-{i:05d}", spec)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(push, range(count)))
    for version in range(1, 5):  # a history to show and diff
        spec = {"template": f"Version {version}. Question: {{{{ question }}}}", "variables": ["question"]}
        store.push("prompt", VERSIONED, spec, tags=("latest", f"v{version}"))
    return store


def _serve(hub_root: str, ports: Any) -> None:
    """Child process: the gateway over the hub on uvicorn, apart from the browser driver's GIL."""
    app = create_app(GatewaySettings(), GatewayServices(store=LocalStore(Path(hub_root))))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    ports.put(server.servers[0].sockets[0].getsockname()[1])
    thread.join()


class _Server:
    def __init__(self, hub_root: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.ports = context.Queue()
        self.process = context.Process(target=_serve, args=(str(hub_root), self.ports), daemon=True)

    def __enter__(self) -> str:
        self.process.start()
        return f"http://127.0.0.1:{self.ports.get(timeout=60)}"

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.join(timeout=10)


def time_listing(base_url: str, runs: int) -> PageTiming:
    samples = []
    with httpx.Client(base_url=base_url) as client:
        client.get("/ui/api/artifacts").raise_for_status()  # warm
        for _ in range(runs):
            started = time.perf_counter()
            client.get("/ui/api/artifacts").raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return PageTiming("GET /ui/api/artifacts (JSON)", statistics.median(samples), max(samples), runs)


def _load(browser: Any, base_url: str, route: str, ready: str) -> float:
    """One load in a fresh context (nothing cached): ms from navigation start to the page's data drawn."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{base_url}/ui/#/{route}")
        page.wait_for_selector(f"body[data-ready='{ready}']", timeout=30_000)
        if page.query_selector(".error"):
            raise RuntimeError(f"{route}: {page.inner_text('.error')}")
        return float(page.evaluate("window.aihubReadyMs"))
    finally:
        context.close()


def time_pages(base_url: str, routes: list[tuple[str, str, str]], runs: int) -> list[PageTiming]:
    """Round-robin over the pages, so that a burst of load on a shared machine hits them all alike."""
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {label: [] for label, _, _ in routes}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            for _label, route, ready in routes:  # warm-up: the server's first answers, the browser's caches
                _load(browser, base_url, route, ready)
            for _ in range(runs):
                for label, route, ready in routes:
                    samples[label].append(_load(browser, base_url, route, ready))
        finally:
            browser.close()
    return [PageTiming(label, statistics.median(s), max(s), runs) for label, s in samples.items()]


def run_console_bench(
    count: int, runs: int, console: Console, work_dir: Path | None = None
) -> list[PageTiming]:
    root = work_dir or Path(tempfile.mkdtemp(prefix="aihub-bench-console-"))
    started = time.perf_counter()
    store = build_hub(root, count)
    console.print(f"hub of {count} artifacts ready in {time.perf_counter() - started:.1f} s ({root})")
    versions = sorted({f"{e.name}@{e.digest}" for e in store.tag_entries() if e.name == VERSIONED})
    routes = [
        (f"hub listing (first {PAGE_ROWS} of {count} drawn)", "hub", "hub"),
        ("hub listing, search 'prompt-0099'", "hub?q=prompt-0099", "hub"),
        (f"artifact ({len(versions)} tagged versions)", f"artifact?name={VERSIONED}", "artifact"),
        ("diff of two versions", f"diff?a={versions[0]}&b={versions[-1]}", "diff"),
    ]
    with _Server(root / "hub") as base_url:
        timings = [time_listing(base_url, runs * 2), *time_pages(base_url, routes, runs)]
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(
        title=f"web console, hub of {count} artifacts, chromium 1280 px, fresh context per load",
        caption=f"load average at the end: {load} ({os.cpu_count()} CPUs)",
    )
    for column in ("page", "median", "worst", "runs", "target"):
        table.add_column(column, justify="left" if column == "page" else "right")
    for timing in timings:
        table.add_row(
            timing.page,
            f"{timing.median_ms:.0f} ms",
            f"{timing.worst_ms:.0f} ms",
            str(timing.runs),
            f"≤ {TARGET_MS:.0f} ms",
        )
    console.print(table)
    return timings
