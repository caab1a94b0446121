"""The engine contract, on the real SmolLM2-135M-Instruct, for both local engines: transformers and vLLM.

Every test runs on each engine: the Python-level ``Engine`` protocol first, then the official openai
client through a real gateway server.
"""

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from core.engine import Engine
from core.errors import ContextLengthExceededError, InvalidRequestError
from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from tests.support.generation_requests import chat, completion, run
from tests.support.openai_spec import SpecValidator
from tests.support.served_models import SMOLLM2
from tests.support.server_thread import ServerThread
from tests.support.shared_engine import SessionOwnedEngine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["transformers", pytest.param("vllm", marks=pytest.mark.vllm)])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "transformers":
        engine: Engine = request.getfixturevalue("transformers_engine")
        return engine
    return request.getfixturevalue("vllm_engines")[SMOLLM2]


def active(engine: Engine) -> int:
    return int(engine.active_requests)  # type: ignore[attr-defined]  # both local engines report it


async def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Polls: engines update their counts at step boundaries, with no event to await."""
    deadline = time.monotonic() + timeout_s
    for _ in itertools.count():
        if condition():
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_greedy_chat_is_deterministic_and_reports_usage(engine: Engine) -> None:
    assert engine.info.context_length == 8192
    request = chat("What is the capital of France?", temperature=0, max_tokens=24)
    first, chunks = await run(engine, request)
    second, _ = await run(engine, request)
    assert first == second
    assert "Paris" in first
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert last.prompt_tokens > 10
    assert 1 <= last.completion_tokens <= 24
    assert all(chunk.finish_reason is None for chunk in chunks[:-1])


async def test_streamed_pieces_join_to_the_whole_answer(engine: Engine) -> None:
    prompt = "Translate into French and German: the café is near the lake. Café:"
    streamed, chunks = await run(engine, completion(prompt, temperature=0, max_tokens=30))
    assert len(chunks) > 3
    assert all("\ufffd" not in chunk.text for chunk in chunks)
    whole_request = GenerationRequest(
        request_id="w", params=SamplingParams(temperature=0, max_tokens=30), prompt=prompt, final_only=True
    )
    whole, final = await run(engine, whole_request)
    assert whole == streamed
    assert final[-1].completion_tokens == chunks[-1].completion_tokens


async def test_max_tokens_gives_length_and_exact_count(engine: Engine) -> None:
    _, chunks = await run(
        engine, completion("The numbers from one to one hundred: one, two,", temperature=0, max_tokens=7)
    )
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens) == ("length", 7)


async def test_stop_string_is_never_emitted(engine: Engine) -> None:
    prompt = "The numbers from one to one hundred: one, two,"
    full, _ = await run(engine, completion(prompt, temperature=0, max_tokens=20))
    stop = " five"
    assert stop in full, full
    text, chunks = await run(engine, completion(prompt, temperature=0, max_tokens=20, stop=(stop, "zzz")))
    assert text == full[: full.index(stop)]
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].completion_tokens < 20


async def test_seed_makes_sampling_reproducible(engine: Engine) -> None:
    request = chat("Write a short poem about the sea.", temperature=1.0, top_p=0.95, seed=1234, max_tokens=20)
    first, _ = await run(engine, request)
    second, _ = await run(engine, request)
    assert first == second
    other, _ = await run(
        engine, chat("Write a short poem about the sea.", temperature=1.0, top_p=0.95, seed=99, max_tokens=20)
    )
    assert other != first


async def test_concurrent_requests_each_get_their_own_answer(engine: Engine) -> None:
    prompts = ["What is the capital of France?", "Name three colours.", "Say hello."]
    requests = [chat(p, temperature=0, max_tokens=12) for p in prompts]
    alone = [(await run(engine, r))[0] for r in requests]
    together = await asyncio.gather(*(run(engine, r) for r in requests))
    # Batched rows see the same weights and their own positions; on these prompts the greedy choices
    # agree with the answers given alone.
    assert [text for text, _ in together] == alone
    assert all(chunks[-1].finish_reason is not None for _, chunks in together)


async def test_logit_bias_forces_a_token_and_refuses_ids_beyond_the_vocabulary(engine: Engine) -> None:
    biased, chunks = await run(
        engine,
        completion("The capital of France is", temperature=0, max_tokens=6, logit_bias=((1000, 100.0),)),
    )
    piece = biased[: len(biased) // 6]
    assert piece and biased == piece * 6, biased  # token 1000, six times
    assert chunks[-1].completion_tokens == 6
    banned, _ = await run(
        engine,
        completion("The capital of France is", temperature=0, max_tokens=6, logit_bias=((1000, -100.0),)),
    )
    assert piece not in banned
    with pytest.raises(InvalidRequestError) as refused:
        await run(engine, completion("Hi", temperature=0, max_tokens=2, logit_bias=((10_000_000, 5.0),)))
    assert refused.value.param == "logit_bias"


async def test_frequency_and_presence_penalties_cut_repetition(engine: Engine) -> None:
    prompt = "The numbers from one to one hundred: one, two,"
    plain, _ = await run(engine, completion(prompt, temperature=0, max_tokens=24))
    assert plain.count(",") >= 6, plain
    penalised, _ = await run(engine, completion(prompt, temperature=0, max_tokens=24, frequency_penalty=2.0))
    assert penalised.count(",") < plain.count(","), penalised
    # Presence subtracts 2 once from each token already generated: a loop the prompt sets up breaks.
    loop = "one, two, one, two, one, two, one, two,"
    looping, _ = await run(engine, completion(loop, temperature=0, max_tokens=16))
    assert {word.strip() for word in looping.split(",") if word.strip()} == {"one", "two"}, looping
    broken, _ = await run(engine, completion(loop, temperature=0, max_tokens=16, presence_penalty=2.0))
    assert "three" in broken, broken


async def test_closing_the_stream_cancels_and_frees_the_slot(engine: Engine) -> None:
    await wait_until(lambda: active(engine) == 0)
    stream = engine.generate(completion("Once upon a time", temperature=0, max_tokens=500))
    await anext(stream)
    assert active(engine) == 1
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_until(lambda: active(engine) == 0, timeout_s=5)

    async def consume() -> None:
        async for _ in engine.generate(completion("Once upon a time", temperature=0, max_tokens=500)):
            pass

    task = asyncio.create_task(consume())
    await wait_until(lambda: active(engine) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: active(engine) == 0, timeout_s=5)


async def test_input_errors_are_raised_before_any_text(engine: Engine) -> None:
    with pytest.raises(ContextLengthExceededError, match="maximum context length is 8192"):
        await anext(engine.generate(completion("hello " * 9000)))
    with pytest.raises(ContextLengthExceededError):
        await anext(engine.generate(chat("hi", max_tokens=8190)))
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        await anext(engine.generate(chat("hi", max_tokens=0)))
    with pytest.raises(InvalidRequestError, match="top_p"):
        await anext(engine.generate(chat("hi", top_p=0.0)))
    assert active(engine) == 0


async def test_developer_role_and_tools_reach_the_template(engine: Engine) -> None:
    tool = {
        "type": "function",
        "function": {"name": "search", "parameters": {"type": "object", "properties": {}}},
    }

    def request(role: str) -> GenerationRequest:
        return GenerationRequest(
            request_id=role,
            params=SamplingParams(temperature=0, max_tokens=4),
            messages=(
                ChatMessage(role=role, content="Answer in French."),  # type: ignore[arg-type]
                ChatMessage(role="user", content="Hi"),
            ),
            tools=(tool,),
        )

    a, ca = await run(engine, request("developer"))
    b, cb = await run(engine, request("system"))
    assert (a, ca[-1].prompt_tokens) == (b, cb[-1].prompt_tokens)


# --- the official openai client through a real gateway ---------------------------------------------------


@pytest.fixture(scope="module")
def base_url(engine: Engine) -> Iterator[str]:
    services = GatewayServices(engines={SMOLLM2: SessionOwnedEngine(engine)})
    with ServerThread(create_app(GatewaySettings(), services)) as url:
        yield url


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_openai_chat_stream_equals_json_and_validates(base_url: str, spec: SpecValidator) -> None:
    messages = [{"role": "user", "content": "List three colours."}]
    whole = client(base_url).chat.completions.create(
        model=SMOLLM2, messages=messages, max_tokens=32, temperature=0
    )
    spec.check("CreateChatCompletionResponse", whole.model_dump(mode="json", exclude_unset=True))
    chunks = list(
        client(base_url).chat.completions.create(
            model=SMOLLM2,
            messages=messages,
            max_tokens=32,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:
        spec.check("CreateChatCompletionStreamResponse", chunk.model_dump(mode="json", exclude_unset=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        whole.choices[0].finish_reason
    ]
    assert whole.usage is not None and chunks[-1].usage is not None and chunks[-1].choices == []
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_completion_honours_stop_and_counts(base_url: str, spec: SpecValidator) -> None:
    reply = client(base_url).completions.create(
        model=SMOLLM2,
        prompt="The numbers from one to one hundred: one, two,",
        max_tokens=20,
        temperature=0,
        stop=[" five"],
    )
    spec.check("CreateCompletionResponse", reply.model_dump(mode="json", exclude_unset=True))
    assert " five" not in reply.choices[0].text and reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and 0 < reply.usage.completion_tokens < 20


def test_client_leaving_mid_stream_frees_the_slot(base_url: str, engine: Engine) -> None:
    body = {
        "model": SMOLLM2,
        "messages": [{"role": "user", "content": "Tell a very long story about a dragon."}],
        "max_tokens": 2000,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        assert active(engine) == 1
    deadline = time.monotonic() + 10
    while active(engine):
        assert time.monotonic() < deadline, "the engine kept generating after the client left"
        time.sleep(0.02)


def test_response_format_json_schema_is_honoured_or_refused(base_url: str, engine: Engine) -> None:
    import json

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    messages = [{"role": "user", "content": "Name the capital of France as JSON."}]
    if not engine.info.structured_output:
        with pytest.raises(openai.BadRequestError) as refused:
            client(base_url).chat.completions.create(
                model=SMOLLM2, messages=messages, max_tokens=40, response_format=response_format
            )
        assert refused.value.body["param"] == "response_format"  # type: ignore[index]
        return
    reply = client(base_url).chat.completions.create(
        model=SMOLLM2, messages=messages, max_tokens=60, temperature=0, response_format=response_format
    )
    place = json.loads(reply.choices[0].message.content or "")
    assert set(place) == {"city", "country"} and all(isinstance(v, str) for v in place.values())
