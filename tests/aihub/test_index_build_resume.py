"""`aihub index build` killed mid-embedding (SIGKILL, then Ctrl-C) resumes from its finished batches and
pushes the very index an uninterrupted build pushes; nothing is tagged while it is incomplete."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.errors import ArtifactNotFoundError
from hub.store import LocalStore
from retrievers.bm25_index import Bm25Index

SCIFACT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scifact" / "corpus.jsonl"
DOCUMENTS = 160

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCIFACT.exists(), reason="the SciFact corpus is not in ../shared/data"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("index-resume")
    corpus = root / "corpus.jsonl"
    with SCIFACT.open() as source:
        corpus.write_text("".join(next(source) for _ in range(DOCUMENTS)))
    config = root / "aihub.yaml"
    # A small token budget: many batches, so the kills land mid-embedding.
    config.write_text(
        yaml.safe_dump(
            {
                "app": {"home": str(root / "home")},
                "retrievers": {"work_dir": str(root / "work"), "bulk_batch_tokens": 1024},
            }
        )
    )
    return {"root": root, "corpus": corpus, "config": config, "ingest": root / "work" / "ingest"}


def _command(workspace: dict[str, Path], name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aihub.cli",
        "index",
        "build",
        str(workspace["corpus"]),
        "--name",
        name,
        "--backend",
        "hybrid",
        "--config",
        str(workspace["config"]),
    ]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _batches(ingest: Path) -> int:
    return len(list(ingest.glob("*/*.npy"))) if ingest.exists() else 0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(workspace: dict[str, Path], name: str, sig: signal.Signals, more_than: int) -> int:
    """Start a build, send ``sig`` once more than ``more_than`` batches are saved; the batches then."""
    process = subprocess.Popen(
        _command(workspace, name),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background (``cmd &``) ignores SIGINT, and Python keeps an ignored
        # SIGINT ignored: the build would never see this "Ctrl-C". A terminal's Ctrl-C is not ignored.
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 600
    try:
        while _batches(workspace["ingest"]) <= more_than:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no embedding batch was saved in time"
            time.sleep(0.05)
        process.send_signal(sig)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0, err  # stopped, not finished
    return _batches(workspace["ingest"])


def _vectors(store: LocalStore, ref: str) -> np.ndarray:
    return np.load(store.materialize(ref) / "vectors.npy")


def test_a_killed_build_resumes_and_pushes_the_same_index(workspace: dict[str, Path]):
    store_root = workspace["root"] / "home" / "hub"
    whole = subprocess.run(
        _command(workspace, "indexes/whole"), env=_env(), capture_output=True, text=True, timeout=900
    )
    assert whole.returncode == 0, whole.stderr
    assert "resumed" not in whole.stderr
    assert _batches(workspace["ingest"]) == 0  # a pushed build leaves no batches behind

    killed = _interrupt(workspace, "indexes/resumed", signal.SIGKILL, more_than=2)
    store = LocalStore(store_root)
    with pytest.raises(ArtifactNotFoundError):
        store.resolve("indexes/resumed")  # nothing half-built is tagged
    interrupted = _interrupt(workspace, "indexes/resumed", signal.SIGINT, more_than=killed + 2)
    assert interrupted > killed
    with pytest.raises(ArtifactNotFoundError):
        store.resolve("indexes/resumed")

    rerun = subprocess.run(
        _command(workspace, "indexes/resumed"), env=_env(), capture_output=True, text=True, timeout=900
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed: reused {interrupted} finished embedding batches" in " ".join(rerun.stderr.split())
    assert _batches(workspace["ingest"]) == 0
    resumed, reference = store.resolve("indexes/resumed"), store.resolve("indexes/whole")
    assert resumed.spec["counts"] == reference.spec["counts"]
    assert reference.spec["counts"]["documents"] == DOCUMENTS
    np.testing.assert_array_equal(_vectors(store, resumed.pinned_ref), _vectors(store, reference.pinned_ref))
    # The same index: spec and every dense/table file byte for byte (the manifests differ in name and
    # time only). BM25's files are not byte-stable across two builds of one input (its vocabulary order
    # varies between processes), so its answers are compared instead.
    assert resumed.spec == reference.spec
    folders = [store.materialize(a.pinned_ref) for a in (resumed, reference)]
    for relative in reference.spec["files"]:
        if not relative.startswith("bm25/"):
            assert (folders[0] / relative).read_bytes() == (folders[1] / relative).read_bytes(), relative
    queries = [
        "myelodysplasia suppressor cells",
        "white matter diffusion in newborns",
        "reverse transcription",
    ]
    hits = [
        Bm25Index.load(folder, reference.spec["parameters"]["bm25"]).search(queries, 10) for folder in folders
    ]
    assert all(hits[0])
    for mine, theirs in zip(hits[0], hits[1], strict=True):
        assert [row for row, _ in mine] == [row for row, _ in theirs]
        assert [score for _, score in mine] == pytest.approx([score for _, score in theirs], rel=1e-6)
