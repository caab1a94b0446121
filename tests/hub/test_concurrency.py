import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hub.gc import collect
from hub.store import LocalStore
from hub.verify import verify_store

REPO = Path(__file__).resolve().parents[2]

PUSHER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from hub.store import LocalStore
    root, cache, worker, count = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    store = LocalStore(root, cache_dir=cache)
    shared = Path(sys.argv[5])
    for i in range(count):
        store.push("prompt", f"race/{worker}-{i}", {"template": f"{worker} {i} {{{{ q }}}}", "variables": ["q"]})
        # both workers also write the same blob and move the same tag
        store.push("dataset", "race/shared", {"files": ["data.jsonl"]}, {"data.jsonl": shared}, tags=["latest", worker])
    """
)

SLOW_PUSHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from hub.store import LocalStore
    root, cache, big, marker = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    store = LocalStore(root, cache_dir=cache)
    def slow(count):
        marker.touch()
        time.sleep(0.2)
    store.push("model", "models/killed", {"files": ["w.safetensors"], "context_length": 8},
               {"w.safetensors": big}, progress=slow)
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_two_processes_pushing_at_once_leave_a_valid_store(store: LocalStore, tmp_path: Path) -> None:
    shared = tmp_path / "data.jsonl"
    shared.write_text('{"q": "x"}\n' * 1000)
    count = 15
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PUSHER,
                str(store.root),
                str(store.cache_dir),
                name,
                str(count),
                str(shared),
            ],
            env=_env(),
            stderr=subprocess.PIPE,
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr.decode()
    fresh = LocalStore(store.root, cache_dir=store.cache_dir)
    for name in ("a", "b"):
        for i in range(count):
            assert fresh.resolve(f"race/{name}-{i}").spec["template"].startswith(f"{name} {i}")
    assert fresh.resolve("race/shared:a").digest == fresh.resolve("race/shared:b").digest
    report = verify_store(fresh)
    assert report.ok, report.problems
    assert len(fresh.list(kind="prompt")) == 2 * count


def test_sigkill_mid_push_leaves_a_store_that_verifies_and_serves(
    store: LocalStore, composed: dict[str, str], tmp_path: Path
) -> None:
    big = tmp_path / "w.safetensors"
    big.write_bytes(os.urandom(48 * 1024 * 1024))  # several 8 MiB buffers, 0.2 s each
    marker = tmp_path / "started"
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_PUSHER, str(store.root), str(store.cache_dir), str(big), str(marker)],
        env=_env(),
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the pusher never started writing"
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    assert list(store.blobs.temp_files()), "the kill should have interrupted a blob write"
    fresh = LocalStore(store.root, cache_dir=store.cache_dir)
    report = verify_store(fresh)
    assert report.ok, report.problems
    for key in ("pipeline", "model", "prompt", "index", "report"):
        assert fresh.blobs.has(composed[key])
    assert fresh.resolve("rag/docs-qa:prod").digest == composed["pipeline"]
    assert (fresh.materialize("models/tiny-chat") / "model" / "config.json").is_file()
    assert collect(fresh).removed_temp_files >= 1
    assert not list(fresh.blobs.temp_files())
