"""The chunks of an index, in vector order: ids, text, title, source and filterable attributes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import IntegrityError
from core.retrieval import SearchHit
from retrievers.chunking import Chunk

CHUNKS_FILE = "chunks.jsonl"


@dataclass(frozen=True, slots=True)
class ChunkRow:
    chunk_id: str
    doc_id: str
    text: str
    title: str
    source: str
    attributes: Mapping[str, Any]

    @property
    def indexed_text(self) -> str:
        return f"{self.title} {self.text}".strip() if self.title else self.text

    def hit(self, score: float) -> SearchHit:
        # Positional: keyword parsing is a measurable share of a search on small indices.
        return SearchHit(
            self.doc_id, self.chunk_id, self.text, score, self.title, self.source, self.attributes
        )

    @classmethod
    def of(cls, chunk: Chunk) -> ChunkRow:
        d = chunk.document
        return cls(chunk.chunk_id, d.doc_id, chunk.text, d.title, d.source, dict(d.attributes))


class ChunkTable:
    def __init__(self, rows: Sequence[ChunkRow]) -> None:
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def documents(self) -> int:
        return len({row.doc_id for row in self.rows})

    def write(self, folder: Path) -> Path:
        path = folder / CHUNKS_FILE
        with path.open("w") as out:
            for r in self.rows:
                record = {
                    "chunk_id": r.chunk_id,
                    "doc_id": r.doc_id,
                    "text": r.text,
                    "title": r.title,
                    "source": r.source,
                    "attributes": dict(r.attributes),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def read(cls, folder: Path) -> ChunkTable:
        path = folder / CHUNKS_FILE
        try:
            with path.open() as lines:
                records = [json.loads(line) for line in lines if line.strip()]
            rows = [
                ChunkRow(
                    r["chunk_id"], r["doc_id"], r["text"], r["title"], r["source"], r.get("attributes", {})
                )
                for r in records
            ]
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise IntegrityError(f"index chunk table {path} is unreadable: {exc}") from exc
        return cls(rows)
