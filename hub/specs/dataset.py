"""A dataset (eval questions, a corpus): files and what they hold."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.specs.base import RelativePath, SpecBase


class DatasetSpec(SpecBase):
    format: Literal["jsonl", "json", "csv", "parquet", "text", "pdf", "mixed"] = "jsonl"
    files: list[RelativePath] = Field(min_length=1)
    records: int | None = Field(default=None, ge=0)
    fields: list[str] = Field(default_factory=list)
    license: str | None = None
