"""Evaluation datasets as hub artifacts: BEIR folders (corpus, queries, qrels) and QA sets (JSONL).

Both are ``dataset`` artifacts (``hub.specs.DatasetSpec``); the layout is recorded in the label
``aihub.dataset/layout`` so a run knows how to read the files back after ``materialize``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from core.errors import InvalidSpecError
from core.store import Artifact, ArtifactStore

logger = logging.getLogger(__name__)

Layout = Literal["beir", "qa"]
LAYOUT_LABEL = "aihub.dataset/layout"
QA_FILE = "qa.jsonl"
DEFAULT_SPLIT = "test"


@dataclass(frozen=True)
class QaItem:
    id: str
    question: str
    answers: tuple[str, ...] = ()  # reference answers; empty when there is none
    doc_ids: tuple[str, ...] = ()  # gold documents, for citation recall
    answerable: bool = True


@dataclass(frozen=True)
class EvalDataset:
    """What a run reads: queries with optional qrels (retrieval) and optional references (answers)."""

    layout: Layout
    items: tuple[QaItem, ...]
    qrels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # query id → doc id → grade
    split: str | None = None

    @property
    def has_answers(self) -> bool:
        return any(item.answers or not item.answerable for item in self.items)

    @property
    def has_citation_gold(self) -> bool:
        return any(item.doc_ids for item in self.items)


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise InvalidSpecError(f"{path.name} line {number} is not JSON") from None
            if not isinstance(value, dict):
                raise InvalidSpecError(f"{path.name} line {number} is not a JSON object")
            yield value


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels: ``query-id``, ``corpus-id``, ``score`` tab-separated, with a header line."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(rows, 1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise InvalidSpecError(f"{path.name} line {number}: expected query-id, corpus-id, score")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def beir_files(folder: Path) -> dict[str, Path]:
    """The files of a BEIR folder, by their path inside it."""
    files = {name: folder / name for name in ("corpus.jsonl", "queries.jsonl")}
    for name, path in files.items():
        if not path.is_file():
            raise InvalidSpecError(f"{folder} is not a BEIR folder: {name} is missing")
    splits = sorted((folder / "qrels").glob("*.tsv"))
    if not splits:
        raise InvalidSpecError(f"{folder} is not a BEIR folder: no qrels/<split>.tsv")
    files.update({f"qrels/{path.name}": path for path in splits})
    return files


def splits_of(files: Sequence[str]) -> list[str]:
    return sorted(Path(name).stem for name in files if name.startswith("qrels/"))


def load_beir(folder: Path, split: str | None = None) -> EvalDataset:
    """Judged queries of ``split`` (default: ``test``, else the only split) with their qrels."""
    available = splits_of(list(beir_files(folder)))
    chosen = split or (DEFAULT_SPLIT if DEFAULT_SPLIT in available else available[0])
    if chosen not in available:
        raise InvalidSpecError(f"split {chosen!r} not in the dataset; it has {', '.join(available)}")
    qrels = read_qrels(folder / "qrels" / f"{chosen}.tsv")
    items = []
    for row in _jsonl(folder / "queries.jsonl"):
        query_id = str(row.get("_id", ""))
        if query_id in qrels:
            items.append(QaItem(id=query_id, question=str(row.get("text", ""))))
    return EvalDataset(layout="beir", items=tuple(items), qrels=qrels, split=chosen)


def _answers(row: Mapping[str, Any]) -> tuple[str, ...]:
    value = row.get("answers", row.get("answer", row.get("reference")))
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def load_qa(path: Path) -> EvalDataset:
    """QA JSONL: ``question``, ``answer`` (or ``answers``), optional ``doc_ids``, ``answerable``, ``id``."""
    items = []
    qrels: dict[str, dict[str, int]] = {}
    for number, row in enumerate(_jsonl(path), 1):
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            raise InvalidSpecError(f"{path.name} line {number}: `question` is required")
        item_id = str(row.get("id", row.get("_id", number)))
        doc_ids = tuple(str(d) for d in row.get("doc_ids", row.get("gold_doc_ids", ())) or ())
        answerable = bool(row.get("answerable", True))
        items.append(QaItem(item_id, row["question"], _answers(row), doc_ids, answerable))
        if doc_ids:
            qrels[item_id] = dict.fromkeys(doc_ids, 1)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidSpecError(f"{path.name}: item ids are not unique")
    return EvalDataset(layout="qa", items=tuple(items), qrels=qrels)


def detect_layout(folder: Path) -> Layout:
    if (folder / "corpus.jsonl").is_file():
        return "beir"
    if (folder / QA_FILE).is_file():
        return "qa"
    raise InvalidSpecError(f"{folder}: neither a BEIR folder (corpus.jsonl) nor a QA set ({QA_FILE})")


def dataset_spec(
    folder: Path, layout: Layout, description: str | None = None
) -> tuple[dict[str, Any], dict[str, Path]]:
    """The DatasetSpec and files to push for a dataset folder."""
    if layout == "beir":
        files = beir_files(folder)
        records = sum(1 for _ in _jsonl(files["queries.jsonl"]))
        fields = ["_id", "title", "text"]
        labels = {LAYOUT_LABEL: "beir", "aihub.dataset/splits": ",".join(splits_of(list(files)))}
    else:
        files = {QA_FILE: folder / QA_FILE}
        records = len(load_qa(files[QA_FILE]).items)
        fields = ["id", "question", "answer", "doc_ids", "answerable"]
        labels = {LAYOUT_LABEL: "qa"}
    spec: dict[str, Any] = {
        "format": "jsonl" if layout == "qa" else "mixed",
        "files": sorted(files),
        "records": records,
        "fields": fields,
        "labels": labels,
    }
    if description:
        spec["description"] = description
    return spec, files


def push_dataset(
    store: ArtifactStore,
    folder: Path,
    name: str,
    tags: Sequence[str] = ("latest",),
    description: str | None = None,
) -> Artifact:
    layout = detect_layout(folder)
    spec, files = dataset_spec(folder, layout, description)
    artifact = store.push("dataset", name, spec, files=files, tags=tags)
    logger.info("pushed %s dataset %s@%s", layout, name, artifact.digest)
    return artifact


def load_artifact(store: ArtifactStore, artifact: Artifact, split: str | None = None) -> EvalDataset:
    """Read a dataset artifact (already resolved, so pinned) back from its verified files."""
    if artifact.kind != "dataset":
        raise InvalidSpecError(f"{artifact.name} is a {artifact.kind}, not a dataset")
    folder = store.materialize(artifact.pinned_ref)
    layout = (artifact.spec.get("labels") or {}).get(LAYOUT_LABEL) or detect_layout(folder)
    if layout == "beir":
        return load_beir(folder, split)
    if layout == "qa":
        return load_qa(folder / QA_FILE)
    raise InvalidSpecError(f"dataset {artifact.name}: unknown layout {layout!r}")
