"""`aihub bench responses`' measuring loop against a real server (engine and index doubles): every call
of the three kinds succeeds and is timed."""

from __future__ import annotations

from pathlib import Path

from bench.responses_bench import measure
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway import composition_doubles as D
from tests.support.server_thread import ServerThread


def test_the_loop_times_rag_and_responses_calls_alike(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["Bologna [1]."])
    D.push_pipeline(hub)
    with ServerThread(create_app(GatewaySettings(), hub.services)) as url:
        times = measure(
            url,
            f"indexes/kb@{hub.index_digest}",
            ["Where is Leonardo?", "Where is LUMI?"],
            3,
            model="tiny",
            rag_model="rag/support",
            warmup=1,
        )
    assert {name: len(ms) for name, ms in times.items()} == {
        "rag": 3,
        "responses": 3,
        "responses_unstored": 3,
    }
    assert all(ms > 0 for series in times.values() for ms in series)
    # Each responses call searched the index: the pipeline's searches and the file_search ones.
    assert len(hub.retriever.calls) == 3 * 4
