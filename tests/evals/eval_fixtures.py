"""Helpers for the eval tests (loaded by path: tests have no packages).

The LLM is an ``ExtractiveEngineDouble`` (the real model is too slow for fast tests): it answers with the
title of the first document the pipeline put in its prompt, or refuses when there is none.
Index and retrieval doubles come from the gateway tests' ``composition_doubles`` where a real index is
not needed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from evals.client import GatewayClient
from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings

_FIRST_DOC = re.compile(r"^\[1\] ([^:\n]+):", re.MULTILINE)


def gateway_doubles() -> Any:
    from tests.gateway import composition_doubles

    return composition_doubles


class ExtractiveEngineDouble:
    """Answers with the first rendered document's title; ``I don't know`` without documents."""

    def __init__(self, model_id: str = "tiny", digest: str | None = None) -> None:
        self._info = ModelInfo(id=model_id, context_length=4096, digest=digest)
        self.requests: list[GenerationRequest] = []

    @property
    def info(self) -> ModelInfo:
        return self._info

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        self.requests.append(request)
        prompt = request.messages[-1].content if request.messages else (request.prompt or "")
        found = _FIRST_DOC.search(prompt)
        text = found.group(1).strip() if found else "I don't know."
        yield GenerationChunk(
            text=text, finish_reason="stop", prompt_tokens=len(prompt.split()), completion_tokens=1
        )


def write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


QA_ROWS = [
    {"id": "leo", "question": "Which supercomputer is in Bologna?", "answer": "Leonardo", "doc_ids": ["d1"]},
    {
        "id": "lumi",
        "question": "Which EuroHPC machine is in Kajaani Finland?",
        "answer": "LUMI",
        "doc_ids": ["d2"],
    },
    {
        "id": "mn5",
        "question": "What is hosted in Barcelona Spain?",
        "answer": "MareNostrum 5",
        "doc_ids": ["d3"],
    },
    {"id": "mars", "question": "zzz qqq?", "answerable": False},
]


def make_pipeline_hub(root: Path) -> Any:
    """A real LocalStore with model, keyword index, prompt and pipeline; the engine is extractive."""
    doubles = gateway_doubles()
    hub = doubles.make_hub(root, ["unused"])
    engine = ExtractiveEngineDouble(digest=hub.model_digest)
    hub.services.engines = {"tiny": engine}
    doubles.push_pipeline(hub)
    return hub


@asynccontextmanager
async def in_process_client(services: GatewayServices) -> AsyncIterator[GatewayClient]:
    app = create_app(GatewaySettings(), services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://aihub.test") as http:
            yield GatewayClient(http)


TOPICS = [
    ("leonardo", "Leonardo supercomputer Bologna Italy CINECA pre-exascale"),
    ("lumi", "LUMI supercomputer Kajaani Finland CSC AMD GPUs"),
    ("marenostrum", "MareNostrum Barcelona Spain BSC chapel"),
    ("jupiter", "JUPITER exascale Juelich Germany booster module"),
    ("karolina", "Karolina Ostrava Czech IT4Innovations"),
    ("vega", "Vega Maribor Slovenia IZUM petascale"),
    ("deucalion", "Deucalion Guimaraes Portugal ARM"),
    ("meluxina", "MeluXina Bissen Luxembourg LuxProvide"),
]


def write_beir(folder: Path) -> Path:
    """24 documents (3 per machine, sharing words), 8 queries with graded qrels (split ``test``)."""
    docs, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for number, (name, words) in enumerate(TOPICS):
        vocabulary = words.split()
        for part in range(3):
            doc_id = f"{name}-{part}"
            text = " ".join(vocabulary[: len(vocabulary) - part]) + f" report volume {part} hpc europe"
            docs.append({"_id": doc_id, "title": f"{vocabulary[0]} {part}", "text": text})
        queries.append({"_id": f"q{number}", "text": f"{vocabulary[0]} {vocabulary[-1]} {vocabulary[1]}"})
        other = TOPICS[(number + 1) % len(TOPICS)][0]  # judged relevant, but shares no query word
        qrels += [f"q{number}\t{name}-2\t2", f"q{number}\t{name}-0\t1", f"q{number}\t{other}-1\t1"]
    write_jsonl(folder / "corpus.jsonl", docs)
    write_jsonl(folder / "queries.jsonl", queries)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return folder


def push_bm25_index(store: Any, corpus: Path, name: str = "indexes/machines") -> Any:
    """A real BM25 index artifact built from a BEIR corpus file."""
    import tempfile

    from retrievers.documents import read_jsonl
    from retrievers.index_builder import BuildOptions, build_index

    with tempfile.TemporaryDirectory() as tmp:
        built = build_index(read_jsonl(corpus), Path(tmp) / "index", BuildOptions(backend="bm25"))
        files = {relative: built.folder / relative for relative in built.files}
        return store.push("index", name, built.spec, files)


def index_services(store: Any) -> GatewayServices:
    from retrievers.index_provider import HubIndexProvider

    return GatewayServices(indexes=HubIndexProvider(store, {}), store=store)
