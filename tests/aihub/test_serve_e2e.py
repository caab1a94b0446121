"""`aihub serve` end to end: the real SmolLM2 model, the official openai client, the OpenAI spec."""

import asyncio

import httpx
import openai
import pytest

from aihub.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _client(served: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.base_url}/v1", api_key="unused", max_retries=0)


def test_default_engine_is_the_one_auto_picks_here(served: GatewayProcess) -> None:
    """`make serve`'s model runs on vLLM where vLLM runs (this project's AVX-512 machines), else transformers."""
    from serving.vllm_support import vllm_support

    on_vllm = f"vLLM serves {MODEL} from" in served.log_path.read_text()
    assert on_vllm == vllm_support("cpu").usable


def test_chat_completion_validates_and_answers(served: GatewayProcess, openapi_errors) -> None:
    reply = _client(served).chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=24, temperature=0
    )
    assert (
        openapi_errors("CreateChatCompletionResponse", reply.model_dump(mode="json", exclude_unset=True))
        == []
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_stream_equals_non_streamed_at_temperature_zero(served: GatewayProcess, openapi_errors) -> None:
    client = _client(served)
    messages = [{"role": "user", "content": "List three colours."}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=40, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=40,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:
        assert (
            openapi_errors(
                "CreateChatCompletionStreamResponse", chunk.model_dump(mode="json", exclude_unset=True)
            )
            == []
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason is not None]
    assert len(finishing) == 1
    assert finishing[0].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_async_client_and_alias(served: GatewayProcess, openapi_errors) -> None:
    async def ask() -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{served.base_url}/v1", api_key="unused", max_retries=0)
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=QUESTION, max_tokens=16, temperature=0
                )
                for _ in range(4)
            )
        )
        await client.close()
        return [r.choices[0].message.content or "" for r in replies]

    answers = asyncio.run(ask())
    assert len(set(answers)) == 1  # batched greedy decoding gives every client the same answer
    models = _client(served).models.list()
    assert {"gpt-4o-mini", MODEL} <= {m.id for m in models.data}


def test_completions_endpoint(served: GatewayProcess, openapi_errors) -> None:
    reply = _client(served).completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert openapi_errors("CreateCompletionResponse", reply.model_dump(mode="json", exclude_unset=True)) == []
    assert reply.choices[0].text


def test_context_overflow_is_a_400_in_openai_format(served: GatewayProcess, openapi_errors) -> None:
    long_text = "word " * 9000
    response = httpx.post(
        f"{served.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": long_text}]},
        timeout=60,
    )
    assert response.status_code == 400
    assert openapi_errors("ErrorResponse", response.json()) == []
    assert "context" in response.json()["error"]["message"]


def test_metrics_count_the_requests(served: GatewayProcess) -> None:
    text = httpx.get(f"{served.base_url}/metrics", timeout=10).text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    ttft = [
        v
        for k, v in samples.items()
        if k.startswith("aihub_time_to_first_token_seconds_count") and MODEL in k
    ]
    assert ttft and ttft[0] >= 1
    completion_tokens = [
        v for k, v in samples.items() if k.startswith("aihub_completion_tokens_total") and MODEL in k
    ]
    assert completion_tokens and completion_tokens[0] > 0


def test_docs_pipeline_answers_with_citations_and_composition(served: GatewayProcess, openapi_errors) -> None:
    raw = _client(served).chat.completions.with_raw_response.create(
        model="rag/aihub-docs",
        messages=[{"role": "user", "content": "Which command runs the tests?"}],
        max_tokens=40,
    )
    assert raw.headers["x-aihub-composition"].startswith("sha256:")
    body = raw.http_response.json()
    assert (
        openapi_errors("CreateChatCompletionResponse", {k: v for k, v in body.items() if k != "citations"})
        == []
    )
    assert body["citations"], "a RAG answer cites the documents it was given"
    assert {"doc_id", "source", "title", "score", "snippet"} <= set(body["citations"][0])


def test_docs_pipeline_streams_citations_first(served: GatewayProcess) -> None:
    with httpx.stream(
        "POST",
        f"{served.base_url}/v1/chat/completions",
        json={
            "model": "rag/aihub-docs",
            "messages": [{"role": "user", "content": "What is the hub?"}],
            "max_tokens": 16,
            "stream": True,
        },
        timeout=120,
    ) as response:
        assert response.headers["x-aihub-composition"].startswith("sha256:")
        events = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert '"citations"' in events[0]


def test_docs_agent_runs_with_the_real_model(served: GatewayProcess, openapi_errors) -> None:
    reply = _client(served).chat.completions.create(
        model="agent/aihub-helper",
        messages=[{"role": "user", "content": "How do I run aihub's tests?"}],
        max_tokens=32,
        temperature=0,
    )
    assert (
        openapi_errors("CreateChatCompletionResponse", reply.model_dump(mode="json", exclude_unset=True))
        == []
    )
    assert reply.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert {"agent/aihub-helper", "rag/aihub-docs"} <= {m.id for m in _client(served).models.list().data}


# Last in this module: it kills the served model's engine process.
def test_an_engine_that_dies_mid_stream_ends_the_stream_cleanly_and_ready_says_so(
    served: GatewayProcess,
) -> None:
    import psutil

    if f"vLLM serves {MODEL} from" not in served.log_path.read_text():
        pytest.skip("the transformers engine runs in the server's own process: nothing to kill apart")
    assert served.process is not None
    server = psutil.Process(served.process.pid)
    cores = [p for p in server.children(recursive=True) if "EngineCore" in p.name() + " ".join(p.cmdline())]
    assert cores, [(p.pid, p.name()) for p in server.children(recursive=True)]
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count from 1 to 2000, one number a line."}],
        "max_tokens": 2000,
        "stream": True,
    }
    with httpx.stream("POST", f"{served.base_url}/v1/chat/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        payloads = []
        for line in lines:
            if line.startswith("data: "):
                payloads.append(line[len("data: ") :])
                if len(payloads) == 3:  # generation is under way
                    for core in cores:
                        core.kill()
                    break
        payloads += [line[len("data: ") :] for line in lines if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"  # never a cut connection
    assert '"error"' in payloads[-2], payloads[-3:]

    ready = httpx.get(f"{served.base_url}/ready", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable" and MODEL in ready.json()["engines"]
    after = httpx.post(
        f"{served.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": QUESTION, "max_tokens": 4},
        timeout=60,
    )
    assert after.status_code == 503, after.text
    assert set(after.json()["error"]) == {"message", "type", "param", "code"}
