"""`aihub bench files` end to end on a few files: both sides run and the figures add up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.files_bench import run_files_bench, write_files

CORPUS = [
    {"_id": f"d{n}", "title": f"Title {n}", "text": f"Abstract number {n} about topic {n % 3}."}
    for n in range(8)
]


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in CORPUS))
    return path


def test_write_files_takes_the_first_records_as_text_files(tmp_path: Path) -> None:
    paths = write_files(_corpus(tmp_path), tmp_path / "files", 3)
    assert [p.name for p in paths] == ["d0.txt", "d1.txt", "d2.txt"]
    assert paths[1].read_text() == "Title 1\n\nAbstract number 1 about topic 1.\n"


@pytest.mark.slow
def test_the_benchmark_times_both_paths_on_the_same_files(tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    figures = run_files_bench(_corpus(tmp_path), 5, console, work=tmp_path / "work", rounds=2)
    assert figures["files"] == 5 and figures["rounds"] == 2
    assert figures["api_s"] > 0 and figures["cli_build_s"] > 0 and figures["cli_process_s"] > 0
    assert figures["ratio_vs_cli_build"] == pytest.approx(figures["api_s"] / figures["cli_build_s"])
    assert "API <= 1.2x aihub index build" in console.export_text()
