"""Import a Hugging Face model folder (safetensors, tokenizer, configs) as a ModelPack model artifact."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from core.errors import InvalidSpecError
from core.store import Artifact
from hub.digests import Progress
from hub.store import LocalStore

logger = logging.getLogger(__name__)

# Files that only a model hub's own tooling uses.
_SKIP_NAMES = {".gitattributes"}
_SKIP_PARTS = {".git", ".cache", "__pycache__"}


def model_files(folder: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or path.name in _SKIP_NAMES or _SKIP_PARTS & set(relative.parts):
            continue
        files[relative.as_posix()] = path
    return files


def _detect_format(files: dict[str, Path]) -> str:
    names = list(files)
    for suffix, fmt in (
        (".safetensors", "safetensors"),
        (".gguf", "gguf"),
        (".bin", "pytorch"),
        (".onnx", "onnx"),
    ):
        if any(name.endswith(suffix) for name in names):
            return fmt
    raise InvalidSpecError("model folder holds no weights (.safetensors, .gguf, .bin or .onnx)")


def _architecture(folder: Path) -> str | None:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    architectures = config.get("architectures") if isinstance(config, dict) else None
    return str(architectures[0]) if architectures else None


def import_model_folder(
    store: LocalStore,
    name: str,
    folder: Path,
    *,
    context_length: int,
    chat_template: str | None = None,
    tags: Sequence[str] = ("latest",),
    progress: Progress | None = None,
) -> Artifact:
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidSpecError(f"model folder {folder} does not exist")
    files = model_files(folder)
    spec = {
        "type": "model",
        "format": _detect_format(files),
        "files": list(files),
        "context_length": context_length,
        "chat_template": chat_template,
        "architecture": _architecture(folder),
    }
    artifact = store.push("model", name, spec, files, tags, progress=progress)
    logger.info("imported model folder %s as %s", folder, artifact.pinned_ref)
    return artifact
