"""`aihub bench upstream`: aihub's openai engine beside the upstream alone and beside LiteLLM's proxy.

The upstream is a real HTTP server: aihub's fixed-latency engine double (a test double that generates
no language) served by ``aihub serve`` on a free loopback port. Its fixed timings make the comparison
meaningful: whatever a proxy adds shows against a known floor, and a 20 ms first token leaves room for
many requests in flight (unlike an engine on these two cores, which would be the bottleneck).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aihub.gateway_process import GatewayProcess
from bench.cli import bench_app
from bench.litellm_env import DEFAULT_VENV, find_python, litellm_version, venv_python_version
from bench.litellm_peer import LITELLM, litellm_proxy, raise_if_exited
from bench.upstream_bench import AIHUB, DIRECT, Server, measure, phases
from bench.upstream_report import as_json, figures, markdown, render, verdicts

# Piped, rich would wrap the table at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 130)

MODEL = "smollm2"  # the id aihub and LiteLLM serve the upstream's model as
DOUBLE_MODEL = "fixed-latency-double"
BENCH_KEY = "sk-aihub-bench"  # LiteLLM's master key and aihub's API key (the same check on both)


def _app_section(work: Path, models: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "home": str(work / "home"),
        "models": models,
        "embedders": [],
        "default_embedder": None,
        "prepare_defaults": False,
        "demo": False,
    }


def _origin(url: str) -> str:
    """``http://host:port/v1`` → ``http://host:port``: the load generator adds ``/v1/…`` itself."""
    url = url.rstrip("/")
    return url.removesuffix("/v1")


@contextmanager
def _watched(name: str, server: GatewayProcess) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if server.process is not None:
            raise_if_exited(name, server.process, server.log_path, exc)
        raise


@contextmanager
def upstream_double(work: Path, ttft_s: float, itl_s: float, tokens: int) -> Iterator[Server]:
    options = {"ttft_s": ttft_s, "itl_s": itl_s, "tokens": tokens}
    model = {"id": DOUBLE_MODEL, "engine": "fixed-latency", "options": options}
    config = {"app": _app_section(work / "upstream", [model])}
    with (
        GatewayProcess(config, work / "upstream", ready_timeout_s=120) as server,
        _watched("upstream", server),
    ):
        assert server.process is not None
        yield Server(DIRECT, server.base_url, DOUBLE_MODEL, server.process.pid)


@contextmanager
def aihub_gateway(
    work: Path, upstream_url: str, upstream_model: str, key: str = BENCH_KEY
) -> Iterator[Server]:
    model = {"id": MODEL, "engine": "openai", "upstreams": [{"url": upstream_url, "model": upstream_model}]}
    config = {"app": _app_section(work / "aihub", [model]), "gateway": {"api_keys": [key]}}
    with GatewayProcess(config, work / "aihub", ready_timeout_s=120) as gateway, _watched(AIHUB, gateway):
        assert gateway.process is not None
        yield Server(AIHUB, gateway.base_url, MODEL, gateway.process.pid)


@bench_app.command("upstream")
def upstream_bench(
    ttft_ms: Annotated[float, typer.Option(min=0, help="Upstream double: time to first token.")] = 20.0,
    itl_ms: Annotated[float, typer.Option(min=0, help="Upstream double: time between tokens.")] = 1.0,
    tokens: Annotated[int, typer.Option(min=1, help="Completion tokens per request.")] = 16,
    requests: Annotated[int, typer.Option(min=5, help="c=1 non-streamed: per contender and round.")] = 100,
    stream_requests: Annotated[int, typer.Option(min=5, help="c=1 streamed: per contender and round.")] = 40,
    load_requests: Annotated[int, typer.Option(min=5, help="Under load: per contender and round.")] = 400,
    concurrency: Annotated[int, typer.Option(min=2, help="The load level for requests/s.")] = 16,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per phase (the order rotates).")] = 5,
    time_limit_s: Annotated[float, typer.Option(min=10, help="Bound on the measured part.")] = 900.0,
    litellm: Annotated[bool, typer.Option(help="Measure LiteLLM's proxy (its own venv).")] = True,
    aihub: Annotated[bool, typer.Option(help="Measure aihub (off: the other legs alone).")] = True,
    aihub_url: Annotated[
        str | None, typer.Option(help="An aihub already serving --aihub-model from --upstream-url.")
    ] = None,
    aihub_model: Annotated[str, typer.Option(help="The model id at --aihub-url.")] = MODEL,
    api_key: Annotated[
        str, typer.Option(help="Bearer key every contender gets (LiteLLM's master key, aihub's key).")
    ] = BENCH_KEY,
    upstream_url: Annotated[
        str | None, typer.Option(help="An OpenAI-compatible upstream (…/v1) instead of the double.")
    ] = None,
    upstream_model: Annotated[str, typer.Option(help="The model id at --upstream-url.")] = DOUBLE_MODEL,
    litellm_venv: Annotated[
        Path, typer.Option(help="LiteLLM's environment (made if missing).")
    ] = DEFAULT_VENV,
    litellm_python: Annotated[
        str | None, typer.Option(help="Interpreter for LiteLLM's environment (default: 3.12/3.13 if found).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the figures as JSON here.")] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Keep the servers' configs and logs here (default: a temp dir).")
    ] = None,
    markdown_out: Annotated[
        Path | None, typer.Option("--markdown", help="Write the table and verdicts as Markdown here.")
    ] = None,
) -> None:
    """The same upstream direct, through aihub and through LiteLLM's proxy: overhead, TTFT, requests/s."""
    if aihub_url is not None and upstream_url is None:
        raise typer.BadParameter(
            "an aihub of your own needs --upstream-url, its upstream", param_hint="--aihub-url"
        )
    plan = phases(requests, stream_requests, load_requests, concurrency)
    own_double = upstream_url is None
    with tempfile.TemporaryDirectory(prefix="aihub-bench-upstream-") as tmp, ExitStack() as stack:
        work = work_dir or Path(tmp)
        if upstream_url is None:
            direct = stack.enter_context(upstream_double(work, ttft_ms / 1000, itl_ms / 1000, tokens))
            upstream_url = f"{direct.base_url}/v1"
            upstream_note = (
                f"fixed-latency engine double (a test double) served by aihub: first token after "
                f"{ttft_ms:g} ms, then {tokens - 1} more {itl_ms:g} ms apart "
                f"(floor about {ttft_ms + (tokens - 1) * itl_ms:g} ms a request)"
            )
        else:
            direct = Server(DIRECT, _origin(upstream_url), upstream_model)
            upstream_note = f"{upstream_url}, model {upstream_model}"
        console.print(f"upstream at {upstream_url}: {upstream_note}")
        contenders = [direct]
        if aihub_url is not None:
            contenders.append(Server(AIHUB, _origin(aihub_url), aihub_model))
        elif aihub:
            contenders.append(stack.enter_context(aihub_gateway(work, upstream_url, direct.model, api_key)))
        litellm_label: str | None = None
        if litellm:
            if litellm_python is None:
                litellm_python, wanted = find_python()
                if not wanted:
                    console.print(
                        "[yellow]no Python 3.12/3.13 found for LiteLLM: using this 3.11, under which "
                        "LiteLLM 1.108.7 crashed after minutes of load here (see bench/litellm_env.py)[/]"
                    )
            contenders.append(
                stack.enter_context(
                    litellm_proxy(
                        model=MODEL,
                        upstream_url=upstream_url,
                        upstream_model=direct.model,
                        master_key=api_key,
                        work=work / "litellm",
                        venv=litellm_venv,
                        python=litellm_python,
                    )
                )
            )
            litellm_label = f"LiteLLM {litellm_version()} on Python {venv_python_version(litellm_venv)}"
            console.print(f"{litellm_label}, from {litellm_venv}")
        console.print(
            "contenders: "
            + ", ".join(f"{c.name} at {c.base_url}" for c in contenders)
            + f"; lean HTTP/1.1 client, {rounds} rounds, the order rotating"
        )
        load_before = os.getloadavg()[0]
        measured = asyncio.run(
            measure(
                contenders,
                plan,
                key=api_key,
                max_tokens=tokens,
                rounds=rounds,
                time_limit_s=time_limit_s,
                console=console,
            )
        )
        load_after = os.getloadavg()[0]
    by_name = figures(measured, plan)
    verdict_rows = verdicts(by_name, LITELLM, concurrency)
    render(by_name, verdict_rows, concurrency, console)
    # Two cores: anything else running shifts every contender's figures (the rounds share it out).
    console.print(f"load average (1 min) before / after: {load_before:.2f} / {load_after:.2f}")
    if markdown_out is not None:
        about = f"upstream: {upstream_note}; {litellm_label or 'LiteLLM not measured'}; {rounds} rounds"
        markdown_out.write_text(f"{about}\n\n{markdown(by_name, verdict_rows, concurrency)}")
    if measured.last_phase_rounds < rounds:
        console.print(
            f"[yellow]time limit: the last phase ran {measured.last_phase_rounds} of {rounds} rounds[/]"
        )
    if out is not None:
        setup: dict[str, object] = {
            "upstream": {"url": upstream_url, "model": direct.model},
            "double": {"ttft_ms": ttft_ms, "itl_ms": itl_ms, "tokens": tokens} if own_double else None,
            "client": "lean",
            "rounds": rounds,
            "last_phase_rounds": measured.last_phase_rounds,
            "phases": [vars(phase) for phase in plan],
            "litellm": litellm_label,
            "load_average_1min": [load_before, load_after],
        }
        payload = as_json(measured, by_name, verdict_rows, setup)
        if AIHUB in by_name and LITELLM in by_name:
            payload["aihub_over_litellm_requests_per_s"] = (
                by_name[AIHUB].requests_per_s / by_name[LITELLM].requests_per_s
            )
        out.write_text(json.dumps(payload, indent=2))
