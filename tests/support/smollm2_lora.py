"""A small PEFT LoRA adapter on SmolLM2-135M, made by the tests (random, seeded weights)."""

from __future__ import annotations

import warnings
from pathlib import Path

from serving.transformers_engine import PEFT_PROBE_WARNING

TARGETS = ("q_proj", "v_proj", "o_proj")


def make_smollm2_lora(base: Path, out: Path, *, seed: int = 0, rank: int = 8, alpha: int = 16) -> Path:
    """An adapter whose random B matrices change the model's answers from the first token.

    ``init_lora_weights=False`` draws B at random too (PEFT's default zeroes it, a no-op adapter).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, local_files_only=True)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(TARGETS), init_lora_weights=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", PEFT_PROBE_WARNING, FutureWarning)
        get_peft_model(model, config).save_pretrained(str(out))
    return out


def peft_greedy(base: Path, adapter: Path | None, prompt_ids: list[int], max_new: int) -> list[int]:
    """The reference: PEFT's merged model (float32), greedy, the new token ids."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, local_files_only=True)
    if adapter is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", PEFT_PROBE_WARNING, FutureWarning)
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    ids = torch.tensor([prompt_ids])
    with torch.inference_mode():
        out = model.eval().generate(
            ids, max_new_tokens=max_new, do_sample=False, attention_mask=torch.ones_like(ids)
        )
    return [int(token) for token in out[0, ids.shape[1] :]]
