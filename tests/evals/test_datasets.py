from pathlib import Path

import orjson
import pytest

from core.errors import InvalidSpecError
from evals.datasets import load_artifact, load_beir, push_dataset
from hub.store import LocalStore


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(4)]
    (folder / "corpus.jsonl").write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n")
    queries = [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "second"}, {"_id": "q3", "text": "x"}]
    (folder / "queries.jsonl").write_bytes(b"\n".join(orjson.dumps(q) for q in queries) + b"\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t1\n"
    )
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td0\t1\n")
    return folder


def test_beir_reads_judged_queries_of_a_split(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    test = load_beir(folder)
    assert test.split == "test"
    assert [item.id for item in test.items] == ["q1", "q2"]
    assert test.qrels["q2"] == {"d2": 2, "d3": 1}
    train = load_beir(folder, "train")
    assert [item.id for item in train.items] == ["q3"]
    with pytest.raises(InvalidSpecError, match="split 'dev'"):
        load_beir(folder, "dev")


def test_datasets_round_trip_through_the_hub_with_stable_digests(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    store = LocalStore(tmp_path / "hub")
    artifact = push_dataset(store, folder, "datasets/tiny-beir")
    again = push_dataset(store, folder, "datasets/tiny-beir", tags=("v1",))
    assert artifact.digest == again.digest  # content-addressed: same files, same digest
    assert artifact.spec["files"] == ["corpus.jsonl", "qrels/test.tsv", "qrels/train.tsv", "queries.jsonl"]
    loaded = load_artifact(store, store.resolve("datasets/tiny-beir:v1"), "train")
    assert loaded.layout == "beir" and loaded.qrels == {"q3": {"d0": 1}}

    qa = tmp_path / "qa"
    qa.mkdir()
    rows = [
        {"id": "a", "question": "Where is Leonardo?", "answer": "Bologna", "doc_ids": ["d1"]},
        {"id": "b", "question": "Who runs Mars?", "answerable": False},
        {"question": "Where is LUMI?", "answers": ["Kajaani", "Finland"]},
    ]
    (qa / "qa.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    pushed = push_dataset(store, qa, "datasets/qa")
    assert pushed.spec["records"] == 3
    loaded = load_artifact(store, pushed)
    assert loaded.layout == "qa"
    assert [(i.id, i.answers, i.doc_ids, i.answerable) for i in loaded.items] == [
        ("a", ("Bologna",), ("d1",), True),
        ("b", (), (), False),
        ("3", ("Kajaani", "Finland"), (), True),
    ]
    assert loaded.qrels == {"a": {"d1": 1}}


def test_a_qa_set_without_questions_is_refused(tmp_path: Path) -> None:
    (tmp_path / "qa.jsonl").write_text('{"answer": "x"}\n')
    with pytest.raises(InvalidSpecError, match="question"):
        push_dataset(LocalStore(tmp_path / "hub"), tmp_path, "datasets/bad")
