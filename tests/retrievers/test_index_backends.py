from pathlib import Path

import numpy as np
import pytest

from core.errors import EmbedderMismatchError, InvalidRequestError
from core.retrieval import ComparisonFilter, Retriever
from retrievers.chunking import Chunking
from retrievers.documents import Document
from retrievers.index_builder import BuildOptions, build_index, load_previous
from retrievers.index_retriever import open_index
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

ANIMALS = ComparisonFilter("topic", "eq", "animals")


def build_and_open(tmp_path: Path, corpus, embedder, settings, backend: str, **parameters):
    built = build_index(
        corpus, tmp_path / backend, BuildOptions(backend=backend, parameters=parameters), embedder=embedder
    )
    digest = "sha256:" + f"{abs(hash((str(tmp_path), backend))):064x}"[-64:]
    return built, open_index(
        built.folder,
        built.spec,
        ref=f"indexes/t-{backend}",
        digest=digest,
        embedder=embedder,
        settings=settings,
    )


@pytest.mark.parametrize(
    ("backend", "parameters"),
    [
        ("faiss", {}),
        ("faiss", {"faiss": {"kind": "hnsw", "hnsw_m": 8}}),
        ("qdrant", {}),
        ("bm25", {}),
        ("hybrid", {}),
        ("hybrid", {"fusion": {"method": "weighted", "dense_weight": 0.6}}),
    ],
)
async def test_every_backend_finds_the_right_document_and_filters(
    tmp_path, corpus, embedder: MiniLMEmbedder, settings: RetrieverSettings, backend, parameters
):
    built, retriever = build_and_open(tmp_path, corpus, embedder, settings, backend, **parameters)
    assert isinstance(retriever, Retriever)
    assert built.spec["counts"] == {"documents": 5, "chunks": 5}
    assert retriever.info.backend == backend
    hits = await retriever.search("magma and lava eruption", top_k=3)
    assert hits[0].doc_id == "volcano"
    assert hits[0].title == "Volcanoes" and "magma" in hits[0].text and hits[0].score > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    filtered = await retriever.search("investors chase shares", top_k=5, filters=ANIMALS)
    assert filtered and {h.doc_id for h in filtered} <= {"cats", "dogs"}
    batch = retriever.search_batch(["purring feline pets", "interest payments from bonds"], top_k=2)
    assert batch[0][0].doc_id == "cats" and batch[1][0].doc_id == "bonds"


@pytest.mark.parametrize(("scan", "atol"), [("fp32", 1e-5), ("fp16", 2e-3)])
async def test_a_flat_scan_ranks_as_brute_force(tmp_path, corpus, embedder, settings, scan, atol):
    built, retriever = build_and_open(tmp_path, corpus, embedder, settings, "faiss", faiss={"scan": scan})
    assert built.spec["parameters"]["faiss"]["scan"] == scan
    vectors = np.load(built.folder / "vectors.npy")
    assert vectors.dtype == np.float32  # the artifact keeps full precision whatever the scan reads
    query = embedder.embed_batch(["pets that bark"])[0]
    expected = np.argsort(-(vectors @ query))[:5]
    hits = retriever.search_batch(["pets that bark"], top_k=5)[0]
    assert [h.doc_id for h in hits] == [corpus[i].doc_id for i in expected]
    np.testing.assert_allclose([h.score for h in hits], np.sort(vectors @ query)[::-1][:5], atol=atol)


def test_flat_indices_scan_fp16_by_default_and_old_ones_stay_exact(tmp_path, corpus, embedder, settings):
    import faiss

    built, retriever = build_and_open(tmp_path, corpus, embedder, settings, "faiss")
    assert built.spec["parameters"]["faiss"]["scan"] == "fp16"
    assert isinstance(retriever._faiss.index, faiss.IndexScalarQuantizer)
    legacy = {**built.spec["parameters"]["faiss"]}
    del legacy["scan"]  # as an index built before the option records it
    spec = {**built.spec, "parameters": {**built.spec["parameters"], "faiss": legacy}}
    old = open_index(
        built.folder,
        spec,
        ref="indexes/t-old",
        digest="sha256:" + "6" * 64,
        embedder=embedder,
        settings=settings,
    )
    assert isinstance(old._faiss.index, faiss.IndexFlatIP)
    with pytest.raises(InvalidRequestError, match="scan"):
        build_and_open(tmp_path / "bad", corpus, embedder, settings, "faiss", faiss={"scan": "int4"})


async def test_modes_and_mismatched_embedder(tmp_path, corpus, embedder, settings):
    built, retriever = build_and_open(tmp_path, corpus, embedder, settings, "faiss")
    with pytest.raises(InvalidRequestError, match="bm25"):
        await retriever.search("x", mode="bm25")
    other = dict(built.spec, parameters={**built.spec["parameters"], "embedder_digest": "sha256:" + "0" * 64})
    with pytest.raises(EmbedderMismatchError):
        open_index(
            built.folder, other, ref="r", digest="sha256:" + "1" * 64, embedder=embedder, settings=settings
        )
    _, hybrid = build_and_open(tmp_path, corpus, embedder, settings, "hybrid")
    for mode in ("dense", "bm25", "hybrid"):
        assert (await hybrid.search("stock market crash", mode=mode))[0].doc_id == "stocks"


def test_adding_documents_keeps_old_rows_and_replaces_readded_ones(tmp_path, corpus, embedder, settings):
    first = build_index(corpus[:3], tmp_path / "v1", BuildOptions(backend="hybrid"), embedder=embedder)
    previous = load_previous(first.folder, first.spec)
    changed = Document("cats", "Cats sleep sixteen hours a day.", "Cats v2", attributes={"topic": "animals"})
    second = build_index(
        [changed, *corpus[3:]],
        tmp_path / "v2",
        BuildOptions(backend="hybrid"),
        embedder=embedder,
        previous=previous,
    )
    assert second.spec["counts"] == {"documents": 5, "chunks": 5}
    retriever = open_index(
        second.folder, second.spec, ref="r", digest="sha256:" + "2" * 64, embedder=embedder, settings=settings
    )
    hit = retriever.search_batch(["how long do cats sleep"], top_k=1)[0][0]
    assert hit.doc_id == "cats" and hit.title == "Cats v2"
    with pytest.raises(InvalidRequestError):
        build_index(corpus, tmp_path / "v3", BuildOptions(backend="bm25"), previous=previous)


def test_long_documents_are_chunked(tmp_path, embedder, settings):
    long_doc = Document("long", " ".join(["filler"] * 300) + " the secret word is aardvark", "Long")
    built = build_index(
        [long_doc],
        tmp_path / "c",
        BuildOptions(backend="bm25", chunking=Chunking(size=100, overlap=10)),
        embedder=None,
    )
    assert built.spec["counts"]["chunks"] == 4
    retriever = open_index(
        built.folder, built.spec, ref="r", digest="sha256:" + "3" * 64, embedder=None, settings=settings
    )
    hit = retriever.search_batch(["aardvark"], top_k=1)[0][0]
    assert hit.chunk_id == "long#3" and "aardvark" in hit.text
