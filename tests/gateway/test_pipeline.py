"""RAG pipelines resolved from the real hub store: retrieval, rendering, citations, tags and digests."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from core.errors import EngineUnavailableError, InvalidRequestError
from gateway.composition import COMPOSITION_HEADER, CompositionResolver, hub_ref, model_id_for
from tests.gateway import composition_doubles as D


@dataclass(frozen=True, slots=True)
class OptionsRequest(GenerationRequest):
    """GenerationRequest with the proposed ``options`` field (the body's ``aihub`` object)."""

    options: Mapping[str, Any] = field(default_factory=dict)


def ask(question: str, **options: Any) -> GenerationRequest:
    return OptionsRequest(
        request_id="r1",
        params=SamplingParams(),
        messages=(ChatMessage(role="user", content=question),),
        options=options,
    )


async def run(target: Any, request: GenerationRequest) -> list[Any]:
    return [chunk async for chunk in target.engine.generate(request)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_model_ids_map_to_hub_references() -> None:
    assert str(hub_ref("rag/support:prod")[1]) == "pipelines/support:prod"
    assert str(hub_ref("rag/support")[1]) == "pipelines/support:latest"
    assert hub_ref("agent/helpdesk")[0] == "agent"
    assert str(hub_ref("rag/team/qa@sha256:" + "a" * 64)[1]) == "team/qa@sha256:" + "a" * 64
    assert hub_ref("smollm2-135m-instruct") is None
    assert model_id_for("pipeline", "pipelines/support") == "rag/support"
    assert model_id_for("pipeline", "team/qa") == "rag/team/qa"


async def test_pipeline_retrieves_renders_and_cites(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["Leonardo is in Bologna [1]."])
    D.push_pipeline(hub, retrieval={"top_k": 2})
    resolver = CompositionResolver(hub.services)
    target = await resolver.resolve("rag/support")
    assert target is not None
    assert target.headers[COMPOSITION_HEADER].startswith("sha256:")
    chunks = await run(target, ask("Where is the Leonardo supercomputer hosted?"))
    first = chunks[0]
    assert first.citations[0].doc_id == "d1"
    assert first.citations[0].snippet and first.citations[0].title
    assert "".join(c.text for c in chunks) == "Leonardo is in Bologna [1]."
    assert chunks[-1].finish_reason == "stop"
    prompt = hub.engine.requests[0].messages[-1].content
    assert "Question: Where is the Leonardo supercomputer hosted?" in prompt
    assert "[1] Leonardo: Leonardo is the EuroHPC supercomputer hosted by CINECA" in prompt
    assert hub.retriever.calls[0]["top_k"] == 2


async def test_request_overrides_top_k_and_threshold(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    D.push_pipeline(hub, retrieval={"top_k": 3})
    target = await CompositionResolver(hub.services).resolve("rag/support")
    chunks = await run(target, ask("EuroHPC supercomputer hosted", top_k=1))
    assert hub.retriever.calls[-1]["top_k"] == 1
    assert len(chunks[0].citations) == 1
    chunks = await run(target, ask("EuroHPC Bologna", min_score=0.9))  # d1 scores 1.0, d2 0.5
    assert [c.doc_id for c in chunks[0].citations] == ["d1"]
    with pytest.raises(InvalidRequestError) as info:
        await run(target, ask("x", top_k=0))
    assert info.value.param == "aihub.top_k"


async def test_documents_are_trimmed_to_the_context_never_an_error(tmp_path: Path) -> None:
    long_docs = [
        {"doc_id": f"long{i}", "title": f"T{i}", "source": "s", "text": "supercomputer " * 400}
        for i in range(5)
    ]
    hub = D.make_hub(tmp_path, ["short answer"], context_length=1024, docs=long_docs)
    D.push_pipeline(hub, retrieval={"top_k": 5}, generation={"max_tokens": 100})
    target = await CompositionResolver(hub.services).resolve("rag/support")
    chunks = await run(target, ask("supercomputer?"))
    assert 1 <= len(chunks[0].citations) < 5  # some documents shown, the rest trimmed
    sent = hub.engine.requests[0]
    assert sent.params.max_tokens == 100  # the pipeline's generation default
    text = "".join(m.content for m in sent.messages)
    assert len(text) / 3 + 100 <= 1024  # the conservative estimate fits, with room for the answer


async def test_tag_moves_are_seen_and_digest_pins_hold(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    first = D.push_pipeline(hub, tags=("latest", "prod"))
    clock = Clock()
    resolver = CompositionResolver(hub.services, tag_ttl_s=1.0, clock=clock)
    before = (await resolver.resolve("rag/support:prod")).headers[COMPOSITION_HEADER]
    pinned = f"rag/support@{first}"
    assert (await resolver.resolve(pinned)).headers[COMPOSITION_HEADER] == before
    D.push_pipeline(hub, tags=("prod",), retrieval={"top_k": 1})  # a new version takes the tag
    assert (await resolver.resolve("rag/support:prod")).headers[COMPOSITION_HEADER] == before  # within TTL
    clock.now += 1.5
    after = (await resolver.resolve("rag/support:prod")).headers[COMPOSITION_HEADER]
    assert after != before
    assert (await resolver.resolve(pinned)).headers[COMPOSITION_HEADER] == before


async def test_compositions_are_cached_by_digest(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    D.push_pipeline(hub)
    resolver = CompositionResolver(hub.services)
    one = await resolver.composition("rag/support")
    two = await resolver.composition("rag/support:latest")
    assert one is two
    assert len(hub.provider.opened) == 1  # the index is opened once, not per request


async def test_pipelines_and_agents_are_listed(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    D.push_pipeline(hub, tags=("latest", "prod"))
    hub.store.push("agent", "agents/helpdesk", {"model": "models/tiny:latest", "max_steps": 2})
    ids = [entry.id for entry in CompositionResolver(hub.services).entries()]
    assert ids == ["agent/helpdesk", "rag/support", "rag/support:prod"]


async def test_unknown_ids_pass_and_unserved_models_fail_clearly(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    D.push_pipeline(hub)
    resolver = CompositionResolver(hub.services)
    assert await resolver.resolve("tiny") is None
    hub.services.engines = {}
    with pytest.raises(EngineUnavailableError, match="models/tiny"):
        await resolver.resolve("rag/support")


async def test_missing_question_is_a_request_error(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    D.push_pipeline(hub)
    target = await CompositionResolver(hub.services).resolve("rag/support")
    request = GenerationRequest(
        request_id="r", params=SamplingParams(), messages=(ChatMessage(role="system", content="hi"),)
    )
    with pytest.raises(InvalidRequestError, match="user message"):
        await run(target, request)
