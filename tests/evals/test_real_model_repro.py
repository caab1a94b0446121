"""With the real model (SmolLM2-135M on CPU): the same pinned evaluation twice gives identical answers and
metrics at temperature 0."""

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from rich.console import Console

from evals.datasets import push_dataset
from evals.evaluate import EvalRequest, evaluate
from evals.plan import EngineSettings
from evals.run import RESULTS_FILE
from tests.evals import eval_fixtures as F

pytestmark = pytest.mark.slow


TEMPLATE = (
    "Answer with the name of the machine only.\n"
    "{% for d in documents %}[{{ loop.index }}] {{ d.title }}: {{ d.text }}\n{% endfor %}"
    "Question: {{ question }}"
)


async def test_real_model_pipeline_evaluates_identically_twice(tmp_path: Path) -> None:
    from aihub.compose import build_engine, open_store
    from aihub.default_models import ensure_default_models
    from gateway.services import GatewayServices
    from ray_cluster.config import load_config
    from retrievers.index_provider import HubIndexProvider

    config = tmp_path / "aihub.yaml"
    config.write_text(yaml.safe_dump({"app": {"home": str(tmp_path / "home"), "embedders": []}}))
    settings = load_config(config)
    store: Any = open_store(settings)
    ensure_default_models(store, settings.app, Console(stderr=True))
    engine = build_engine(settings.app.models[0], settings, store)

    folder = F.write_beir(tmp_path / "beir")
    F.push_bm25_index(store, folder / "corpus.jsonl")
    prompt = store.push(
        "prompt", "prompts/machines", {"template": TEMPLATE, "variables": ["question", "documents"]}
    )
    store.push(
        "pipeline",
        "pipelines/machines",
        {
            "model": "models/smollm2-135m-instruct:latest",
            "prompt": prompt.pinned_ref,
            "indices": ["indexes/machines:latest"],
            "retrieval": {"top_k": 2, "mode": "bm25"},
        },
    )
    rows = [
        {
            "id": "leo",
            "question": "Which supercomputer is in Bologna Italy?",
            "answer": "Leonardo",
            "doc_ids": ["leonardo-0", "leonardo-1", "leonardo-2"],
        },
        {
            "id": "lumi",
            "question": "Which supercomputer is in Kajaani Finland?",
            "answer": "LUMI",
            "doc_ids": ["lumi-0", "lumi-1", "lumi-2"],
        },
        {"id": "none", "question": "Which supercomputer is on the Moon?", "answerable": False},
    ]
    F.write_jsonl(tmp_path / "qa" / "qa.jsonl", rows)
    push_dataset(store, tmp_path / "qa", "datasets/machines-qa")

    services = GatewayServices(
        engines={engine.info.id: engine}, indexes=HubIndexProvider(store, {}), store=store
    )
    reports, answers = [], []
    async with F.in_process_client(services) as client:
        for name in ("first", "second"):
            request = EvalRequest(
                target="rag/machines",
                dataset="datasets/machines-qa",
                out=tmp_path / name,
                metrics="exact_match,f1,citation_recall,refusal_rate",
                engine=EngineSettings(max_tokens=16, seed=7),
                concurrency=2,
                plot=False,
            )
            reports.append((await evaluate(client, store, request)).report)
            lines = (tmp_path / name / RESULTS_FILE).read_bytes().splitlines()
            answers.append({r["id"]: r["answer"] for r in map(orjson.loads, lines)})
    print("answers", answers[0], "metrics", reports[0]["metrics"])
    assert answers[0] == answers[1]
    assert all(text for text in answers[0].values())
    assert reports[0]["metrics"] == reports[1]["metrics"]
    assert reports[0]["composition_digest"] == reports[1]["composition_digest"]
    # top_k 2: two of each machine's three pages are cited
    assert reports[0]["metrics"]["citation_recall"] == pytest.approx(2 / 3)
