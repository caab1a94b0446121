"""Test doubles and hub fixtures for pipeline and agent tests (loaded by `load_doubles()` in each file).

The hub is the real LocalStore. The engine is a ScriptedEngineDouble (the real model is too slow for
fast tests); retrievers are KeywordRetrieverDouble because gateway tests may not build real backends.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from core.errors import ContextLengthExceededError
from core.refs import ArtifactRef
from core.retrieval import Filter, IndexInfo, SearchHit, SearchMode
from gateway.services import GatewayServices
from hub.store import LocalStore

_WORD = re.compile(r"\w+")


class ScriptedEngineDouble:
    """Returns scripted outputs in order (the last one repeats); records every request it gets."""

    def __init__(
        self,
        outputs: Sequence[str],
        model_id: str = "tiny",
        context_length: int = 2048,
        digest: str | None = None,
    ) -> None:
        self.outputs = list(outputs)
        self.requests: list[GenerationRequest] = []
        self._info = ModelInfo(id=model_id, context_length=context_length, digest=digest)

    @property
    def info(self) -> ModelInfo:
        return self._info

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def prompt_tokens(self, request: GenerationRequest) -> int:
        text = "".join(m.content for m in request.messages or ()) + (request.prompt or "")
        return math.ceil(len(text) / 4)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        tokens = self.prompt_tokens(request)
        if tokens > self._info.context_length:
            raise ContextLengthExceededError(f"{tokens} tokens > {self._info.context_length}")
        self.requests.append(request)
        output = self.outputs.pop(0) if len(self.outputs) > 1 else self.outputs[0]
        half = len(output) // 2
        yield GenerationChunk(text=output[:half], prompt_tokens=tokens, completion_tokens=1)
        yield GenerationChunk(
            text=output[half:], finish_reason="stop", prompt_tokens=tokens, completion_tokens=2
        )


@dataclass
class KeywordRetrieverDouble:
    """Scores documents by shared words with the query."""

    docs: Sequence[Mapping[str, str]]  # doc_id, title, text, source
    digest: str = "sha256:" + "0" * 64
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def info(self) -> IndexInfo:
        return IndexInfo(
            ref="indexes/kb",
            digest=self.digest,
            backend="keyword",
            embedder_digest=None,
            documents=len(self.docs),
            chunks=len(self.docs),
        )

    async def search(
        self, query: str, *, top_k: int = 10, filters: Filter | None = None, mode: SearchMode | None = None
    ) -> list[SearchHit]:
        self.calls.append({"query": query, "top_k": top_k, "filters": filters, "mode": mode})
        return self.search_batch([query], top_k=top_k)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        top_k: int = 10,
        filters: Filter | None = None,
        mode: SearchMode | None = None,
    ) -> list[list[SearchHit]]:
        results = []
        for query in queries:
            words = set(_WORD.findall(query.lower()))
            scored = []
            for doc in self.docs:
                overlap = len(words & set(_WORD.findall(doc["text"].lower())))
                if overlap:
                    scored.append(
                        SearchHit(
                            doc_id=doc["doc_id"],
                            chunk_id=doc["doc_id"] + "#0",
                            text=doc["text"],
                            score=overlap / max(1, len(words)),
                            title=doc.get("title", ""),
                            source=doc.get("source", ""),
                        )
                    )
            results.append(sorted(scored, key=lambda h: -h.score)[:top_k])
        return results


class IndexProviderDouble:
    """Opens index artifacts by digest to prepared retrievers; counts opens."""

    def __init__(self, by_digest: Mapping[str, KeywordRetrieverDouble]) -> None:
        self.by_digest = dict(by_digest)
        self.opened: list[str] = []

    def list(self) -> list[IndexInfo]:
        return [r.info for r in self.by_digest.values()]

    async def open(self, ref: str) -> KeywordRetrieverDouble:
        self.opened.append(ref)
        digest = ArtifactRef.parse(ref).digest
        assert digest is not None, "the gateway opens indices by pinned reference"
        return self.by_digest[digest]


DOCS = [
    {
        "doc_id": "d1",
        "title": "Leonardo",
        "source": "kb/leonardo.md",
        "text": "Leonardo is the EuroHPC supercomputer hosted by CINECA in Bologna, Italy.",
    },
    {
        "doc_id": "d2",
        "title": "LUMI",
        "source": "kb/lumi.md",
        "text": "LUMI is the EuroHPC supercomputer hosted by CSC in Kajaani, Finland.",
    },
    {
        "doc_id": "d3",
        "title": "MareNostrum",
        "source": "kb/mn5.md",
        "text": "MareNostrum 5 is hosted by the Barcelona Supercomputing Center in Spain.",
    },
]
RAG_TEMPLATE = (
    "Documents:\n{% for d in documents %}[{{ loop.index }}] {{ d.title }}: {{ d.text }}\n{% endfor %}"
    "Question: {{ question }}"
)


@dataclass
class Hub:
    store: LocalStore
    model_digest: str
    index_digest: str
    services: GatewayServices
    engine: ScriptedEngineDouble
    retriever: KeywordRetrieverDouble
    provider: IndexProviderDouble


def make_hub(
    root: Path,
    outputs: Sequence[str],
    context_length: int = 2048,
    docs: Sequence[Mapping[str, str]] = tuple(DOCS),
) -> Hub:
    store = LocalStore(root / "hub")
    weights = root / "model.safetensors"
    weights.write_bytes(b"not really weights")
    model = store.push(
        "model",
        "models/tiny",
        {"files": ["model.safetensors"], "context_length": context_length},
        files={"model.safetensors": weights},
    )
    index = store.push("index", "indexes/kb", {"backend": "bm25", "counts": {"documents": len(docs)}})
    engine = ScriptedEngineDouble(outputs, context_length=context_length, digest=model.digest)
    retriever = KeywordRetrieverDouble(docs, digest=index.digest)
    provider = IndexProviderDouble({index.digest: retriever})
    services = GatewayServices(engines={"tiny": engine}, indexes=provider, store=store)
    return Hub(store, model.digest, index.digest, services, engine, retriever, provider)


def push_pipeline(
    hub: Hub,
    name: str = "pipelines/support",
    template: str = RAG_TEMPLATE,
    tags: Sequence[str] = ("latest",),
    **extra: Any,
) -> str:
    prompt = hub.store.push(
        "prompt", "prompts/support", {"template": template, "variables": ["question", "documents", "history"]}
    )
    spec = {
        "model": "models/tiny:latest",
        "prompt": prompt.pinned_ref,
        "indices": ["indexes/kb:latest"],
        **extra,
    }
    return hub.store.push("pipeline", name, spec, tags=tags).digest
