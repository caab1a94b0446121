import asyncio
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aihub.index_cli import index_app
from core.errors import ArtifactNotFoundError, EmbedderMismatchError
from hub.store import LocalStore
from retrievers.index_provider import HubIndexProvider
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("index-cli")
    docs = root / "docs"
    docs.mkdir()
    (docs / "volcano.md").write_text("# Volcanoes\n\nMagma rises through the crust and erupts as lava.")
    (docs / "bees.txt").write_text("Honey bees pollinate flowers and live in hives with a queen.")
    more = root / "more"
    more.mkdir()
    (more / "corpus.jsonl").write_text(
        json.dumps(
            {
                "_id": "tides",
                "title": "Tides",
                "text": "The moon's gravity pulls the oceans into tides.",
                "metadata": {"kind": "physics"},
            }
        )
        + "\n"
    )
    config = root / "aihub.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "app": {"home": str(root / "home")},
                "retrievers": {"work_dir": str(root / "work")},
            }
        )
    )
    return {"root": root, "docs": docs, "more": more, "config": config}


def run(*args: str, log: list[str] | None = None) -> str:
    result = CliRunner().invoke(index_app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    if log is not None:
        log.append(result.stderr)
    return result.stdout


def test_build_add_version_and_serve_through_the_provider(workspace, embedder: MiniLMEmbedder):
    cfg = str(workspace["config"])
    log: list[str] = []
    first = run(
        "build",
        str(workspace["docs"]),
        "--name",
        "indexes/notes",
        "--backend",
        "hybrid",
        "--config",
        cfg,
        log=log,
    )
    assert "tokens/s" in log[0] and "embedded" in log[0], log  # time and throughput at the end
    first_ref = first.strip().splitlines()[-1]
    assert first_ref.startswith("indexes/notes@sha256:")
    second = run(
        "build", str(workspace["more"]), "--name", "indexes/notes", "--backend", "hybrid", "--config", cfg
    )
    second_ref = second.strip().splitlines()[-1]
    assert second_ref != first_ref

    store = LocalStore(workspace["root"] / "home" / "hub")
    latest = store.resolve("indexes/notes:latest")
    assert latest.pinned_ref == second_ref
    assert latest.spec["counts"] == {"documents": 3, "chunks": 3}
    assert set(latest.spec["parameters"]["embedding"]) == {"dtype", "runtime"}
    assert latest.spec["embedder"].startswith("models/all-minilm-l6-v2@sha256:")
    model = store.resolve("models/all-minilm-l6-v2:latest")
    served = MiniLMEmbedder(
        "all-minilm-l6-v2",
        store.materialize(model.pinned_ref),
        RetrieverSettings(work_dir=workspace["root"] / "w"),
        digest=model.digest,
    )
    provider = HubIndexProvider(
        store, {"all-minilm-l6-v2": served}, RetrieverSettings(work_dir=workspace["root"] / "w")
    )
    assert [(i.ref, i.documents) for i in provider.list()] == [("indexes/notes:latest", 3)]

    new = provider.open_sync("indexes/notes:latest")
    assert new.search_batch(["ocean tides and the moon"], top_k=1)[0][0].doc_id == "tides"
    old = provider.open_sync(first_ref)  # the old version stays intact, by digest
    assert old.info.documents == 2
    assert old.search_batch(["ocean tides and the moon"], top_k=3)[0][0].doc_id != "tides"
    assert provider.open_sync(second_ref) is new  # cached by digest

    async def opened_over_the_event_loop() -> None:
        # An open index comes back straight from the cache; a tag moved meanwhile is followed at once.
        assert await provider.open("indexes/notes:latest") is new
        store.tag(first_ref, "indexes/notes:latest")
        moved = await provider.open("indexes/notes:latest")
        assert moved.info.digest == old.info.digest and moved.info.documents == 2
        with pytest.raises(ArtifactNotFoundError):
            await provider.open("indexes/nothing:latest")

    asyncio.run(opened_over_the_event_loop())

    # an embedder other than the one the index was built with is refused
    wrong = HubIndexProvider(store, {"other": embedder}, RetrieverSettings(work_dir=workspace["root"] / "w2"))
    with pytest.raises(EmbedderMismatchError):
        wrong.open_sync("indexes/notes:latest")
    with pytest.raises(ArtifactNotFoundError):
        provider.open_sync("indexes/nothing:latest")

    out = run(
        "search",
        "indexes/notes",
        "bees in a hive",
        "--json",
        "--top-k",
        "1",
        "--mode",
        "bm25",
        "--config",
        cfg,
    )
    assert json.loads(out.strip().splitlines()[0])["doc_id"] == "bees.txt"


def test_bm25_and_qdrant_builds(workspace):
    cfg = str(workspace["config"])
    run("build", str(workspace["docs"]), "--name", "indexes/lex", "--backend", "bm25", "--config", cfg)
    run("build", str(workspace["docs"]), "--name", "indexes/q", "--backend", "qdrant", "--config", cfg)
    store = LocalStore(workspace["root"] / "home" / "hub")
    assert store.resolve("indexes/lex").spec["embedder"] is None
    out = run("search", "indexes/q", "lava", "--json", "--config", cfg)
    assert json.loads(out.strip().splitlines()[0])["doc_id"] == "volcano.md"
