"""Hub benchmark: warm tag resolution, and push/pull of a ~500 MB model folder next to `sha256sum` + `cp`.

Run: ``python -m bench.hub_bench [MODEL_FOLDER]`` (a folder of random files is generated if none is given)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hub.model_import import import_model_folder, model_files
from hub.store import LocalStore


@dataclass(frozen=True)
class HubBenchResult:
    size_mb: float
    resolve_warm_us: float
    push_mb_s: float
    pull_mb_s: float
    baseline_mb_s: float  # sha256sum + cp of the same files

    @property
    def push_ratio(self) -> float:
        return self.push_mb_s / self.baseline_mb_s

    @property
    def pull_ratio(self) -> float:
        return self.pull_mb_s / self.baseline_mb_s


def make_random_folder(folder: Path, size_mb: int) -> Path:
    """A model-shaped folder: one large weights file and a few small config files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"architectures": ["BenchForCausalLM"]}')
    (folder / "tokenizer.json").write_bytes(os.urandom(2 * 1024 * 1024))
    chunk = 16 * 1024 * 1024
    with open(folder / "model.safetensors", "wb") as handle:
        for _ in range(max(1, (size_mb - 2) * 1024 * 1024 // chunk)):
            handle.write(os.urandom(chunk))
    return folder


def _baseline_seconds(files: list[Path], dest: Path) -> float:
    """What a shell user would do: hash the files, then copy them."""
    dest.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, files)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cp", *map(str, files), str(dest)], check=True)
    return time.perf_counter() - start


def run_hub_bench(
    model_folder: Path | None = None,
    size_mb: int = 500,
    resolve_calls: int = 20000,
    console: Console | None = None,
) -> HubBenchResult:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="aihub-hub-bench-") as tmp:
        work = Path(tmp)
        folder = model_folder or make_random_folder(work / "model", size_mb)
        files = list(model_files(folder).values())
        total_mb = sum(f.stat().st_size for f in files) / 1e6
        store = LocalStore(work / "hub", cache_dir=work / "cache")

        baseline = _baseline_seconds(files, work / "baseline")
        shutil.rmtree(work / "baseline")

        start = time.perf_counter()
        artifact = import_model_folder(store, "bench/model", folder, context_length=2048)
        push_s = time.perf_counter() - start

        start = time.perf_counter()
        store.materialize(artifact.pinned_ref)
        pull_s = time.perf_counter() - start

        store.resolve_digest("bench/model:latest")
        start = time.perf_counter()
        for _ in range(resolve_calls):
            store.resolve_digest("bench/model:latest")
        resolve_us = (time.perf_counter() - start) / resolve_calls * 1e6

    result = HubBenchResult(
        size_mb=total_mb,
        resolve_warm_us=resolve_us,
        push_mb_s=total_mb / push_s,
        pull_mb_s=total_mb / pull_s,
        baseline_mb_s=total_mb / baseline,
    )
    table = Table(title=f"hub benchmark ({total_mb:.0f} MB model folder)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("resolve tag → digest (warm)", f"{resolve_us:.1f} µs", "≤ 50 µs")
    table.add_row("baseline: sha256sum + cp", f"{result.baseline_mb_s:.0f} MB/s", "")
    table.add_row("push (import folder)", f"{result.push_mb_s:.0f} MB/s ({result.push_ratio:.0%})", "≥ 50%")
    table.add_row(
        "pull (materialize, verified)", f"{result.pull_mb_s:.0f} MB/s ({result.pull_ratio:.0%})", "≥ 50%"
    )
    console.print(table)
    return result


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else None
    result = run_hub_bench(folder)
    Console().print_json(
        data={**asdict(result), "push_ratio": result.push_ratio, "pull_ratio": result.pull_ratio}
    )
    met = result.resolve_warm_us <= 50 and result.push_ratio >= 0.5 and result.pull_ratio >= 0.5
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
