"""Root fixtures shared by several test packages. Keep this small."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smollm2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder, converted from the shipped GGUF once per session."""
    from serving.gguf_convert import convert_gguf_to_safetensors, find_smollm2_gguf

    return convert_gguf_to_safetensors(find_smollm2_gguf(), tmp_path_factory.mktemp("smollm2") / "model")
