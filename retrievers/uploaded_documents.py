"""An uploaded file's bytes as a Document for the index builder: its id is the OpenAI file id, so
search hits name it (``SearchHit.doc_id``), with its ``filename`` attribute for citations."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from core.errors import InvalidRequestError
from retrievers.documents import Document, read_file

# Read as plain text: the ingestion indexes their text as it stands.
_PLAIN_SUFFIXES = {".json", ".jsonl", ".csv"}


class UnreadableFileError(InvalidRequestError):
    default_code = "invalid_file"


def uploaded_document(
    file_id: str,
    filename: str,
    data: bytes,
    attributes: Mapping[str, Any] | None = None,
    folder: Path | None = None,
) -> Document:
    """Raises ``UnreadableFileError`` when the file holds no text. ``folder``: where the bytes are put for
    the reader a moment (a job's one temporary folder: removing a folder per file cost 3 ms a file)."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="aihub-upload-") as tmp:
            return uploaded_document(file_id, filename, data, attributes, Path(tmp))
    suffix = PurePosixPath(filename).suffix.lower()
    path = folder / f"upload{'.txt' if suffix in _PLAIN_SUFFIXES else suffix}"
    path.write_bytes(data)
    try:
        document = read_file(path, file_id)
    finally:
        path.unlink(missing_ok=True)
    if document is None:
        raise UnreadableFileError(f"{filename} holds no text that can be indexed")
    title = document.title if document.title != "upload" else PurePosixPath(filename).stem
    return replace(
        document,
        title=title,
        source=filename,
        attributes={
            **(attributes or {}),
            "file_id": file_id,
            "filename": filename,
            "extension": suffix.lstrip("."),
        },
    )
