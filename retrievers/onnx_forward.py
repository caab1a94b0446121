"""A sentence-transformers model exported once to ONNX and run with ONNX Runtime.

Why: on a small CPU a single short query through MiniLM costs about 10 ms in eager PyTorch (per-op
dispatch dominates at that size) and about 4 ms in ONNX Runtime, whose graph fuses attention, layer
norm and GELU. The export is a derived file, kept in the cache under the embedder's digest, like the
GGUF conversion of the chat model; it is checked against PyTorch on a padded probe batch before use,
and a mismatch falls back to PyTorch rather than serving vectors that differ from the index's.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Vectors from the two runtimes agree to about 1e-7; anything near this means a wrong export.
MAX_DEVIATION = 1e-4


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  # the exporter needs it
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _pooled(model: Any) -> Any:
    """A module with positional tensor inputs around the sentence-transformers pipeline (the exporter
    traces positional tensors; the pooling and normalization of the folder come along)."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.model(features)["sentence_embedding"]

    return Pooled().eval()


def probe_batch(vocab_size: int, cls: int, sep: int, pad: int) -> dict[str, npt.NDArray[np.int64]]:
    """Two rows of different lengths: the trace must keep the padding mask path."""
    rng = np.random.default_rng(0)
    ids = np.full((2, 12), pad, dtype=np.int64)
    mask = np.zeros((2, 12), dtype=np.int64)
    for row, length in enumerate((12, 7)):
        body = rng.integers(1000, min(vocab_size, 20000), length - 2)
        ids[row, :length] = [cls, *body, sep]
        mask[row, :length] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def export(model: Any, target: Path, probe: dict[str, npt.NDArray[np.int64]]) -> None:
    """Write ``target`` atomically (a temporary file renamed): a crash never leaves half a model."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    example = tuple(torch.from_numpy(probe[name]) for name in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            # The TorchScript exporter is deprecated and warns about traced shape checks; the probe
            # comparison in `load_or_export` is what vouches for the graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _pooled(model),
                example,
                str(partial),
                input_names=list(INPUTS),
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


class OnnxForward:
    """``forward(ids, mask) -> vectors`` on an ONNX Runtime session (thread-safe ``run``)."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning workers would burn the cores the chat engine shares with us between requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, feed: dict[str, npt.NDArray[np.int64]]) -> npt.NDArray[np.float32]:
        out = self._session.run(None, feed)[0]
        return np.asarray(out, dtype=np.float32)


def _open(model: Any, target: Path, threads: int, probe: dict[str, npt.NDArray[np.int64]]) -> OnnxForward:
    if target.exists():
        try:
            return OnnxForward(target, threads)
        except Exception as exc:  # unreadable (e.g. truncated by a full disk): export it again
            logger.warning("re-exporting unreadable ONNX file %s: %s", target, exc)
            target.unlink(missing_ok=True)
    logger.info("exporting the embedder to ONNX once: %s", target)
    export(model, target, probe)
    return OnnxForward(target, threads)


def load_or_export(
    model: Any,
    target: Path,
    threads: int,
    probe: dict[str, npt.NDArray[np.int64]],
    reference: npt.NDArray[np.float32],
) -> OnnxForward | None:
    """The session for ``target`` (exported first if missing), or None when its vectors for ``probe``
    differ from ``reference`` (PyTorch's) or the file cannot be read or written."""
    try:
        forward = _open(model, target, threads, probe)
        deviation = float(np.abs(forward(probe) - reference).max())
    except Exception as exc:  # a vendor error of any kind: serve with PyTorch instead
        logger.warning("ONNX Runtime not used for the embedder (%s); running it with PyTorch", exc)
        return None
    if deviation > MAX_DEVIATION:
        logger.warning(
            "ONNX export %s deviates from PyTorch by %.2g; running the embedder with PyTorch",
            target,
            deviation,
        )
        return None
    return forward
