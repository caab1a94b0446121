"""The demo that ships: aihub's own documentation as an index, a RAG pipeline and an agent over it.

Created on first start when missing: `indexes/aihub-docs`, `prompts/aihub-docs`, `pipelines/aihub-docs`
(served as `rag/aihub-docs`) and `agents/aihub-helper` (served as `agent/aihub-helper`). When the docs
change, the next start indexes them again and pushes new versions of the pipeline and the agent (both
pin the index by digest); older versions stay in the hub.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from rich.console import Console

from core.app_settings import DEFAULT_CHAT_MODEL_REF
from core.embedder import Embedder
from core.errors import ArtifactNotFoundError
from core.store import Artifact
from hub.store import LocalStore

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
INDEX = "indexes/aihub-docs"
PROMPT = "prompts/aihub-docs"
PIPELINE = "pipelines/aihub-docs"
AGENT = "agents/aihub-helper"

PROMPT_TEMPLATE = """\
You answer questions about aihub using only the numbered documents below. Cite them like [1].
If the documents do not hold the answer, say that you do not know.

{% for doc in documents %}[{{ loop.index }}] {{ doc.title }}
{{ doc.text }}

{% endfor %}Question: {{ question }}
"""

AGENT_PROMPT = (
    "You are aihub-helper. You answer questions about aihub, an OpenAI-compatible RAG gateway. "
    "Search the aihub documentation with the search_docs tool before you answer, and cite what you found."
)


def doc_sources(root: Path = REPO_ROOT) -> list[Path]:
    """README.md and docs/ of a source checkout; nothing for an installed wheel without them."""
    return [path for path in (root / "README.md", root / "docs") if path.exists()]


def sources_digest(sources: list[Path]) -> str:
    """sha256 over every file's path and bytes: what the docs index was built from."""
    digest = hashlib.sha256()
    for source in sources:
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        for path in files:
            digest.update(path.relative_to(source.parent).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _resolve(store: LocalStore, ref: str) -> Artifact | None:
    try:
        return store.resolve(ref)
    except ArtifactNotFoundError:
        return None


def _exists(store: LocalStore, ref: str) -> bool:
    return _resolve(store, ref) is not None


def ensure_demo(
    store: LocalStore, embedder: Embedder, embedder_ref: str, console: Console, root: Path = REPO_ROOT
) -> None:
    """Push whatever part of the demo is missing or built from older docs (under ``root``)."""
    sources = doc_sources(root)
    if not sources:
        logger.info("no README.md or docs/ next to the package: the docs demo is not set up")
        return
    digest = sources_digest(sources)
    index = _resolve(store, INDEX)
    stale = index is None or index.spec.get("parameters", {}).get("sources_sha256") != digest
    if stale:
        _build_docs_index(store, embedder, embedder_ref, sources, digest, console)
    if not _exists(store, PROMPT):
        store.push(
            "prompt", PROMPT, {"template": PROMPT_TEMPLATE, "variables": ["question", "documents", "history"]}
        )
    if stale or not _exists(store, PIPELINE):
        store.push(
            "pipeline",
            PIPELINE,
            {
                "model": DEFAULT_CHAT_MODEL_REF,
                "prompt": f"{PROMPT}:latest",
                "indices": [f"{INDEX}:latest"],
                "retrieval": {"mode": "hybrid", "top_k": 3},
                "generation": {"temperature": 0.0, "max_tokens": 200},
            },
        )
        console.print("pushed [cyan]rag/aihub-docs[/]")
    if stale or not _exists(store, AGENT):
        store.push(
            "agent",
            AGENT,
            {
                "model": DEFAULT_CHAT_MODEL_REF,
                "system_prompt": AGENT_PROMPT,
                "tools": [
                    {
                        "name": "search_docs",
                        "type": "search",
                        "description": "Search the aihub documentation; returns the best passages.",
                        "index": f"{INDEX}:latest",
                    }
                ],
                "max_steps": 3,
            },
        )
        console.print("pushed [cyan]agent/aihub-helper[/]")


def _build_docs_index(
    store: LocalStore,
    embedder: Embedder,
    embedder_ref: str,
    sources: list[Path],
    digest: str,
    console: Console,
) -> None:
    from retrievers.chunking import Chunking
    from retrievers.documents import read_sources
    from retrievers.index_builder import BuildOptions
    from retrievers.index_publish import build_and_push_index

    options = BuildOptions(
        backend="hybrid",
        chunking=Chunking(size=120, overlap=30, split_passages=True),
        parameters={},
        embedder_ref=embedder_ref,
    )
    artifact = build_and_push_index(
        store,
        INDEX,
        read_sources(sources),
        options,
        embedder=embedder,
        extra_parameters={"sources_sha256": digest},
    )
    counts = artifact.spec["counts"]
    console.print(
        f"indexed aihub's docs as [cyan]{INDEX}[/] "
        f"({counts['documents']} documents, {counts['chunks']} chunks)"
    )
    logger.info("docs index %s", artifact.pinned_ref)
