"""A lean HTTP client for the retrieval benchmark, run as its own process (as a real client would be).

``python -m bench.search_http_client`` reads ``{"url", "bodies", "warmup"}`` as JSON on stdin, posts each
body in turn over one keep-alive aiohttp connection and prints the latencies (seconds) as a JSON list.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson


async def post_all(url: str, bodies: list[bytes], warmup: int) -> list[float]:
    import aiohttp

    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=1)
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        for n, body in enumerate([*bodies[:warmup], *bodies]):
            start = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                payload = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"gateway answered {response.status}: {payload[:300]!r}")
            if n >= warmup:
                latencies.append(time.perf_counter() - start)
    return latencies


def main() -> None:
    spec: dict[str, Any] = orjson.loads(sys.stdin.buffer.read())
    bodies = [orjson.dumps(b) for b in spec["bodies"]]
    latencies = asyncio.run(post_all(spec["url"], bodies, int(spec.get("warmup", 0))))
    sys.stdout.buffer.write(orjson.dumps(latencies))


if __name__ == "__main__":
    main()
