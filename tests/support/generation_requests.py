"""Generation requests for engine tests, and running one to the end."""

from __future__ import annotations

from core.chat import ChatMessage, GenerationChunk, GenerationRequest, SamplingParams
from core.engine import Engine


def chat(text: str, **params: object) -> GenerationRequest:
    return GenerationRequest(
        request_id="r",
        params=SamplingParams(**params),  # type: ignore[arg-type]
        messages=(ChatMessage(role="user", content=text),),
    )


def completion(prompt: str, **params: object) -> GenerationRequest:
    return GenerationRequest(request_id="r", params=SamplingParams(**params), prompt=prompt)  # type: ignore[arg-type]


async def run(engine: Engine, request: GenerationRequest) -> tuple[str, list[GenerationChunk]]:
    """The whole text and every chunk."""
    chunks = [chunk async for chunk in engine.generate(request)]
    return "".join(chunk.text for chunk in chunks), chunks
