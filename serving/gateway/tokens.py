"""Prompt token counting: exact with the served model's tokenizer, a conservative upper bound without one.

The limiter reserves ``prompt + max_tokens`` at admission and settles to the upstream's reported usage, so the
count only has to be an upper bound. With a ``tokenizer.json`` the count is the tokenizer's plus
``messageOverheadTokens`` per message for the chat template. Without one it is the UTF-8 byte length plus the same
overhead: byte-level BPE (GPT-2, Llama 3, Qwen) and SentencePiece with byte fallback (Llama 2, Mistral) never emit
more tokens than bytes, so this never undercounts (it overcounts English by about 4x, which only makes admission
stricter).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any


class PromptError(ValueError):
    """A request whose prompt cannot be counted (for example non-text content parts)."""


def message_texts(messages: list[dict[str, Any]]) -> list[str]:
    """Every text a chat prompt carries (role, content, names, tool-call arguments). Rejects non-text parts."""
    out: list[str] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise PromptError(f"messages[{i}] must be an object")
        out.append(str(m.get("role", "")))
        content = m.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise PromptError(f"messages[{i}].content[{j}]: only text content parts are supported")
                out.append(str(part.get("text", "")))
        elif content is not None:
            raise PromptError(f"messages[{i}].content must be a string or a list of text parts")
        if m.get("name"):
            out.append(str(m["name"]))
        for call in m.get("tool_calls") or []:
            fn = (call or {}).get("function") or {}
            out.append(str(fn.get("name", "")))
            out.append(str(fn.get("arguments", "")))
    return out


class TokenCounter:
    """Counts prompt tokens for one route."""

    def __init__(self, tokenizer_file: str | Path | None = None, *, message_overhead_tokens: int = 8):
        self.overhead = message_overhead_tokens
        self.exact = tokenizer_file is not None
        self._tok = _load(str(tokenizer_file)) if tokenizer_file is not None else None

    def count_text(self, text: str) -> int:
        if self._tok is None:
            return len(text.encode("utf-8"))
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def count_chat(self, messages: list[dict[str, Any]], tools: Any = None) -> int:
        texts = message_texts(messages)
        n = sum(self.count_text(t) for t in texts if t) + self.overhead * (len(messages) + 1)
        if tools:
            import json

            n += self.count_text(json.dumps(tools, separators=(",", ":")))
        return n

    def count_prompt(self, prompt: Any) -> int:
        if isinstance(prompt, str):
            return self.count_text(prompt) + self.overhead
        if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
            return sum(self.count_text(p) + self.overhead for p in prompt)
        if isinstance(prompt, list) and all(isinstance(p, int) for p in prompt):
            return len(prompt)
        raise PromptError("prompt must be a string, a list of strings or a list of token ids")


@lru_cache(maxsize=16)
def _load(path: str):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    tok.no_padding()  # some tokenizer.json files pad to a fixed length or truncate; counting needs neither
    tok.no_truncation()
    return tok
