"""LoRA adapters end to end on CPU: a tiny random Llama base and a PEFT adapter the test builds, pushed to a
hub, served by the transformers engine (adapter merged), composed by ``aihub.compose`` and called over HTTP.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aihub.compose import build_services
from core.chat import GenerationRequest, SamplingParams
from core.engine import Engine
from core.errors import InvalidSpecError
from core.model_config import ModelConfig, adapter_aliases
from gateway.settings import GatewaySettings
from hub.adapter_import import import_adapter_folder
from hub.model_import import import_model_folder
from hub.store import LocalStore
from ray_cluster.config import AihubConfig
from serving.factory import AdapterSource, build_engines
from serving.settings import ServingSettings
from serving.transformers_engine import PEFT_PROBE_WARNING
from tests.support.server_thread import ServerThread

WORDS = tuple(
    [
        "the",
        "a",
        "pirate",
        "ship",
        "sails",
        "over",
        "sea",
        "and",
        "sky",
        "ahoy",
        "matey",
        "gold",
        "map",
        "island",
        "parrot",
        "captain",
        "crew",
        "wind",
        "storm",
        "port",
        "harbor",
        "rum",
        "treasure",
        "deck",
        "mast",
        "sail",
        "anchor",
        "wave",
        "tide",
        "moon",
        "sun",
        "star",
        "night",
        "day",
        "north",
        "south",
        "east",
        "west",
        "land",
        "ho",
        "yes",
        "no",
        "go",
        "stop",
        "big",
        "small",
        "old",
        "new",
        "red",
        "blue",
        "green",
    ]
)
PROMPT = "the pirate ship sails over the sea"
SETTINGS = ServingSettings(torch_threads=1, max_batch_size=4)


@contextmanager
def _quiet_peft() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", PEFT_PROBE_WARNING, FutureWarning)
        yield


@dataclass(frozen=True)
class TinyModels:
    base: Path
    adapter: Path
    other_base: Path  # same architecture, other weights: an adapter built on it must be refused


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<unk>", "<s>", "</s>", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return tokenizer


def _llama(folder: Path, seed: int, tokenizer: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("lora")
    tokenizer = _tokenizer()
    model = _llama(root / "base", 0, tokenizer)
    _llama(root / "other-base", 1, tokenizer)
    # init_lora_weights=False: random non-zero B, so the adapter changes the output from the start.
    config = LoraConfig(
        r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    with _quiet_peft():
        get_peft_model(model, config).save_pretrained(str(root / "adapter"))
    return TinyModels(base=root / "base", adapter=root / "adapter", other_base=root / "other-base")


def _peft_merged_greedy(base: Path, adapter: Path | None, max_new: int) -> str:
    """The reference: PEFT's own merged model, greedy, as the full text after the prompt."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is not None:
        with _quiet_peft():
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    ids = tokenizer(PROMPT, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        out = model.eval().generate(
            ids, max_new_tokens=max_new, do_sample=False, attention_mask=torch.ones_like(ids)
        )
    full = str(tokenizer.decode(out[0], skip_special_tokens=True, clean_up_tokenization_spaces=False))
    return full[len(PROMPT) :]


async def _greedy(engine: Engine, max_new: int) -> str:
    request = GenerationRequest(
        request_id="r", params=SamplingParams(temperature=0, max_tokens=max_new), prompt=PROMPT
    )
    return "".join([chunk.text async for chunk in engine.generate(request)])


def _store(tmp_path: Path, tiny: TinyModels) -> LocalStore:
    store = LocalStore(tmp_path / "hub", cache_dir=tmp_path / "cache")
    import_model_folder(store, "models/tiny-llama", tiny.base, context_length=256)
    import_model_folder(store, "models/other-llama", tiny.other_base, context_length=256)
    import_adapter_folder(store, "adapters/pirate", tiny.adapter, base="models/tiny-llama:latest")
    return store


def _settings(tmp_path: Path, models: tuple[ModelConfig, ...]) -> AihubConfig:
    return AihubConfig.build(tmp_path, models, serving=SETTINGS)


TINY = ModelConfig(
    id="tiny-llama", ref="models/tiny-llama:latest", engine="transformers", adapters=("adapters/pirate",)
)


async def test_adapter_engine_equals_peft_merged_model_and_differs_from_base(tiny: TinyModels) -> None:
    engines = build_engines(
        "tiny",
        tiny.base,
        SETTINGS,
        digest="sha256:" + "1" * 64,
        adapters=[AdapterSource("tiny+adapters/pirate", tiny.adapter, "sha256:" + "2" * 64)],
    )
    assert set(engines) == {"tiny", "tiny+adapters/pirate"}
    adapted = engines["tiny+adapters/pirate"]
    assert adapted.info.digest == "sha256:" + "2" * 64
    for engine in engines.values():
        await engine.start()
    try:
        base_text, adapter_text = await _greedy(engines["tiny"], 12), await _greedy(adapted, 12)
    finally:
        for engine in engines.values():
            await engine.aclose()
    assert base_text == _peft_merged_greedy(tiny.base, None, 12)
    assert adapter_text == _peft_merged_greedy(tiny.base, tiny.adapter, 12)
    assert adapter_text != base_text


def test_compose_serves_adapter_bound_by_digest(tmp_path: Path, tiny: TinyModels) -> None:
    store = _store(tmp_path, tiny)
    adapter = store.resolve("adapters/pirate:latest")
    base = store.resolve("models/tiny-llama:latest")
    assert adapter.spec["base"] == base.pinned_ref  # pinned at import
    services = build_services(_settings(tmp_path, (TINY,)), store)
    assert set(services.engines) == {"tiny-llama", "tiny-llama+adapters/pirate"}
    assert services.engines["tiny-llama"].info.digest == base.digest
    assert services.engines["tiny-llama+adapters/pirate"].info.digest == adapter.digest


def test_adapter_on_another_base_is_refused(tmp_path: Path, tiny: TinyModels) -> None:
    store = _store(tmp_path, tiny)
    wrong = ModelConfig(
        id="other", ref="models/other-llama:latest", engine="transformers", adapters=("adapters/pirate",)
    )
    with pytest.raises(InvalidSpecError, match=r"adapter adapters/pirate@sha256:\w+ was built for base"):
        build_services(_settings(tmp_path, (wrong,)), store)
    # a new version of the base (its tag moved) is another digest: the old adapter no longer fits
    import_model_folder(store, "models/tiny-llama", tiny.other_base, context_length=256)
    with pytest.raises(InvalidSpecError, match="import the adapter against this base"):
        build_services(_settings(tmp_path, (TINY,)), store)


def test_adapter_served_as_a_model_of_its_own_is_refused(tmp_path: Path, tiny: TinyModels) -> None:
    store = _store(tmp_path, tiny)
    alone = ModelConfig(id="pirate", ref="adapters/pirate:latest", engine="transformers")
    with pytest.raises(InvalidSpecError, match="is an adapter"):
        build_services(_settings(tmp_path, (alone,)), store)


def test_adapter_aliases_name_the_hub_form() -> None:
    assert adapter_aliases([TINY]) == {
        "models/tiny-llama+adapters/pirate:latest": "tiny-llama+adapters/pirate"
    }
    gateway = GatewaySettings(model_aliases={"pirate": "tiny-llama+adapters/pirate"}).with_aliases(
        adapter_aliases([TINY])
    )
    assert gateway.model_aliases == {
        "models/tiny-llama+adapters/pirate:latest": "tiny-llama+adapters/pirate",
        "pirate": "tiny-llama+adapters/pirate",
    }


@pytest.fixture
def http_server(tmp_path: Path, tiny: TinyModels) -> Iterator[str]:
    from gateway.app import create_app

    settings = _settings(tmp_path, (TINY,))
    gateway = GatewaySettings(model_aliases={"pirate": "tiny-llama+adapters/pirate"}).with_aliases(
        adapter_aliases(settings.app.models)
    )
    app = create_app(gateway, build_services(settings, _store(tmp_path, tiny)))
    with ServerThread(app) as url:
        yield url


def test_openai_client_names_the_adapter(http_server: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{http_server}/v1", api_key="unused", max_retries=0, timeout=60)

    def complete(model: str) -> tuple[str, str]:
        reply = client.completions.create(model=model, prompt=PROMPT, max_tokens=10, temperature=0)
        return reply.model, reply.choices[0].text

    base_model, base_text = complete("tiny-llama")
    answers = {
        model: complete(model)
        for model in ("tiny-llama+adapters/pirate", "models/tiny-llama+adapters/pirate:latest", "pirate")
    }
    assert base_model == "tiny-llama"
    assert {model for model, _ in answers.values()} == {"tiny-llama+adapters/pirate"}
    assert len({text for _, text in answers.values()}) == 1
    assert answers["pirate"][1] != base_text
    listed = {model.id for model in client.models.list()}
    assert {"tiny-llama", "tiny-llama+adapters/pirate", "pirate"} <= listed
    chat = client.chat.completions.create(
        model="pirate", messages=[{"role": "user", "content": "ahoy matey"}], max_tokens=5, temperature=0
    )
    assert chat.model == "tiny-llama+adapters/pirate"
    assert chat.usage is not None and chat.usage.completion_tokens >= 1
