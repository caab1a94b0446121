"""Answer evaluations of a RAG pipeline through the real gateway app, in-process."""

from pathlib import Path
from typing import Any

import orjson
import pytest

from core.errors import ConflictError
from evals.datasets import push_dataset
from evals.evaluate import EvalRequest, evaluate
from evals.hub_report import hub_report, push_report
from evals.report import REPORT_MD, REPORT_PNG
from evals.run import RESULTS_FILE
from tests.evals import eval_fixtures as F

ANSWERS = "exact_match,f1,citation_recall,refusal_rate"


def qa_hub(tmp_path: Path) -> Any:
    hub = F.make_pipeline_hub(tmp_path)
    F.write_jsonl(tmp_path / "qa" / "qa.jsonl", F.QA_ROWS)
    push_dataset(hub.store, tmp_path / "qa", "datasets/hpc-qa")
    return hub


async def test_pipeline_answers_are_scored_and_pinned(tmp_path: Path) -> None:
    hub = qa_hub(tmp_path)
    out = tmp_path / "run"
    async with F.in_process_client(hub.services) as client:
        result = await evaluate(
            client,
            hub.store,
            EvalRequest(
                target="rag/support", dataset="datasets/hpc-qa", out=out, concurrency=2, metrics=ANSWERS
            ),
        )
    plan, report = result.plan, result.report
    pipeline = hub.store.resolve("pipelines/support:latest")
    assert plan.target.model_id == f"rag/support@{pipeline.digest}"
    # every request named the pipeline by digest, greedy with the plan's seed and budget
    engine = hub.services.engines["tiny"]
    assert len(engine.requests) == 4
    assert {(r.params.temperature, r.params.seed, r.params.max_tokens) for r in engine.requests} == {
        (0.0, 0, 128)
    }
    from hub.lock import resolve_lock

    lock = resolve_lock(hub.store, pipeline.pinned_ref)
    assert report["composition_digest"] == lock.composition_digest
    assert set(report["lock"]["lock"]["artifacts"]) == {e.digest for e in lock.entries}
    assert report["engine"] == {"temperature": 0.0, "max_tokens": 128, "top_p": 1.0, "seed": 0}
    # the keyword retriever finds each machine's page; the extractive double answers with its title
    assert report["metrics"]["exact_match"] == pytest.approx(2 / 3)  # "MareNostrum" ≠ "MareNostrum 5"
    assert report["metrics"]["f1"] == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert report["metrics"]["citation_recall"] == 1.0
    assert report["metrics"]["refusal_rate"] == 1.0
    assert report["counts"]["exact_match"] == 3 and report["counts"]["refusal_rate"] == 1
    records = [orjson.loads(line) for line in (out / RESULTS_FILE).read_bytes().splitlines()]
    assert {r["composition"] for r in records} == {lock.composition_digest}
    assert "| exact_match | 0.6667 | 3 |" in (out / REPORT_MD).read_text()
    assert (out / REPORT_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    attached = push_report(hub.store, out)
    assert [r.digest for r in hub.store.referrers(pipeline.digest)] == [attached.digest]
    assert attached.spec["target"] == pipeline.pinned_ref
    assert hub_report(hub.store, attached.pinned_ref)["metrics"] == report["metrics"]


async def test_same_pinned_run_twice_gives_identical_metrics(tmp_path: Path) -> None:
    hub = qa_hub(tmp_path)
    reports = []
    async with F.in_process_client(hub.services) as client:
        for name in ("a", "b"):
            request = EvalRequest(
                target="rag/support",
                dataset="datasets/hpc-qa",
                out=tmp_path / name,
                plot=False,
                metrics=ANSWERS,
            )
            reports.append((await evaluate(client, hub.store, request)).report)
    assert reports[0]["metrics"] == reports[1]["metrics"]
    assert reports[0]["composition_digest"] == reports[1]["composition_digest"]


async def test_resume_skips_done_items_and_refuses_a_different_pin(tmp_path: Path) -> None:
    hub = qa_hub(tmp_path)
    out = tmp_path / "run"
    request = EvalRequest(
        target="rag/support", dataset="datasets/hpc-qa", out=out, plot=False, metrics=ANSWERS
    )
    async with F.in_process_client(hub.services) as client:
        full = (await evaluate(client, hub.store, request)).report
        lines = (out / RESULTS_FILE).read_bytes().splitlines(keepends=True)
        # an interrupt after two items, the third half written
        (out / RESULTS_FILE).write_bytes(b"".join(lines[:2]) + lines[2][:10])
        engine = hub.services.engines["tiny"]
        engine.requests.clear()
        resumed = await evaluate(client, hub.store, EvalRequest(**{**vars(request), "resume": True}))
        assert len(engine.requests) == 2
        assert resumed.outcome.ran == 2 and resumed.report["metrics"] == full["metrics"]
        with pytest.raises(ConflictError, match="already holds results"):
            await evaluate(client, hub.store, request)
        # the tag moves to another pipeline version: resuming would mix two targets
        F.gateway_doubles().push_pipeline(
            hub,
            template="Q: {{ question }}\n{% for d in documents %}[{{ loop.index }}] {{ d.title }}: {{ d.text }}\n{% endfor %}",
        )
        with pytest.raises(ConflictError, match="pinned plan differs"):
            await evaluate(client, hub.store, EvalRequest(**{**vars(request), "resume": True}))


async def test_a_mirrored_hub_gives_the_same_pinned_numbers(tmp_path: Path) -> None:
    from gateway.services import GatewayServices
    from hub.archive import export_archive, import_archive
    from hub.store import LocalStore

    hub = qa_hub(tmp_path / "site-a")
    site_b = LocalStore(tmp_path / "site-b" / "hub")
    for ref in ("pipelines/support:latest", "datasets/hpc-qa:latest"):
        export_archive(hub.store, ref, tmp_path / "transfer.tar")
        import_archive(site_b, tmp_path / "transfer.tar")
    engine_b = F.ExtractiveEngineDouble(digest=hub.model_digest)
    services_b = GatewayServices(engines={"tiny": engine_b}, indexes=hub.provider, store=site_b)
    reports = []
    for store, services, name in ((hub.store, hub.services, "a"), (site_b, services_b, "b")):
        async with F.in_process_client(services) as client:
            request = EvalRequest(
                target="rag/support", dataset="datasets/hpc-qa", out=tmp_path / name, metrics=ANSWERS
            )
            reports.append((await evaluate(client, store, request)).report)
    a, b = reports
    assert a["metrics"] == b["metrics"] and a["metrics"]["exact_match"] > 0
    assert a["composition_digest"] == b["composition_digest"]
    assert a["target"]["digest"] == b["target"]["digest"] and a["dataset"]["digest"] == b["dataset"]["digest"]
    assert len(engine_b.requests) == 4


async def test_a_gateway_serving_another_composition_stops_the_run(tmp_path: Path) -> None:
    from dataclasses import replace

    from evals.plan import make_plan
    from evals.run import run_eval

    hub = qa_hub(tmp_path)
    plan, dataset = make_plan(hub.store, "rag/support", "datasets/hpc-qa", metrics=ANSWERS)
    forged = replace(plan, composition_digest="sha256:" + "f" * 64)
    async with F.in_process_client(hub.services) as client:
        with pytest.raises(ConflictError, match="does not serve the artifacts pinned here"):
            await run_eval(client, forged, dataset, tmp_path / "run")
