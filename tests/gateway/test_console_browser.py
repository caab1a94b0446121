"""The web console in a real headless Chromium (Debian's, through Playwright): login, the hub browser,
a pipeline's lock graph, a spec diff, an eval report and a comparison, a playground chat with
citations, the usage chart; at 1280 px and at phone width, by keyboard, and with every request the
pages make recorded: none may leave for another host. Screenshots land in the session's temp folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tenancy.services import build_tenancy
from tenancy.settings import TenancySettings
from tests.gateway.browser import RequestLog, chromium, chromium_path
from tests.gateway.console_hub import ANSWER, ConsoleHub, make_console_hub
from tests.support.server_thread import ServerThread

KEY = "sk-console-test"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ConsoleHub]]:
    """The real app with tenancy on (a static key, the SQLite usage ledger) over the console hub."""
    root = tmp_path_factory.mktemp("console")
    console = make_console_hub(root)
    tenancy = build_tenancy(TenancySettings(enabled=True), root / "home", static_keys=[KEY])
    services = console.hub.services
    services.authenticator = tenancy.authenticator
    services.usage = tenancy.usage
    services.usage_reader = tenancy.usage_reader
    with ServerThread(create_app(GatewaySettings(api_keys=[KEY]), services)) as base_url:
        yield base_url, console


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium_path()
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


def until(page: Any, expression: str, timeout_s: float = 10.0) -> None:
    """Poll ``expression`` (page.wait_for_function would eval it, which the console's CSP forbids)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        time.sleep(0.02)


def rows(page: Any, count: int) -> None:
    until(page, f"document.querySelectorAll('#artifacts tbody tr').length === {count}")


class Session:
    def __init__(self, browser: Any, base_url: str, viewport: dict[str, int], key: str | None = KEY) -> None:
        self.base_url = base_url
        self.context = browser.new_context(viewport=viewport)
        if key:  # as if the login form had been used in this tab
            self.context.add_init_script(f"sessionStorage.setItem('aihub.key', {key!r})")
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.requests = RequestLog(self.page)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, route: str, ready: str) -> Any:
        self.page.goto(f"{self.base_url}/ui/#/{route}")
        self.page.wait_for_selector(f"body[data-ready='{ready}']")
        return self.page

    def close(self) -> None:
        foreign, errors = self.requests.foreign(self.base_url), self.errors
        self.context.close()
        assert self.requests.urls, "no request was recorded"
        assert foreign == [], f"requests left for other hosts: {foreign}"
        assert errors == [], f"script errors: {errors}"


@pytest.fixture
def desktop(browser: Any, site: tuple[str, ConsoleHub]) -> Iterator[Session]:
    session = Session(browser, site[0], DESKTOP)
    yield session
    session.close()


def test_login_form_keeps_the_key_for_the_tab_and_opens_the_hub(browser: Any, site: Any, shots: Path) -> None:
    session = Session(browser, site[0], DESKTOP, key=None)
    page = session.page
    page.goto(f"{site[0]}/ui/")
    page.wait_for_selector("#login:not([hidden])")
    page.get_by_label("API key").fill("sk-wrong")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#login-error:has-text('refused')")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#artifacts")
    assert page.evaluate("sessionStorage.getItem('aihub.key')") == KEY
    assert page.is_hidden("#login")
    page.screenshot(path=shots / "login-then-hub.png")
    session.close()


def test_hub_browser_filters_and_shows_a_pipeline(desktop: Session, site: Any, shots: Path) -> None:
    console: ConsoleHub = site[1]
    page = desktop.open("hub", "hub")
    names = page.locator("#artifacts tbody th a").all_inner_texts()
    assert names == ["datasets/hpc-qa", "indexes/kb", "models/tiny", "pipelines/support", "prompts/support"]
    page.screenshot(path=shots / "hub-1280.png", full_page=True)
    page.get_by_label("Kind").select_option("pipeline")
    rows(page, 1)
    page.get_by_label("Kind").select_option("")
    rows(page, 5)
    page.get_by_label("Search").fill("prom")
    rows(page, 1)
    assert page.inner_text("#artifacts tbody th") == "prompts/support"
    page.get_by_label("Search").fill("")
    rows(page, 5)
    page.get_by_role("link", name="pipelines/support").click()
    page.wait_for_selector("body[data-ready='artifact'] #lock-graph")
    facts = page.inner_text("#facts")
    assert console.pipeline_v2 in facts and "latest" in facts and "prod" in facts
    # The lock: pipeline → model, prompt, index; each a link to its artifact at that digest.
    kinds = page.locator("#lock-graph a.node").evaluate_all("nodes => nodes.map(n => n.classList[1])")
    assert sorted(kinds) == ["kind-index", "kind-model", "kind-pipeline", "kind-prompt"]
    assert page.inner_text("#composition-digest").startswith("sha256:")
    assert '"top_k": 2' in page.inner_text("#spec")
    reports = page.locator("#referrers tbody tr")
    assert reports.count() == 2
    assert "ndcg@10" in reports.first.inner_text()
    page.screenshot(path=shots / "pipeline-1280.png", full_page=True)
    page.locator("#lock-graph a.node.kind-prompt").click()
    page.wait_for_selector("body[data-ready='artifact'] h1:has-text('prompts/support')")
    assert page.locator("#version").input_value() == console.prompt_v2.split("@")[1]


def test_diff_of_two_prompt_versions(desktop: Session, site: Any, shots: Path) -> None:
    page = desktop.open("artifact?name=prompts/support", "artifact")
    page.get_by_role("button", name="Diff specs").click()
    page.wait_for_selector("body[data-ready='diff'] #diff")
    assert page.locator("#diff del").all_inner_texts() == ["-   {% endfor %}Question: {{ question }}\n"]
    assert "Answer briefly, citing [n]." in " ".join(page.locator("#diff ins").all_inner_texts())
    page.screenshot(path=shots / "diff-1280.png", full_page=True)


def test_eval_report_tables_plot_and_comparison(desktop: Session, site: Any, shots: Path) -> None:
    console: ConsoleHub = site[1]
    page = desktop.open(f"report?ref={console.report_a}", "report")
    page.wait_for_selector("#plot")
    until(page, "document.querySelector('#plot').naturalWidth > 100")
    metrics = dict(row.split("\t")[:2] for row in page.locator("#metrics tbody tr").all_inner_texts())
    assert metrics == {"ndcg@10": "0.6250", "exact_match": "0.5000"}
    assert "12.0" in page.inner_text("#latency")
    assert "null" not in page.inner_text("main") and "undefined" not in page.inner_text("main")
    page.screenshot(path=shots / "report-1280.png", full_page=True)
    page.goto(f"{site[0]}/ui/#/artifact?name=pipelines/support")
    page.wait_for_selector("#referrers")
    page.locator("#referrers input[type=checkbox]").nth(0).check()
    page.locator("#referrers input[type=checkbox]").nth(1).check()
    page.get_by_role("button", name="Compare the two selected").click()
    page.wait_for_selector("body[data-ready='compare'] #per-query")
    rows = page.locator("#per-query tbody tr")
    assert rows.count() == 4
    deltas = {
        r.split("\t")[0]: r.split("\t")[1:]
        for r in page.locator("#compare-metrics tbody tr").all_inner_texts()
    }
    assert deltas == {
        "exact_match": ["0.5000", "0.5000", "0", "1", "1"],
        "ndcg@10": ["0.6250", "0.8125", "+0.1875", "2", "0"],
    }
    # Largest change first: q2, exact_match 0 → 1 and ndcg@10 0.5 → 1.
    assert rows.first.inner_text().split("\t") == ["q2", "0", "1", "+1", "0.5000", "1", "+0.5000"]
    page.screenshot(path=shots / "compare-1280.png", full_page=True)


def test_playground_streams_a_rag_answer_with_sources_and_exports_it(
    desktop: Session, site: Any, shots: Path, tmp_path: Path
) -> None:
    page = desktop.open("playground?model=rag/support:prod", "playground")
    assert page.get_by_label("Model").input_value() == "rag/support:prod"
    page.get_by_label("Temperature").fill("0")
    page.get_by_label("Message").fill("Where is the Leonardo supercomputer hosted?")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("#transcript li.assistant:not([aria-busy]) .answer")
    assert page.inner_text("#transcript li.assistant .answer") == ANSWER
    sources = page.locator("#transcript .source")
    assert sources.count() >= 1
    assert "Leonardo" in sources.first.locator("summary").inner_text()
    assert not sources.first.locator("p").first.is_visible()
    sources.first.locator("summary").click()
    assert "CINECA" in sources.first.locator("p").first.inner_text()
    assert page.inner_text("#composition").startswith("Composition digest sha256:")
    page.screenshot(path=shots / "playground-1280.png", full_page=True)
    page.get_by_role("button", name="Export as curl").click()
    curl = page.inner_text("#export")
    assert '"model": "rag/support:prod"' in curl and "$AIHUB_API_KEY" in curl and KEY not in curl
    page.get_by_role("button", name="Export as Python").click()
    python = page.inner_text("#export")
    script = tmp_path / "snippet.py"
    script.write_text(python)
    env = {**os.environ, "AIHUB_API_KEY": KEY}
    ran = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == ANSWER  # the exported session runs as it is, against this gateway


def test_usage_chart_shows_the_projects_tokens(desktop: Session, site: Any, shots: Path) -> None:
    page = desktop.page
    answered = page.request.post(
        f"{site[0]}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        data={"model": "tiny", "messages": [{"role": "user", "content": "hello there"}]},
    )
    assert answered.ok, answered.text()
    desktop.open("usage", "usage")
    deadline = time.monotonic() + 10
    while "tiny" not in page.inner_text("#usage-models"):  # the ledger writes its rows every 0.5 s
        assert time.monotonic() < deadline, page.inner_text("main")
        time.sleep(0.3)
        page.reload()  # (a goto to the same #/usage would not load the page again)
        page.wait_for_selector("body[data-ready='usage']")
    assert page.locator("#usage-by-day rect").count() >= 2
    assert page.locator("#usage-by-model text", has_text="tiny").count() == 1
    page.screenshot(path=shots / "usage-1280.png", full_page=True)


def test_phone_width_has_no_sideways_scroll(browser: Any, site: Any, shots: Path) -> None:
    console: ConsoleHub = site[1]
    session = Session(browser, site[0], PHONE)
    overflow = "document.documentElement.scrollWidth - window.innerWidth"
    for route, ready in [
        ("hub", "hub"),
        ("artifact?name=pipelines/support", "artifact"),
        ("playground", "playground"),
        (f"report?ref={console.report_a}", "report"),
    ]:
        page = session.open(route, ready)
        assert page.evaluate(overflow) <= 0, f"{route} scrolls sideways at {PHONE['width']} px"
        page.screenshot(path=shots / f"{ready}-phone.png", full_page=True)
    session.close()


def test_keyboard_reaches_an_artifact_and_every_control_is_labelled(desktop: Session, site: Any) -> None:
    page = desktop.open("hub", "hub")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_label("Search").focus()
    page.keyboard.type("pipelines")
    rows(page, 1)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "pipelines/support"
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready='artifact'] #lock-graph")
    unlabelled = """() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map(e => e.outerHTML)"""
    assert page.evaluate(unlabelled) == []
    desktop.open("playground", "playground")
    assert page.evaluate(unlabelled) == []
