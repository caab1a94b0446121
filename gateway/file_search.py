"""The ``file_search`` tool of ``/v1/responses``: search the named vector stores (hub indices), put the
results into the model's context, and turn the citations the model writes into annotations.

The gateway searches once per request, before generating, with the text of the newest user message as
the query (small models do not call tools reliably; the answer never depends on one deciding to). The
model is asked to cite a result by its number in square brackets (``[2]``); each marker it writes
becomes a ``file_citation`` annotation whose ``index`` is the marker's position in the text (markers
stay in the text, so a streamed answer and the stored one agree). An answer without any marker gets
one annotation per file in its context, at the end of the text: it was answered from those files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from opentelemetry import trace

from core.errors import AihubError, InvalidReferenceError, NotFoundError
from core.retrieval import SearchHit
from gateway.protocol.response_tools import FileSearchTool
from gateway.retrieval_step import RetrievalSettings, parse_filter, retrieve
from gateway.state import GatewayState
from gateway.vector_store_access import open_vector_store

CONTEXT_CHARS = 2000  # of one result, in the model's context (the stored result keeps its whole text)
_MARKER = re.compile(r"\[(\d{1,2})\]")


class VectorStoreNotFoundError(NotFoundError):
    default_code = "vector_store_not_found"


@dataclass(frozen=True, slots=True)
class FileSearchResult:
    file_id: str
    filename: str
    text: str
    score: float
    attributes: dict[str, Any]

    def as_wire(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "filename": self.filename,
            "text": self.text,
            "score": self.score,
            "attributes": self.attributes,
        }


def _attributes(hit: SearchHit) -> dict[str, Any]:
    # OpenAI's attribute values are strings, numbers or booleans.
    return {k: v for k, v in hit.attributes.items() if isinstance(v, str | int | float | bool)}


def result_of(hit: SearchHit) -> FileSearchResult:
    """A hit of a store built from uploaded files carries the file id and name in its attributes; a
    hit of any other hub index is named by its document id, title or source."""
    file_id = hit.attributes.get("file_id")
    filename = hit.attributes.get("filename")
    if not isinstance(filename, str) or not filename:
        filename = hit.title or (PurePosixPath(hit.source).name if hit.source else hit.doc_id)
    return FileSearchResult(
        file_id=file_id if isinstance(file_id, str) and file_id else hit.doc_id,
        filename=filename,
        text=hit.text,
        score=round(float(hit.score), 6),
        attributes=_attributes(hit),
    )


async def search(
    state: GatewayState, project: str, tool: FileSearchTool, query: str, tracer: trace.Tracer
) -> list[FileSearchResult]:
    """Every store of ``tool`` searched together (ranks fused across stores). An unknown store, or
    another project's ``vs_…`` store, is a 404 naming it, before anything is generated.

    A store opened for the project is reused for ``composition_tag_ttl_s`` (as ``rag/`` tags are): a
    tag moved or a store changed meanwhile is seen that much later, and a request saves the lookups."""
    retrievers = []
    max_age_s = state.settings.composition_tag_ttl_s
    for store_id in tool.vector_store_ids:
        retriever = state.opened_stores.get((project, store_id), max_age_s)
        if retriever is not None:
            retrievers.append(retriever)
            continue
        try:
            retriever = await open_vector_store(state.services, project, store_id)
        except (NotFoundError, InvalidReferenceError):  # not a store name at all: as unknown as a typo
            raise VectorStoreNotFoundError(
                f"Vector store with id '{store_id}' not found.", param="tools"
            ) from None
        except AihubError as exc:
            exc.param = exc.param or "tools"
            raise
        state.opened_stores.put((project, store_id), retriever)
        retrievers.append(retriever)
    settings = RetrievalSettings(
        top_k=tool.max_num_results,
        filters=parse_filter(tool.filters, "tools.filters") if tool.filters else None,
        min_score=tool.ranking_options.score_threshold if tool.ranking_options else None,
    )
    hits = await retrieve(tracer, retrievers, query, settings)
    return [result_of(hit) for hit in hits]


def context_text(results: Sequence[FileSearchResult]) -> str:
    """The system text that hands the results to the model and asks for numbered citations."""
    if not results:
        return "A file search found nothing relevant to the question. Say so if you cannot answer."
    blocks = []
    for number, result in enumerate(results, start=1):
        text = result.text if len(result.text) <= CONTEXT_CHARS else result.text[:CONTEXT_CHARS] + "…"
        blocks.append(f"[{number}] {result.filename}\n{text}")
    return (
        "Answer using the file search results below. After a sentence that uses a result, cite it by "
        "its number in square brackets, for example [1].\n\n" + "\n\n".join(blocks)
    )


def file_citations(text: str, results: Sequence[FileSearchResult]) -> list[dict[str, Any]]:
    """``file_citation`` annotations for the markers in ``text`` (see the module docstring)."""
    found: list[dict[str, Any]] = []
    for match in _MARKER.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= len(results):
            found.append(_citation(results[number - 1], match.end()))
    if found or not results:
        return found
    seen: dict[str, FileSearchResult] = {}
    for result in results:
        seen.setdefault(result.file_id, result)
    return [_citation(result, len(text)) for result in seen.values()]


def _citation(result: FileSearchResult, index: int) -> dict[str, Any]:
    return {"type": "file_citation", "file_id": result.file_id, "filename": result.filename, "index": index}
