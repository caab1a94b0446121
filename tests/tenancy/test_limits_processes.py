"""Two real OS processes, each with its own limiter and database connections, drive one rpm and one
tpm limit on a shared SQLite file or PostgreSQL database at the same moment: together they admit the
limit, not the limit twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

DRIVER = """
import asyncio, json, sys, time
from core.errors import RateLimitError
from core.tenancy import Limits, Principal
from tenancy.database import Database
from tenancy.limits import DatabaseRateLimiter
from tenancy.projects import ProjectLimitStore
from tenancy.settings import LimitSettings

url, start_at = sys.argv[1], float(sys.argv[2])
database = Database(url)
limiter = DatabaseRateLimiter(database, LimitSettings(flush_interval_s=0.02), ProjectLimitStore(database))
cases = {"rpm": (Principal("climate", "key_rpm", limits=Limits(rpm=2000)), 0),
         "tpm": (Principal("climate", "key_tpm", limits=Limits(tpm=40_000)), 100)}

async def drive(principal, tokens, attempts):
    admitted = []
    semaphore = asyncio.Semaphore(16)
    async def one():
        async with semaphore:
            try:
                permit = await limiter.admit(principal)
            except RateLimitError:
                return
            await asyncio.sleep(0.001)
            permit.finish(tokens, 0)
            admitted.append(tokens)
    await asyncio.gather(*(one() for _ in range(attempts)))
    return admitted

time.sleep(max(0.0, start_at - time.time()))  # both processes start together
result = {}
for name, (principal, tokens) in cases.items():
    admitted = asyncio.run(drive(principal, tokens, 1500 if name == "rpm" else 300))
    result[name] = {"requests": len(admitted), "tokens": sum(admitted)}
limiter.close()
database.close()
print(json.dumps(result))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tenancy.db'}"
    return str(request.getfixturevalue("postgres").new_database())


def test_two_processes_admit_one_limit_between_them(url: str) -> None:
    from tenancy.database import Database
    from tenancy.limits import DatabaseRateLimiter
    from tenancy.projects import ProjectLimitStore
    from tenancy.settings import LimitSettings

    database = Database(url)  # the schema first: the processes then race only on the counters
    DatabaseRateLimiter(database, LimitSettings(), ProjectLimitStore(database)).close()
    database.close()
    start_at = time.time() + 3.0
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, url, str(start_at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        results.append(json.loads(out))
    requests = sum(r["rpm"]["requests"] for r in results)
    tokens = sum(r["tpm"]["tokens"] for r in results)
    assert all(r["rpm"]["requests"] > 0 and r["tpm"]["tokens"] > 0 for r in results), results
    assert 2000 * 0.95 <= requests <= 2000 * 1.02, results
    assert 40_000 * 0.95 <= tokens <= 40_000 * 1.02, results
