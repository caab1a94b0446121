import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.ingest_bench import (
    AIHUB,
    ST_BF16,
    ST_FP32,
    Measurement,
    load_average,
    load_texts,
    measure,
    ratios,
    render,
)

SCIFACT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scifact"


def test_measure_times_every_runner_on_the_same_texts_and_ratios_compare_tokens_per_s():
    seen: dict[str, list[int]] = {}

    def runner(label: str):
        return lambda texts: seen.setdefault(label, []).append(len(texts))

    runners = [(label, "double", runner(label)) for label in (ST_FP32, ST_BF16, AIHUB)]
    measurements = measure(runners, ["a"] * 40, tokens=400, rounds=2)
    assert [m.label for m in measurements] == [ST_FP32, ST_BF16, AIHUB]
    assert all(calls == [32, 40, 40] for calls in seen.values())  # a warm-up, then two rounds
    fixed = [
        Measurement(ST_FP32, "", 4.0, 1000),
        Measurement(ST_BF16, "", 2.0, 1000),
        Measurement(AIHUB, "", 1.0, 1000),
    ]
    assert ratios(fixed) == {
        f"aihub / {ST_FP32}": 4.0,
        f"aihub / {ST_BF16}": 2.0,
        "aihub / faster sentence-transformers": 2.0,
    }
    console = Console(record=True, width=160)
    render(fixed, {"hybrid": {"seconds": 50.0, "tokens": 1000.0, "chunks": 10.0}}, console)
    text = console.export_text()
    assert "1,000" in text and "4.00" in text and "2.00×" in text and "hybrid" in text and "✓" in text


def test_load_texts_reads_title_and_text(tmp_path: Path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"_id": str(i), "title": f"T{i}", "text": f"body {i}"}) for i in range(5)) + "\n"
    )
    assert load_texts(corpus, 2) == ["T0 body 0", "T1 body 1"]
    assert len(load_texts(corpus)) == 5


def test_load_average_is_read_beside_the_figures(tmp_path: Path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.10 2.05 1.50 4/321 999\n")
    assert load_average(loadavg) == "3.10 2.05 1.50"
    assert load_average(tmp_path / "missing") == "unknown"


@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.exists(), reason="needs ../shared/data/scifact")
def test_ingest_command_runs_on_a_small_sample(tmp_path: Path):
    from typer.testing import CliRunner

    from bench.cli import bench_app

    out = tmp_path / "ingest.json"
    result = CliRunner().invoke(
        bench_app,
        ["ingest", "--sample", "16", "--no-whole-corpus", "--json-out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert [r["label"] for r in figures["runners"]] == [ST_FP32, ST_BF16, AIHUB]
    assert all(r["tokens_per_s"] > 0 for r in figures["runners"])
    assert "aihub / faster sentence-transformers" in figures["ratios"]
