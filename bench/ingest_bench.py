"""`aihub bench ingest`: bulk embedding throughput beside sentence-transformers, on the same texts.

Three runners embed the same corpus sample in one run: sentence-transformers ``encode`` in fp32, the
same model cast to bf16, and aihub's ingestion path (``MiniLMEmbedder.embed_bulk``: the bulk dtype the
hardware allows, length-bucketed batches). Tokens are counted once with the model's tokenizer (256
tokens at most a text), so tokens/s compare directly. Then the whole corpus is embedded and indexed
(FAISS, and hybrid: FAISS + BM25) the way `aihub index build` does it, timed end to end.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ST_FP32, ST_BF16, AIHUB = "sentence-transformers fp32", "sentence-transformers bf16", "aihub ingestion"
TARGET_RATIO, TARGET_CORPUS_S = 1.3, 60.0

Runner = Callable[[Sequence[str]], Any]


@dataclass(frozen=True, slots=True)
class Measurement:
    label: str
    detail: str
    seconds: float
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def load_texts(corpus: Path, limit: int | None = None) -> list[str]:
    """The texts an index build embeds (``title + " " + text``), first ``limit`` of them."""
    from retrievers.documents import read_jsonl

    texts: list[str] = []
    for document in read_jsonl(corpus):
        texts.append(f"{document.title} {document.text}".strip() if document.title else document.text)
        if limit is not None and len(texts) >= limit:
            break
    return texts


def measure(
    runners: Sequence[tuple[str, str, Runner]], texts: Sequence[str], tokens: int, rounds: int = 1
) -> list[Measurement]:
    """Each runner over ``texts``, ``rounds`` times in rotating order after one warm-up; the best time."""
    warm = list(texts[: min(len(texts), 32)])
    for _, _, run in runners:
        run(warm)
    best: dict[str, float] = {}
    for r in range(rounds):
        shift = r % len(runners)
        for label, _, run in [*runners[shift:], *runners[:shift]]:
            started = time.perf_counter()
            run(texts)
            seconds = time.perf_counter() - started
            best[label] = min(best.get(label, seconds), seconds)
    return [Measurement(label, detail, best[label], tokens) for label, detail, _ in runners]


def load_average(path: Path = Path("/proc/loadavg")) -> str:
    """The 1/5/15-minute load averages (the machine may be shared: figures are read beside them)."""
    try:
        return " ".join(path.read_text().split()[:3])
    except OSError:
        return "unknown"


def ratios(measurements: Sequence[Measurement]) -> dict[str, float]:
    """aihub's tokens/s over each sentence-transformers figure and over the faster of them."""
    by = {m.label: m.tokens_per_s for m in measurements}
    out: dict[str, float] = {}
    if AIHUB in by:
        for label in (ST_FP32, ST_BF16):
            if by.get(label):
                out[f"aihub / {label}"] = by[AIHUB] / by[label]
        faster = max((by[label] for label in (ST_FP32, ST_BF16) if by.get(label)), default=0.0)
        if faster:
            out["aihub / faster sentence-transformers"] = by[AIHUB] / faster
    return out


def render(
    measurements: Sequence[Measurement], corpus: dict[str, dict[str, float]], console: Console
) -> None:
    baseline = next((m.tokens_per_s for m in measurements if m.label == ST_FP32), 0.0)
    table = Table("runner", "how", "texts' tokens", "seconds", "tokens/s", "× st fp32")
    for m in measurements:
        ratio = f"{m.tokens_per_s / baseline:.2f}" if baseline else "—"
        table.add_row(m.label, m.detail, f"{m.tokens:,}", f"{m.seconds:.2f}", f"{m.tokens_per_s:,.0f}", ratio)
    console.print(table)
    for name, value in ratios(measurements).items():
        mark = "" if "faster" not in name else (" [green]✓[/]" if value >= TARGET_RATIO else " [red]✗[/]")
        console.print(f"{name}: [bold]{value:.2f}×[/]{mark}")
    if corpus:
        whole = Table(
            "whole corpus, embedded and indexed", "chunks", "tokens", "seconds", "tokens/s", "≤ 60 s"
        )
        for backend, row in corpus.items():
            ok = "[green]✓[/]" if row["seconds"] <= TARGET_CORPUS_S else "[red]✗[/]"
            whole.add_row(
                backend,
                f"{int(row['chunks']):,}",
                f"{int(row['tokens']):,}",
                f"{row['seconds']:.1f}",
                f"{row['tokens'] / row['seconds']:,.0f}",
                ok,
            )
        console.print(whole)


def _corpus_builds(corpus: Path, embedder: Any, backends: Sequence[str]) -> dict[str, dict[str, float]]:
    from retrievers.documents import read_jsonl
    from retrievers.index_builder import BuildOptions, build_index

    out: dict[str, dict[str, float]] = {}
    for backend in backends:
        tokens = {"n": 0}

        def progress(stage: str, done: int, total: int, tokens: dict[str, int] = tokens) -> None:
            if stage == "embedding tokens":
                tokens["n"] = done

        with tempfile.TemporaryDirectory(prefix="aihub-bench-ingest-") as tmp:
            started = time.perf_counter()
            built = build_index(
                read_jsonl(corpus),
                Path(tmp) / "index",
                BuildOptions(backend=backend),  # type: ignore[arg-type]
                embedder=embedder,
                progress=progress,
            )
            seconds = time.perf_counter() - started
        out[backend] = {"seconds": seconds, "tokens": tokens["n"], "chunks": built.spec["counts"]["chunks"]}
    return out


def run_ingest_bench(
    corpus: Path,
    sample: int,
    rounds: int,
    whole_corpus: bool,
    settings: Any,
    console: Console,
    json_out: Path | None = None,
) -> dict[str, Any]:
    import copy

    import torch
    from sentence_transformers import SentenceTransformer

    from aihub.default_models import _minilm_folder
    from retrievers.minilm_embedder import MiniLMEmbedder

    folder = _minilm_folder()
    texts = load_texts(corpus, sample)
    aihub = MiniLMEmbedder("all-minilm-l6-v2", folder, settings.retrievers, digest=None)
    try:
        st32 = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        st16 = copy.deepcopy(st32).to(torch.bfloat16)
        tokens = sum(len(ids) for ids in aihub.tokenize(texts))
        method = aihub.bulk_method
        load_before = load_average()
        console.print(
            f"{len(texts)} texts of {corpus}, {tokens:,} tokens (256 a text at most); "
            f"{torch.get_num_threads()} torch threads; aihub bulk path: {method.dtype}, {method.runtime}; "
            f"load average {load_before}"
        )
        batch = settings.retrievers.ingest_batch_size
        runners: list[tuple[str, str, Runner]] = [
            (ST_FP32, f"encode, batch {batch}", lambda t: st32.encode(list(t), batch_size=batch)),
            (
                ST_BF16,
                f"encode, batch {batch}, bf16 weights",
                lambda t: st16.encode(list(t), batch_size=batch),
            ),
            (AIHUB, f"embed_bulk, {method.dtype}", aihub.embed_bulk),
        ]
        measurements = measure(runners, texts, tokens, rounds)
        builds = _corpus_builds(corpus, aihub, ("faiss", "hybrid")) if whole_corpus else {}
    finally:
        aihub.close()
    load_after = load_average()
    render(measurements, builds, console)
    console.print(f"load average before / after: {load_before} / {load_after}")
    result = {
        "texts": len(texts),
        "tokens": tokens,
        "method": method.as_spec(),
        "runners": [asdict(m) | {"tokens_per_s": m.tokens_per_s} for m in measurements],
        "ratios": ratios(measurements),
        "corpus": builds,
        "load_average": {"before": load_before, "after": load_after},
    }
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    return result
