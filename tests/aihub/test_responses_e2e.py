"""``/v1/responses`` on a real ``aihub serve`` (the composition root's stored responses, the real SmolLM2
model, MiniLM, files and vector stores made over the API), driven by the official client. SmolLM2 is
small: these assert structure and plumbing, not the quality of its answers."""

from pathlib import Path
from typing import Any

import openai
import pytest

from aihub.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
HANDBOOK = (
    "# Warranty\n\nEvery Acme kettle has a warranty of three years from the day of purchase.\n\n"
    "# Batteries\n\nBatteries are covered for one year.\n"
)


def test_the_readme_flow(served: GatewayProcess, tmp_path: Path, openapi_errors: Any) -> None:
    handbook = tmp_path / "handbook.md"
    handbook.write_text(HANDBOOK)
    # The README's lines, verbatim but for the address and the file's path.
    client = openai.OpenAI(base_url=f"{served.base_url}/v1", api_key="unused")
    store = client.vector_stores.create(name="handbook")
    client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=handbook)
    answer = client.responses.create(
        model=MODEL,
        input="How long is the warranty?",
        tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
    )
    follow_up = client.responses.create(
        model=MODEL, input="And for batteries?", previous_response_id=answer.id
    )

    assert openapi_errors("Response", answer.model_dump(mode="json", exclude_unset=True)) == []
    search, message = answer.output
    assert search.type == "file_search_call" and search.status == "completed"
    assert message.type == "message" and message.content[0].type == "output_text"
    citations = message.content[0].annotations
    assert citations, "an answer from file search cites the files it was given"
    assert {c.type for c in citations} == {"file_citation"}
    assert citations[0].filename == "handbook.md"  # type: ignore[union-attr]
    assert citations[0].file_id.startswith("file-")  # type: ignore[union-attr]
    assert follow_up.previous_response_id == answer.id and follow_up.status in ("completed", "incomplete")
    # The follow-up read the earlier question and answer: more input than the question alone.
    alone = client.responses.create(
        model=MODEL, input="And for batteries?", store=False, max_output_tokens=16
    )
    assert answer.usage is not None and follow_up.usage is not None and alone.usage is not None
    assert follow_up.usage.input_tokens > alone.usage.input_tokens + answer.usage.output_tokens
    assert client.responses.retrieve(follow_up.id).output_text == follow_up.output_text
    items = client.responses.input_items.list(follow_up.id)
    assert [item.content[0].text for item in items.data] == ["And for batteries?"]  # type: ignore[union-attr]


def test_streaming_with_the_real_model(served: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{served.base_url}/v1", api_key="none", max_retries=0)
    with client.responses.stream(
        model=MODEL, input="Say hello.", max_output_tokens=16, temperature=0
    ) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert (
        kinds[-1] in ("response.completed", "response.incomplete") and "response.output_text.delta" in kinds
    )
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    stored = client.responses.retrieve(events[0].response.id)  # type: ignore[union-attr]
    assert stored.output_text == text and stored.usage is not None and stored.usage.output_tokens >= 1


def test_a_rag_model_answers_with_its_composition(served: GatewayProcess, openapi_errors: Any) -> None:
    client = openai.OpenAI(base_url=f"{served.base_url}/v1", api_key="none", max_retries=0)
    raw = client.responses.with_raw_response.create(
        model="rag/aihub-docs", input="Which command runs the tests?", max_output_tokens=24
    )
    response = raw.parse()
    assert openapi_errors("Response", response.model_dump(mode="json", exclude_unset=True)) == []
    assert response.model_extra is not None
    assert response.model_extra["composition"] == raw.headers["x-aihub-composition"]
    assert response.model_extra["composition"].startswith("sha256:")
