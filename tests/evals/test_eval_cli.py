"""`aihub eval dataset push | run | compare | gate` through typer, with the embedded gateway in-process.

The engine is the fixed-latency double (it answers "tok0 tok1 …"), served as a plain model whose
weights artifact stands in the hub.
"""

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

import aihub.eval_run_cli  # noqa: F401  (adds run/compare/gate/dataset to eval_app)
from aihub.eval_cli import eval_app

runner = CliRunner()


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    from hub.store import LocalStore
    from ray_cluster.config import load_config

    config = tmp_path / "aihub.yaml"
    model = {"id": "double", "engine": "fixed-latency", "options": {"ttft_s": 0.0, "itl_s": 0.0, "tokens": 4}}
    app = {"home": str(tmp_path / "home"), "models": [model], "embedders": [], "prepare_defaults": False}
    config.write_text(yaml.safe_dump({"app": app}))
    store = LocalStore(load_config(config).hub)
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"double")
    store.push(
        "model", "models/double", {"files": ["w.bin"], "context_length": 4096}, files={"w.bin": weights}
    )
    qa = tmp_path / "qa"
    qa.mkdir()
    rows = [
        {"id": "1", "question": "first two tokens?", "answer": "tok0 tok1"},
        {"id": "2", "question": "something else", "answer": "tok0"},
        {"id": "3", "question": "a third", "answer": "Bologna"},
    ]
    (qa / "qa.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return {"config": str(config), "store": store, "qa": qa, "tmp": tmp_path}


def invoke(*args: str) -> Any:
    result = runner.invoke(eval_app, list(args))
    return result


def test_push_run_show_compare_and_gate(setup: dict[str, Any]) -> None:
    config, tmp = setup["config"], setup["tmp"]
    pushed = invoke("dataset", "push", str(setup["qa"]), "--name", "datasets/qa", "--config", config)
    assert pushed.exit_code == 0, pushed.output
    assert pushed.stdout.strip().startswith("sha256:")

    common = [
        "--target",
        "models/double",
        "--served-model",
        "double",
        "--dataset",
        "datasets/qa",
        "--config",
        config,
    ]
    run = invoke("run", *common, "--max-tokens", "2", "--out", str(tmp / "a"), "--push", "--json")
    assert run.exit_code == 0, run.output
    report = orjson.loads(run.stdout)
    assert report["metrics"]["exact_match"] == pytest.approx(1 / 3)  # "tok0 tok1" answers question 1
    assert report["engine"]["max_tokens"] == 2 and report["engine"]["temperature"] == 0.0

    model = setup["store"].resolve("models/double")
    referrers = setup["store"].referrers(model.digest)
    assert [r.kind for r in referrers] == ["eval-report"]
    assert referrers[0].spec["metrics"]["exact_match"] == pytest.approx(1 / 3)

    from aihub.hub_cli import hub_app

    shown = runner.invoke(hub_app, ["--home", str(tmp / "home"), "show", "models/double", "--json"])
    assert shown.exit_code == 0, shown.output
    assert [r["kind"] for r in orjson.loads(shown.stdout)["referrers"]] == ["eval-report"]

    # the gate passes against its own baseline, and fails when the baseline was better
    gate = invoke(
        "gate",
        "--target",
        "models/double",
        "--baseline",
        str(tmp / "a"),
        "--candidate",
        str(tmp / "a"),
        "--config",
        config,
    )
    assert gate.exit_code == 0, gate.output
    better = orjson.loads((tmp / "a" / "report.json").read_bytes())
    better["metrics"]["exact_match"] += 0.02
    (tmp / "better.json").write_bytes(orjson.dumps(better))
    failed = invoke(
        "gate",
        "--target",
        "models/double",
        "--baseline",
        str(tmp / "better.json"),
        "--max-drop",
        "0.01",
        "--config",
        config,
        "--out",
        str(tmp / "gate"),
    )
    assert failed.exit_code == 1, failed.output
    assert "exact_match" in failed.output

    # a second run with another budget: compare shows the per-query delta
    other = invoke("run", *common, "--max-tokens", "1", "--out", str(tmp / "b"), "--no-plot")
    assert other.exit_code == 0, other.output
    compared = invoke(
        "compare", str(tmp / "a"), str(tmp / "b"), "--json", "--samples", "500", "--plot", str(tmp / "c.png")
    )
    assert compared.exit_code == 0, compared.output
    rows = {row["metric"]: row for row in orjson.loads(compared.stdout)}
    assert rows["exact_match"]["delta"] == pytest.approx(0.0)  # "tok0" now matches question 2 instead of 1
    assert rows["exact_match"]["wins"] == 1 and rows["exact_match"]["losses"] == 1
    assert (tmp / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_errors_are_one_line_and_exit_1(setup: dict[str, Any]) -> None:
    result = invoke(
        "run",
        "--target",
        "rag/missing",
        "--dataset",
        "datasets/qa",
        "--config",
        setup["config"],
        "--out",
        str(setup["tmp"] / "x"),
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output
