"""Import a PEFT LoRA adapter folder as a model artifact of ``type: adapter``, bound to its base by digest.

The adapter's spec names its base model as ``base``; pushing pins that reference to the base's manifest
digest, so an adapter can never be served on other weights than the ones it was imported against.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from core.errors import InvalidSpecError
from core.store import Artifact
from hub.digests import Progress
from hub.model_import import model_files
from hub.store import LocalStore

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def _adapter_config(folder: Path) -> dict[str, object]:
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text())
    except OSError:
        raise InvalidSpecError(f"adapter folder {folder} has no {ADAPTER_CONFIG}") from None
    except ValueError as exc:
        raise InvalidSpecError(f"{folder / ADAPTER_CONFIG} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise InvalidSpecError(f"{folder / ADAPTER_CONFIG} must hold a JSON object")
    peft_type = config.get("peft_type")
    if peft_type is not None and str(peft_type).upper() != "LORA":
        raise InvalidSpecError(f"adapter folder {folder}: only LoRA adapters are supported, not {peft_type}")
    return config


def import_adapter_folder(
    store: LocalStore,
    name: str,
    folder: Path,
    *,
    base: str,
    tags: Sequence[str] = ("latest",),
    progress: Progress | None = None,
) -> Artifact:
    """Push ``folder`` (adapter_config.json and adapter weights) as adapter ``name`` on model ``base``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidSpecError(f"adapter folder {folder} does not exist")
    config = _adapter_config(folder)
    files = model_files(folder)
    weights = [weight for weight in ADAPTER_WEIGHTS if weight in files]
    if not weights:
        raise InvalidSpecError(f"adapter folder {folder} holds no {' or '.join(ADAPTER_WEIGHTS)}")
    base_artifact = store.resolve(base)
    if base_artifact.kind != "model" or base_artifact.spec.get("type", "model") != "model":
        raise InvalidSpecError(f"adapter base {base!r} must be a model of type model (not an adapter)")
    spec = {
        "type": "adapter",
        "format": "safetensors" if weights[0].endswith(".safetensors") else "pytorch",
        "files": list(files),
        "context_length": base_artifact.spec["context_length"],
        "architecture": base_artifact.spec.get("architecture"),
        "base": base_artifact.pinned_ref,
        "labels": {"peft.r": str(config.get("r", ""))} if config.get("r") is not None else {},
    }
    artifact = store.push("model", name, spec, files, tags, progress=progress)
    logger.info("imported adapter %s as %s on %s", folder, artifact.pinned_ref, base_artifact.pinned_ref)
    return artifact


def adapter_base_digest(adapter: Artifact) -> str:
    """The manifest digest of the base model an adapter artifact is bound to."""
    if adapter.spec.get("type") != "adapter":
        raise InvalidSpecError(f"{adapter.pinned_ref} is not an adapter (type {adapter.spec.get('type')!r})")
    base = str(adapter.spec.get("base") or "")
    _, sep, digest = base.partition("@")
    if not sep or not digest:
        raise InvalidSpecError(f"adapter {adapter.pinned_ref} has no base pinned to a digest")
    return digest
