"""The request schema: every field the gateway accepts on ``/v1/chat/completions`` and ``/v1/completions``, checked
before anything is reserved, counted or sent upstream.

``check_request(kind, body)`` returns ``None`` for a well-formed body or the first :class:`Invalid` found (message,
``param`` path such as ``messages[2].content[0].text``, ``code``), which the app answers with a 400 in OpenAI's
error shape. The checks are plain Python (no model building per request: a few microseconds for a typical body).

- **Depth**: no value nests deeper than :data:`MAX_DEPTH` (32) containers, checked iteratively first, so neither this
  module nor the JSON encoder that forwards the body can reach a recursion limit.
- **Known fields**: type, range and enum as OpenAI documents them (vLLM's extensions ``top_k``, ``min_p``,
  ``repetition_penalty`` included); ``stream_options`` only with ``stream: true``.
- **Other fields** (vLLM extras such as ``guided_json`` or ``chat_template_kwargs``) are passed through unchecked
  apart from the depth and the body size limit (``server.maxBodyBytes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32
"""Deepest nesting of objects and arrays accepted anywhere in a request body."""
MAX_MESSAGES = 4096
MAX_TOOLS = 128
MAX_STOP = 16
MAX_LOGIT_BIAS = 1024
MAX_NAME = 256
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_INT64 = 2**63


@dataclass(frozen=True)
class Invalid:
    """Why a request body is malformed: ``message`` for the client, ``param`` the field path."""

    message: str
    param: str | None
    code: str | None = "invalid_value"


class _Bad(Exception):
    def __init__(self, param: str | None, message: str, code: str = "invalid_value"):
        super().__init__(message)
        self.param, self.message, self.code = param, message, code


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests more than ``limit`` containers deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            if d > limit:
                return True
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            if d > limit:
                return True
            stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return False


def _tname(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _str(p: str, v: Any, *, max_len: int | None = None, empty: bool = True) -> None:
    if not isinstance(v, str):
        raise _Bad(p, f"'{p}' must be a string, not {_tname(v)}.", "invalid_type")
    if not empty and not v:
        raise _Bad(p, f"'{p}' must not be empty.")
    if max_len is not None and len(v) > max_len:
        raise _Bad(p, f"'{p}' is {len(v)} characters long, above the limit of {max_len}.")


def _bool(p: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise _Bad(p, f"'{p}' must be a boolean (true or false), not {_tname(v)}.", "invalid_type")


def _obj(p: str, v: Any) -> dict:
    if not isinstance(v, dict):
        raise _Bad(p, f"'{p}' must be an object, not {_tname(v)}.", "invalid_type")
    return v


def _arr(p: str, v: Any, *, max_items: int | None = None, empty: bool = True) -> list:
    if not isinstance(v, list):
        raise _Bad(p, f"'{p}' must be an array, not {_tname(v)}.", "invalid_type")
    if not empty and not v:
        raise _Bad(p, f"'{p}' must not be empty.")
    if max_items is not None and len(v) > max_items:
        raise _Bad(p, f"'{p}' has {len(v)} items, above the limit of {max_items}.")
    return v


def _num(p: str, v: Any, lo: float, hi: float, *, lo_open: bool = False) -> None:
    if not _is_num(v):
        raise _Bad(p, f"'{p}' must be a number, not {_tname(v)}.", "invalid_type")
    if math.isnan(v) or (v <= lo if lo_open else v < lo) or v > hi:
        left = "(" if lo_open else "["
        raise _Bad(p, f"'{p}' is {v}, outside the allowed range {left}{lo:g}, {hi:g}].")


def _int(p: str, v: Any, lo: int, hi: int) -> None:
    if not _is_int(v):
        raise _Bad(p, f"'{p}' must be an integer, not {_tname(v)}.", "invalid_type")
    if not lo <= v <= hi:
        raise _Bad(p, f"'{p}' is {v}, outside the allowed range [{lo}, {hi}].")


def _enum(p: str, v: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(v, str) or v not in allowed:
        shown = repr(v) if isinstance(v, str) else _tname(v)
        raise _Bad(p, f"'{p}' is {shown[:80]}; expected one of: {', '.join(allowed)}.")


# --- fields shared by both endpoints ------------------------------------------------------------------------------

def _stop(p: str, v: Any) -> None:
    if v is None or isinstance(v, str):
        return
    for i, s in enumerate(_arr(p, v, max_items=MAX_STOP)):
        _str(f"{p}[{i}]", s, max_len=1024)


def _logit_bias(p: str, v: Any) -> None:
    if v is None:
        return
    d = _obj(p, v)
    if len(d) > MAX_LOGIT_BIAS:
        raise _Bad(p, f"'{p}' has {len(d)} entries, above the limit of {MAX_LOGIT_BIAS}.")
    for k, b in d.items():
        if not k.lstrip("-").isdigit():
            raise _Bad(f"{p}.{k[:40]}", f"'{p}' keys must be token ids (integers as strings).")
        _num(f"{p}.{k}", b, -100, 100)


def _stream_options(body: dict) -> None:
    if "stream_options" not in body or body["stream_options"] is None:
        return
    if body.get("stream") is not True:
        raise _Bad("stream_options", "'stream_options' is only allowed when 'stream' is true.")
    so = _obj("stream_options", body["stream_options"])
    for k in ("include_usage", "continuous_usage_stats"):
        if k in so and so[k] is not None:
            _bool(f"stream_options.{k}", so[k])


_COMMON = {
    "temperature": lambda p, v: _num(p, v, 0, 2),
    "top_p": lambda p, v: _num(p, v, 0, 1),
    "top_k": lambda p, v: _int(p, v, -1, 1_000_000),
    "min_p": lambda p, v: _num(p, v, 0, 1),
    "presence_penalty": lambda p, v: _num(p, v, -2, 2),
    "frequency_penalty": lambda p, v: _num(p, v, -2, 2),
    "repetition_penalty": lambda p, v: _num(p, v, 0, 10, lo_open=True),
    "seed": lambda p, v: _int(p, v, -_INT64, _INT64 - 1),
    "n": lambda p, v: _int(p, v, 1, 16),
    "max_tokens": lambda p, v: _int(p, v, 1, 2**31 - 1),
    "max_completion_tokens": lambda p, v: _int(p, v, 1, 2**31 - 1),
    "stop": _stop,
    "stream": _bool,
    "user": lambda p, v: _str(p, v, max_len=MAX_NAME),
    "logit_bias": _logit_bias,
}


# --- chat ---------------------------------------------------------------------------------------------------------

def _content(p: str, v: Any, role: str) -> None:
    if v is None:
        if role in ("assistant", "function"):
            return  # an assistant turn that only calls tools
        raise _Bad(p, f"'{p}' is required for a {role} message.")
    if isinstance(v, str):
        return
    for j, part in enumerate(_arr(p, v, empty=False)):
        q = f"{p}[{j}]"
        _obj(q, part)
        _enum(f"{q}.type", part.get("type"), ("text",))
        if "text" not in part:
            raise _Bad(f"{q}.text", f"'{q}.text' is required for a text part.")
        _str(f"{q}.text", part["text"])


def _tool_calls(p: str, v: Any) -> None:
    for i, call in enumerate(_arr(p, v)):
        q = f"{p}[{i}]"
        _obj(q, call)
        if "id" in call:
            _str(f"{q}.id", call["id"], max_len=MAX_NAME)
        if "type" in call:
            _enum(f"{q}.type", call["type"], ("function",))
        fn = _obj(f"{q}.function", call.get("function"))
        _str(f"{q}.function.name", fn.get("name"), max_len=MAX_NAME, empty=False)
        _str(f"{q}.function.arguments", fn.get("arguments"))


def _messages(p: str, v: Any) -> None:
    msgs = _arr(p, v, max_items=MAX_MESSAGES, empty=False)
    for i, m in enumerate(msgs):
        q = f"{p}[{i}]"
        _obj(q, m)
        role = m.get("role")
        _enum(f"{q}.role", role, ROLES)
        if "content" not in m and role not in ("assistant",):
            raise _Bad(f"{q}.content", f"'{q}.content' is required for a {role} message.")
        _content(f"{q}.content", m.get("content"), role)
        if m.get("name") is not None:
            _str(f"{q}.name", m["name"], max_len=MAX_NAME)
        if m.get("tool_calls") is not None:
            if role != "assistant":
                raise _Bad(f"{q}.tool_calls", f"'{q}.tool_calls' is only allowed on assistant messages.")
            _tool_calls(f"{q}.tool_calls", m["tool_calls"])
        if role == "tool":
            _str(f"{q}.tool_call_id", m.get("tool_call_id"), max_len=MAX_NAME, empty=False)
        elif m.get("tool_call_id") is not None:
            _str(f"{q}.tool_call_id", m["tool_call_id"], max_len=MAX_NAME)
        if m.get("refusal") is not None:
            _str(f"{q}.refusal", m["refusal"])
        if m.get("function_call") is not None:
            fc = _obj(f"{q}.function_call", m["function_call"])
            _str(f"{q}.function_call.name", fc.get("name"), max_len=MAX_NAME, empty=False)
            _str(f"{q}.function_call.arguments", fc.get("arguments"))


def _tools(p: str, v: Any) -> None:
    for i, t in enumerate(_arr(p, v, max_items=MAX_TOOLS)):
        q = f"{p}[{i}]"
        _obj(q, t)
        _enum(f"{q}.type", t.get("type"), ("function",))
        fn = _obj(f"{q}.function", t.get("function"))
        _str(f"{q}.function.name", fn.get("name"), max_len=64, empty=False)
        if fn.get("description") is not None:
            _str(f"{q}.function.description", fn["description"])
        if fn.get("parameters") is not None:
            _obj(f"{q}.function.parameters", fn["parameters"])
        if fn.get("strict") is not None:
            _bool(f"{q}.function.strict", fn["strict"])


def _tool_choice(p: str, v: Any) -> None:
    if isinstance(v, str):
        _enum(p, v, ("none", "auto", "required"))
        return
    tc = _obj(p, v)
    _enum(f"{p}.type", tc.get("type"), ("function",))
    fn = _obj(f"{p}.function", tc.get("function"))
    _str(f"{p}.function.name", fn.get("name"), max_len=64, empty=False)


def _response_format(p: str, v: Any) -> None:
    rf = _obj(p, v)
    _enum(f"{p}.type", rf.get("type"), ("text", "json_object", "json_schema"))
    if rf["type"] == "json_schema":
        js = _obj(f"{p}.json_schema", rf.get("json_schema"))
        _str(f"{p}.json_schema.name", js.get("name"), max_len=64, empty=False)
        if js.get("schema") is not None:
            _obj(f"{p}.json_schema.schema", js["schema"])
        if js.get("strict") is not None:
            _bool(f"{p}.json_schema.strict", js["strict"])


def _metadata(p: str, v: Any) -> None:
    d = _obj(p, v)
    if len(d) > 16:
        raise _Bad(p, f"'{p}' has {len(d)} keys, above the limit of 16.")
    for k, x in d.items():
        _str(f"{p}.{k[:64]}", x, max_len=512)


_CHAT = _COMMON | {
    "messages": _messages,
    "logprobs": _bool,
    "top_logprobs": lambda p, v: _int(p, v, 0, 20),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _bool,
    "response_format": _response_format,
    "store": _bool,
    "metadata": _metadata,
    "reasoning_effort": lambda p, v: _enum(p, v, ("minimal", "low", "medium", "high")),
    "service_tier": lambda p, v: _str(p, v, max_len=64),
}


# --- completions --------------------------------------------------------------------------------------------------

def _prompt(p: str, v: Any) -> None:
    if isinstance(v, str):
        return
    items = _arr(p, v, empty=False)
    if all(isinstance(x, str) for x in items):
        return
    if all(_is_int(x) and 0 <= x < 2**31 for x in items):
        return
    raise _Bad(p, f"'{p}' must be a string, an array of strings or an array of token ids (non-negative "
                  f"integers).", "invalid_type")


_COMPLETION = _COMMON | {
    "prompt": _prompt,
    "logprobs": lambda p, v: _int(p, v, 0, 20),
    "echo": _bool,
    "suffix": lambda p, v: _str(p, v),
    "best_of": lambda p, v: _int(p, v, 1, 16),
}


def check_request(kind: str, body: dict[str, Any]) -> Invalid | None:
    """The first problem of a parsed request body (``kind``: ``chat`` or ``completion``), or None."""
    if depth_exceeds(body):
        return Invalid(f"The request nests objects or arrays more than {MAX_DEPTH} levels deep.", None,
                       "nesting_too_deep")
    try:
        model = body.get("model")
        if model is None:
            raise _Bad("model", "'model' is required.", "missing_required_parameter")
        _str("model", model, max_len=MAX_NAME, empty=False)
        required = "messages" if kind == "chat" else "prompt"
        if required not in body:
            raise _Bad(required, f"'{required}' is required.", "missing_required_parameter")
        fields = _CHAT if kind == "chat" else _COMPLETION
        for k, v in body.items():
            check = fields.get(k)
            if check is None:
                continue
            if v is None and k not in ("messages", "prompt"):
                continue  # explicit null: the default applies, as OpenAI's API does
            check(k, v)
        _stream_options(body)
    except _Bad as exc:
        return Invalid(exc.message, exc.param, exc.code)
    return None
