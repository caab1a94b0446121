"""Reading sources into documents: folders of text/Markdown/HTML/PDF files and BEIR JSONL corpora."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from core.errors import InvalidRequestError

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
JSONL_SUFFIXES = {".jsonl"}
SCALAR = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # Records of a JSONL corpus are passages already (BEIR's convention): not split by default.
    is_passage: bool = False


class _HtmlText(HTMLParser):
    """Visible text and <title> of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag == "title":
            self._in_title = False
        if tag in ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "tr", "section"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data.strip()
            return
        self.parts.append(data)


def _html(path: Path) -> tuple[str, str]:
    parser = _HtmlText()
    parser.feed(path.read_text(errors="replace"))
    text = re.sub(r"[ \t]+", " ", "".join(parser.parts))
    return parser.title, re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "") for page in reader.pages).strip()
    except (PdfReadError, OSError, ValueError) as exc:
        raise InvalidRequestError(f"cannot read PDF {path}: {exc}") from exc


def _markdown_title(text: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


def read_file(path: Path, doc_id: str) -> Document | None:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text = path.read_text(errors="replace")
        title = _markdown_title(text) if suffix in (".md", ".markdown") else ""
    elif suffix in HTML_SUFFIXES:
        title, text = _html(path)
    elif suffix in PDF_SUFFIXES:
        title, text = "", _pdf(path)
    else:
        return None
    if not text.strip():
        return None
    return Document(
        doc_id=doc_id,
        text=text,
        title=title or path.stem,
        source=str(path),
        attributes={"filename": path.name, "extension": suffix.lstrip(".")},
    )


def _attributes(metadata: Any) -> dict[str, Any]:
    # Only scalars and lists of scalars can be filtered on; nested values are kept out.
    if not isinstance(metadata, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, SCALAR) or (
            isinstance(value, list) and all(isinstance(v, SCALAR) for v in value)
        ):
            out[str(key)] = value
    return out


def read_jsonl(path: Path) -> Iterator[Document]:
    """BEIR corpus records: ``_id``, ``title``, ``text``, ``metadata``."""
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                doc_id = str(record["_id"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidRequestError(f"{path}:{number}: not a BEIR corpus record: {exc}") from exc
            yield Document(
                doc_id=doc_id,
                text=str(record.get("text") or ""),
                title=str(record.get("title") or ""),
                source=str(path),
                attributes=_attributes(record.get("metadata")),
                is_passage=True,
            )


def read_sources(sources: Sequence[Path]) -> Iterator[Document]:
    """Documents of every file under the given folders/files; JSONL files are BEIR corpora."""
    for source in sources:
        if not source.exists():
            raise InvalidRequestError(f"source {source} does not exist")
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        for path in files:
            if path.suffix.lower() in JSONL_SUFFIXES:
                yield from read_jsonl(path)
                continue
            relative = path.relative_to(source).as_posix() if source.is_dir() else path.name
            document = read_file(path, relative)
            if document is None:
                logger.debug("skipped %s (unsupported or empty)", path)
                continue
            yield document
