"""Splitting documents into overlapping chunks of whitespace-separated words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidRequestError
from retrievers.documents import Document

_WORD = re.compile(r"\S+")

DEFAULT_CHUNK_WORDS = 200  # about 256 MiniLM tokens, the embedder's input limit
DEFAULT_OVERLAP_WORDS = 40


@dataclass(frozen=True, slots=True)
class Chunking:
    size: int = DEFAULT_CHUNK_WORDS  # words per chunk
    overlap: int = DEFAULT_OVERLAP_WORDS
    split_passages: bool = False  # also split records of passage corpora (JSONL)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise InvalidRequestError("chunk size must be positive", param="chunk_size")
        if not 0 <= self.overlap < self.size:
            raise InvalidRequestError("chunk overlap must be >= 0 and < chunk size", param="chunk_overlap")

    def as_spec(self) -> dict[str, object]:
        return {
            "unit": "words",
            "size": self.size,
            "overlap": self.overlap,
            "split_passages": self.split_passages,
        }


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str
    document: Document
    text: str  # the chunk's own text (without the title)

    @property
    def indexed_text(self) -> str:
        """What is embedded and BM25-indexed: the title gives every chunk its document's context."""
        return f"{self.document.title} {self.text}".strip() if self.document.title else self.text


def split(document: Document, chunking: Chunking) -> list[Chunk]:
    if document.is_passage and not chunking.split_passages:
        return [Chunk(f"{document.doc_id}#0", document, document.text)]
    spans = [m.span() for m in _WORD.finditer(document.text)]
    if len(spans) <= chunking.size:
        return [Chunk(f"{document.doc_id}#0", document, document.text.strip())]
    chunks: list[Chunk] = []
    step = chunking.size - chunking.overlap
    for n, start in enumerate(range(0, len(spans), step)):
        window = spans[start : start + chunking.size]
        chunks.append(Chunk(f"{document.doc_id}#{n}", document, document.text[window[0][0] : window[-1][1]]))
        if start + chunking.size >= len(spans):
            break
    return chunks
