"""Root fixtures shared by several test packages. Keep this small."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smollm2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder, converted from the shipped GGUF once per session."""
    from serving.gguf_convert import convert_gguf_to_safetensors, find_smollm2_gguf

    return convert_gguf_to_safetensors(find_smollm2_gguf(), tmp_path_factory.mktemp("smollm2") / "model")


_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter teardown once every result is reported.

    One full run of the suite (414 passed) then died with SIGSEGV while Python tore down the native
    libraries it had loaded together (torch, onnxruntime, faiss, Ray's core worker), which turned a green
    run red. The exit status is pytest's own.
    """
    import os
    import sys

    if not _exit_status:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status[-1])
