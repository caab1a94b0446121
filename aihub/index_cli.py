"""`aihub index`: build, extend, list and search index artifacts in the hub."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.errors import ArtifactNotFoundError, InvalidRequestError
from core.refs import ArtifactRef

if TYPE_CHECKING:
    from aihub.compose import AihubConfig
    from core.embedder import Embedder
    from core.store import Artifact, ArtifactStore

index_app = typer.Typer(help="Build and query index artifacts.", no_args_is_help=True)
console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option(help="aihub YAML config (hub home, retrievers).")]


def open_embedder(store: ArtifactStore, ref: str, settings: AihubConfig) -> tuple[Embedder, Artifact]:
    """The embedder model artifact ``ref`` as an Embedder; the default MiniLM is imported on first use."""
    from aihub.default_models import MINILM_MAX_TOKENS, _minilm_folder
    from core.app_settings import DEFAULT_EMBEDDER_REF
    from retrievers.factory import build_embedder

    try:
        artifact = store.resolve(ref)
    except ArtifactNotFoundError:
        if ref != DEFAULT_EMBEDDER_REF:
            raise
        from hub.model_import import import_model_folder

        import_model_folder(
            store,  # type: ignore[arg-type]
            ArtifactRef.parse(ref).name,
            _minilm_folder(),
            context_length=MINILM_MAX_TOKENS,
        )
        artifact = store.resolve(ref)
    folder = store.materialize(artifact.pinned_ref)
    model_id = ArtifactRef.parse(ref).name.rsplit("/", 1)[-1]
    return build_embedder(model_id, folder, settings.retrievers, digest=artifact.digest), artifact


def _previous(store: ArtifactStore, ref: str | None) -> Artifact | None:
    if ref is None:
        return None
    try:
        return store.resolve(ref)
    except ArtifactNotFoundError:
        return None


@index_app.command()
def build(
    sources: Annotated[
        list[Path], typer.Argument(help="Folders/files: text, Markdown, HTML, PDF, BEIR JSONL.")
    ],
    name: Annotated[str, typer.Option(help="Index reference to push, e.g. indexes/docs:latest.")],
    backend: Annotated[str, typer.Option(help="faiss, qdrant, bm25 or hybrid.")] = "hybrid",
    embedder: Annotated[str | None, typer.Option(help="Embedder model reference.")] = None,
    chunk_size: Annotated[int, typer.Option(help="Words per chunk.")] = 200,
    chunk_overlap: Annotated[int, typer.Option(help="Words shared by neighbouring chunks.")] = 40,
    split_passages: Annotated[
        bool, typer.Option(help="Also split JSONL records (BEIR passages are kept whole by default).")
    ] = False,
    add_to: Annotated[str | None, typer.Option(help="Extend this index (a new version).")] = None,
    faiss_kind: Annotated[str, typer.Option(help="flat (a full scan) or hnsw.")] = "flat",
    faiss_scan: Annotated[
        str, typer.Option(help="What a flat scan reads: fp16 copies of the vectors, or fp32 (exact).")
    ] = "fp16",
    hnsw_m: Annotated[int, typer.Option(help="HNSW graph degree.")] = 32,
    fusion: Annotated[str, typer.Option(help="Hybrid fusion: weighted or rrf.")] = "weighted",
    dense_weight: Annotated[float, typer.Option(help="Weighted fusion: the dense share.")] = 0.5,
    k1: Annotated[float, typer.Option(help="BM25 k1.")] = 0.9,
    b: Annotated[float, typer.Option(help="BM25 b.")] = 0.4,
    resume: Annotated[
        bool,
        typer.Option(help="Reuse the embedding batches an interrupted build of the same input finished."),
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Ingest documents and push an `index` artifact (building with an existing name adds a version).

    Embedding batches are saved as they finish: a build stopped by Ctrl-C or a kill, run again with the
    same sources and options, embeds only what is left. The index is pushed and tagged only when whole.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    from aihub.compose import open_store
    from core.app_settings import DEFAULT_EMBEDDER_REF
    from ray_cluster.config import load_config
    from retrievers.chunking import Chunking
    from retrievers.documents import read_sources
    from retrievers.index_builder import BuildOptions, is_dense, load_previous
    from retrievers.index_publish import build_and_push_index

    settings = load_config(config)
    store = open_store(settings)
    target = ArtifactRef.parse(name)
    previous = _previous(store, add_to or name)
    if add_to is not None and previous is None:
        raise ArtifactNotFoundError(f"index {add_to} does not exist")
    embedder_ref = embedder
    if previous is not None and embedder_ref is None and previous.spec.get("embedder"):
        embedder_ref = str(previous.spec["embedder"])
    embedder_obj = None
    if is_dense(backend):
        embedder_obj, embedder_artifact = open_embedder(store, embedder_ref or DEFAULT_EMBEDDER_REF, settings)
        embedder_ref = embedder_artifact.pinned_ref
    parameters: dict[str, dict[str, Any]] = {
        "faiss": {"kind": faiss_kind, "scan": faiss_scan, "hnsw_m": hnsw_m},
        "bm25": {"k1": k1, "b": b},
        "fusion": {"method": fusion, "dense_weight": dense_weight},
    }
    options = BuildOptions(
        backend=backend,  # type: ignore[arg-type]
        chunking=Chunking(size=chunk_size, overlap=chunk_overlap, split_passages=split_passages),
        parameters=parameters,
        embedder_ref=embedder_ref,
    )
    started = time.perf_counter()
    embedded = {"tokens": 0, "first": 0.0, "last": 0.0, "base": 0, "resumed": 0}
    with (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            now = time.perf_counter()
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total, rate="")
                if stage == "embedding tokens":
                    # The rate counts what this run embeds: not the tokens of reused batches.
                    embedded["first"] = now
                    embedded["base"] = done if embedded["resumed"] else 0
            rate = ""
            if stage == "resumed batches":
                embedded["resumed"] = done
            if stage == "embedding tokens":
                embedded["tokens"], embedded["last"] = done, now
                if now > embedded["first"]:
                    rate = f"{(done - embedded['base']) / (now - embedded['first']):,.0f} tokens/s"
            progress.update(tasks[stage], completed=done, total=total, rate=rate)

        prior = None
        if previous is not None:
            if previous.kind != "index":
                raise InvalidRequestError(f"{previous.pinned_ref} is a {previous.kind}, not an index")
            prior = load_previous(store.materialize(previous.pinned_ref), previous.spec)
        artifact = build_and_push_index(
            store,
            target.name,
            read_sources(sources),
            options,
            embedder=embedder_obj,
            previous=prior,
            progress=report,
            tags=(target.tag or "latest",),
            resume_dir=settings.retrievers.work_dir / "ingest" if resume else None,
        )
    seconds = time.perf_counter() - started
    counts = artifact.spec["counts"]
    console.print(
        f"pushed [cyan]{target}[/] {artifact.digest}: {counts['documents']} documents, "
        f"{counts['chunks']} chunks, {backend}, in {seconds:.1f} s"
    )
    method = artifact.spec.get("parameters", {}).get("embedding")
    if embedded["resumed"]:
        console.print(
            f"resumed: reused {embedded['resumed']} finished embedding batches "
            f"({embedded['base']:,} tokens) of an interrupted build"
        )
    if method and embedded["tokens"]:
        # Time from the start of the build to the last embedded batch (tokenizing included).
        embed_s = max(embedded["last"] - started, 1e-9)
        fresh = embedded["tokens"] - embedded["base"]
        console.print(
            f"embedded {fresh:,} tokens in {embed_s:.1f} s: "
            f"[bold]{fresh / embed_s:,.0f} tokens/s[/] "
            f"({method['dtype']}, {method['runtime']}); "
            f"total {seconds:.1f} s"
        )
    typer.echo(artifact.pinned_ref)


@index_app.command("list")
def list_indexes(config: ConfigOption = None) -> None:
    """The index artifacts in the hub."""
    from aihub.compose import open_store
    from ray_cluster.config import load_config

    store = open_store(load_config(config))
    table = Table("reference", "digest", "backend", "documents", "chunks", "embedder")
    for artifact in store.list("index"):
        spec, counts = artifact.spec, artifact.spec.get("counts", {})
        ref = f"{artifact.name}:{artifact.tags[0]}" if artifact.tags else artifact.pinned_ref
        table.add_row(
            ref,
            artifact.digest[:19],
            str(spec.get("backend")),
            str(counts.get("documents", "")),
            str(counts.get("chunks", "")),
            str(spec.get("embedder") or ""),
        )
    Console().print(table)


def open_retriever(ref: str, settings: AihubConfig, store: ArtifactStore) -> Any:
    """An index's retriever with the very embedder it was built with (a composition step for CLIs)."""
    from retrievers.index_provider import HubIndexProvider

    artifact = store.resolve(ref)
    embedders = {}
    embedder_ref = artifact.spec.get("embedder")
    if embedder_ref:
        embedder_obj, _ = open_embedder(store, str(embedder_ref), settings)
        embedders[embedder_obj.info.id] = embedder_obj
    return HubIndexProvider(store, embedders, settings.retrievers).open_sync(ref)


@index_app.command()
def search(
    ref: Annotated[str, typer.Argument(help="Index reference.")],
    query: Annotated[str, typer.Argument(help="The query text.")],
    top_k: Annotated[int, typer.Option(help="Results to show.")] = 5,
    mode: Annotated[str | None, typer.Option(help="dense, bm25 or hybrid (default: the backend's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    config: ConfigOption = None,
) -> None:
    """Search an index from the command line."""
    from aihub.compose import open_store
    from ray_cluster.config import load_config

    settings = load_config(config)
    store = open_store(settings)
    retriever = open_retriever(ref, settings, store)
    hits = retriever.search_batch([query], top_k=top_k, mode=mode)[0]
    if as_json:
        for hit in hits:
            typer.echo(
                json.dumps({"doc_id": hit.doc_id, "score": hit.score, "title": hit.title, "text": hit.text})
            )
        return
    table = Table("score", "doc_id", "title", "text")
    for hit in hits:
        table.add_row(f"{hit.score:.4f}", hit.doc_id, hit.title[:40], hit.text[:80])
    Console().print(table)
