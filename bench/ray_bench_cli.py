"""`aihub bench --ray`: Ray Serve mode beside embedded mode, same fixed-latency double, one run."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table


def run_ray_bench(
    requests: int, console: Console, json_out: Path | None = None, *, client: str = "lean"
) -> None:
    # Ray reads these from the process environment; the CLI is a composition root, so it may set them.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from bench.ray_bench import measure_ray_vs_embedded
    from ray_cluster.settings import RaySettings

    # This process calls the replicas through handles too (the handle-cost figure): the same Serve
    # knobs as `aihub serve --ray` gives its driver, set before Serve is imported.
    for key, value in RaySettings().serve_env.items():
        os.environ.setdefault(key, value)

    console.print(
        f"embedded uvicorn and a local Ray Serve, {requests} requests each, alternating (c=1), "
        f"{client} client"
    )
    result = asyncio.run(measure_ray_vs_embedded(requests=requests, client=client))
    table = Table(title="Ray Serve mode vs embedded mode (fixed-latency double, concurrency 1)")
    for column in ("mode", "stream", "e2el_ms p50", "e2el_ms p99", "ttft_ms p50", "ttft_ms p99"):
        table.add_column(column, justify="right")
    rows = [
        ("embedded", False, result.embedded_plain),
        ("ray, serve proxy", False, result.ray_plain),
        ("ray, driver", False, result.driver_plain),
        ("embedded", True, result.embedded_stream),
        ("ray, serve proxy", True, result.ray_stream),
        ("ray, driver", True, result.driver_stream),
    ]
    for mode, stream, report in rows:
        if report is None:
            continue
        table.add_row(
            mode,
            "yes" if stream else "no",
            f"{report.e2el_ms[0]:.2f}",
            f"{report.e2el_ms[1]:.2f}",
            f"{report.ttft_ms[0]:.2f}" if stream else "",
            f"{report.ttft_ms[1]:.2f}" if stream else "",
        )
    console.print(table)
    console.print(
        f"Ray mode adds p50 [bold]{result.overhead_p50_ms:.2f} ms[/] per non-streamed request "
        f"(target <= 3); streamed TTFT ray/embedded [bold]{result.ttft_ratio:.3f}[/] (target <= 1.1), "
        "with Serve's HTTP proxy in front (ray.ingress: serve)"
    )
    if result.driver_overhead_p50_ms is not None and result.driver_ttft_ratio is not None:
        console.print(
            f"gateway in the driver (ray.ingress: driver): adds p50 "
            f"[bold]{result.driver_overhead_p50_ms:.2f} ms[/], "
            f"TTFT ratio [bold]{result.driver_ttft_ratio:.3f}[/]"
        )
    if result.handle is not None:
        console.print(
            f"a Serve handle call to the model replica, over the same double in-process (no HTTP): "
            f"whole answer +{result.handle.unary_ms:.2f} ms, first streamed chunk "
            f"+{result.handle.first_chunk_ms:.2f} ms"
        )
    if result.floor is not None:
        console.print(
            f"Ray's own floor here (plain actor, no Serve): call p50 {result.floor.actor_call_ms:.2f} ms, "
            f"one-item streaming call p50 {result.floor.stream_one_ms:.2f} ms"
        )
    if json_out:
        json_out.write_text(json.dumps(result.as_dict(), indent=2))
