# Vendored from openai-agents 0.24.0 (sdist, tests/test_responses.py), MIT License,
# Copyright (c) 2025 OpenAI. Only the helper the vendored session tests use.
from __future__ import annotations

from openai.types.responses import (
    ResponseOutputItem,
    ResponseOutputMessage,
    ResponseOutputText,
)


def get_text_message(content: str) -> ResponseOutputItem:
    return ResponseOutputMessage(
        id="1",
        type="message",
        role="assistant",
        content=[ResponseOutputText(text=content, type="output_text", annotations=[], logprobs=[])],
        status="completed",
    )
