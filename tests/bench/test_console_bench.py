"""`aihub bench console` on a small hub: it builds (or reuses) the hub and times every page it lists."""

from pathlib import Path

from rich.console import Console

from bench.console_bench import VERSIONED, build_hub, run_console_bench
from tests.gateway.browser import chromium_path


def test_hub_is_built_once_and_reused(tmp_path: Path) -> None:
    store = build_hub(tmp_path, 12)
    names = {e.name for e in store.tag_entries()}
    assert len(names) == 12 and VERSIONED in names
    assert sorted(e.tag for e in store.tag_entries() if e.name == VERSIONED) == [
        "latest",
        "v1",
        "v2",
        "v3",
        "v4",
    ]
    index = (tmp_path / "hub" / "index.json").read_bytes()
    build_hub(tmp_path, 12)
    assert (tmp_path / "hub" / "index.json").read_bytes() == index  # nothing pushed again


def test_every_page_is_timed_in_chromium(tmp_path: Path) -> None:
    chromium_path()
    console = Console(record=True, width=120)
    timings = run_console_bench(12, 3, console, tmp_path)
    assert timings[0].page == "GET /ui/api/artifacts (JSON)"
    assert len(timings) == 5 and all(t.runs >= 3 and 0 < t.median_ms <= t.worst_ms for t in timings)
    assert "≤ 300 ms" in console.export_text()
