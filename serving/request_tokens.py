"""A generation request as prompt token ids, and the number of new tokens it may have.

Both local engines (transformers and vLLM) tokenize with the model folder's own Hugging Face tokenizer
and check requests the same way, so they see the same prompt and refuse the same requests.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.chat import GenerationRequest
from core.errors import ContextLengthExceededError, InvalidRequestError
from serving.chat_messages import template_messages

# Longest token (in characters) of each tokenizer seen, by id (the tokenizers live as long as engines).
_LONGEST_TOKEN: dict[int, tuple[Any, int]] = {}


async def request_prompt_ids(tokenizer: Any, request: GenerationRequest, context_length: int) -> list[int]:
    """``prompt_token_ids`` after a cheap length check, and off the event loop (tokenizing megabytes
    takes seconds). Raises ContextLengthExceededError for a text that cannot fit, untokenized."""
    refuse_overlong_text(tokenizer, request, context_length)
    return await asyncio.to_thread(prompt_token_ids, tokenizer, request)


def longest_token_chars(tokenizer: Any) -> int:
    """Characters in the tokenizer's longest token, as its vocabulary spells it: an upper bound on the
    characters one token stands for (byte-level vocabularies spell each byte as one character)."""
    cached = _LONGEST_TOKEN.get(id(tokenizer))
    if cached is None or cached[0] is not tokenizer:
        longest = max((len(token) for token in tokenizer.get_vocab()), default=1)
        cached = _LONGEST_TOKEN[id(tokenizer)] = (tokenizer, max(1, longest))
    return cached[1]


def request_chars(request: GenerationRequest) -> int:
    """Characters of text the prompt holds at least (the chat template only adds to it)."""
    if request.messages is None:
        return len(request.prompt or "")
    return sum(len(m.content) + sum(len(call.arguments) for call in m.tool_calls) for m in request.messages)


def refuse_overlong_text(tokenizer: Any, request: GenerationRequest, context_length: int) -> None:
    """Refuse, without tokenizing, a prompt with more characters than ``context_length`` of the
    tokenizer's longest tokens could hold: it has more tokens than fit, whatever they are."""
    if context_length <= 0:
        return
    chars, per_token = request_chars(request), longest_token_chars(tokenizer)
    if chars > context_length * per_token:
        raise ContextLengthExceededError(
            f"this model's maximum context length is {context_length} tokens; the prompt has "
            f"{chars} characters, more than {context_length} tokens (at most {per_token} characters "
            "each) can hold",
            param="messages" if request.messages is not None else "prompt",
        )


def prompt_token_ids(tokenizer: Any, request: GenerationRequest) -> list[int]:
    """Chat messages through the tokenizer's chat template, or a raw prompt as it is."""
    if request.messages is not None:
        template = tokenizer.chat_template or ""
        ids = tokenizer.apply_chat_template(
            template_messages(request.messages, knows_developer="developer" in template),
            tools=list(request.tools) or None,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=False,
        )
        return [int(token) for token in ids]
    if request.prompt is None:
        raise InvalidRequestError("a generation needs messages or a prompt", param="messages")
    return [int(token) for token in tokenizer.encode(request.prompt, add_special_tokens=False)]


def refuse_json_schema(request: GenerationRequest, engine: str) -> None:
    """Engines without constrained decoding say so instead of answering free text to a JSON request."""
    if request.json_schema is not None:
        raise InvalidRequestError(
            f"the {engine} engine cannot constrain output to a JSON schema; serve the model on the vLLM "
            "engine for response_format",
            param="response_format",
            code="unsupported_value",
        )


def new_token_budget(request: GenerationRequest, prompt_tokens: int, context_length: int) -> int:
    """How many tokens the request may generate; raises when it is malformed or exceeds the context."""
    params = request.params
    wanted = params.max_tokens
    if wanted is not None and wanted < 1:
        raise InvalidRequestError("max_tokens must be at least 1", param="max_tokens")
    if params.temperature < 0:
        raise InvalidRequestError("temperature must not be negative", param="temperature")
    if not 0 < params.top_p <= 1:
        raise InvalidRequestError("top_p must be in (0, 1]", param="top_p")
    if prompt_tokens == 0:
        raise InvalidRequestError("the prompt is empty", param="prompt")
    if prompt_tokens >= context_length or (wanted is not None and prompt_tokens + wanted > context_length):
        raise ContextLengthExceededError(
            f"this model's maximum context length is {context_length} tokens; the prompt has "
            f"{prompt_tokens} tokens and {wanted or 0} more were requested",
            param="messages" if request.messages is not None else "prompt",
        )
    return wanted if wanted is not None else context_length - prompt_tokens
