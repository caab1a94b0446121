"""LiteLLM's proxy as the peer of `aihub bench upstream` (its environment: ``bench.litellm_env``).

What the proxy needs to start on this machine, with no internet (found by trying, LiteLLM 1.108.7):

- ``LITELLM_MASTER_KEY``: without one it refuses to start (``UnsafeMasterKeyError``, "every request
  would be accepted without authentication"). Clients then send it as a bearer key.
- ``LITELLM_LOCAL_MODEL_COST_MAP=True``: otherwise it fetches its model cost map from GitHub at start,
  three tries over about ten seconds, before falling back to the copy it ships.
- ``LITELLM_TELEMETRY_DISABLED=true``: no telemetry. No ``DATABASE_URL``: no database (no spend logs,
  no virtual keys), the lightest proxy LiteLLM runs.

It logs at ERROR (``LITELLM_LOG``, which also quiets uvicorn's access log): aihub logs no request
either, so neither side pays for writing a line per request. One uvicorn worker, as aihub.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from aihub.gateway_process import free_port, stop_process_group, wait_until_answering
from bench.litellm_env import DEFAULT_VENV, ensure_venv
from bench.upstream_bench import Server

LITELLM = "LiteLLM"


def proxy_config(model: str, upstream_url: str, upstream_model: str) -> dict[str, object]:
    """One model, ``model``, routed to the OpenAI-compatible ``upstream_url`` (``…/v1``)."""
    return {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{upstream_model}",
                    "api_base": upstream_url,
                    "api_key": "sk-upstream-unused",  # the openai provider refuses an empty key
                },
            }
        ],
    }


def proxy_environment(master_key: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.pop("VIRTUAL_ENV", None)  # aihub's; the script's own interpreter finds its packages
    return env | {
        "LITELLM_MASTER_KEY": master_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY_DISABLED": "true",
        "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
        "LITELLM_LOG": "ERROR",
        "NO_PROXY": "127.0.0.1,localhost",
    }


@contextmanager
def litellm_proxy(
    *,
    model: str,
    upstream_url: str,
    upstream_model: str,
    master_key: str,
    work: Path,
    venv: Path = DEFAULT_VENV,
    python: str | None = None,
    timeout_s: float = 180.0,
) -> Iterator[Server]:
    """The proxy on a free loopback port, stopped with its process group; ``python``: see ensure_venv."""
    script = ensure_venv(venv, python)
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = work / f"litellm-{port}.yaml"
    config.write_text(yaml.safe_dump(proxy_config(model, upstream_url, upstream_model)))
    log = work / f"litellm-{port}.log"
    command = [str(script), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=proxy_environment(master_key),
            cwd=work,
            start_new_session=True,  # its own process group: whatever it starts stops with it
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        # Liveliness needs no key and answers once startup (the config's model list) is done.
        wait_until_answering(f"{base_url}/health/liveliness", process, log, timeout_s)
        yield Server(LITELLM, base_url, model, process.pid)  # its own session: pgid == pid
    except Exception as exc:
        raise_if_exited(LITELLM, process, log, exc)
        raise
    finally:
        stop_process_group(process)


def raise_if_exited(name: str, process: subprocess.Popen[bytes], log: Path, exc: Exception) -> None:
    """A peer that died mid-run (LiteLLM 1.108.7 segfaulted under Python 3.11 here): say so, with the
    end of its log, rather than leave only the client's "connection refused"."""
    if process.poll() is not None:
        raise RuntimeError(
            f"{name} exited with {process.returncode} during the run; {log}:\n{log.read_text()[-3000:]}"
        ) from exc
