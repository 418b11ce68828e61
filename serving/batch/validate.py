"""Validation of a batch input file: every line is checked before anything is queued.

A batch input is JSONL, one request per line, in OpenAI's Batch API shape::

    {"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "...", ...}}

:func:`validate_batch` returns the parsed :class:`BatchRecord` list or raises :class:`BatchValidationError` listing
every bad line (``line 7: custom_id 'a1' repeats line 3``); ``errors_object()`` gives the same list in OpenAI's
batch ``errors`` shape (``{"object": "list", "data": [{"code", "message", "param", "line"}]}``).

Rules (each with a test): the file size and line count limits; each line a JSON object; ``custom_id`` a non-empty
string, unique in the file; ``method`` ``POST``; ``url`` one of :data:`ENDPOINTS`; one ``url`` for the whole file
(a batch has one endpoint, as in OpenAI's API); ``body`` an object whose ``model`` is the same on every line and
one of the tenant's models; the body valid for its endpoint (the gateway's request schema for chat and completions,
:func:`check_embedding` for embeddings); the estimated tokens of the line (prompt upper bound plus ``max_tokens``)
within the per-line limit.

Default limits are OpenAI's documented Batch API limits: "The file can contain up to 50,000 requests, and can be up
to 200 MB in size" (API reference, ``POST /v1/batches``, field ``input_file_id``:
platform.openai.com/docs/api-reference/batch/create;
the same text in the SDK type docs, e.g. docs.rs async-openai 0.42 ``BatchRequest``; read 2026-12-05).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from problems import Problem, ProblemsError, missing
from serving.gateway.schema import check_request, depth_exceeds
from serving.gateway.tokens import PromptError, TokenCounter

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
"""The endpoints a batch line may call."""
MAX_FILE_BYTES = 200 * 1024 * 1024
"""Largest input file accepted (OpenAI: 200 MB)."""
MAX_LINES = 50_000
"""Most requests in one input file (OpenAI: 50,000)."""
MAX_LINE_TOKENS = 131_072
"""Default upper bound of estimated tokens (prompt + completion allowance) per line."""
DEFAULT_MAX_TOKENS = 1024
"""Completion allowance counted for a chat or completion line that sets no ``max_tokens``."""
MAX_SHOWN_ERRORS = 1000
"""Most line errors kept in one error (the count of the rest is reported)."""

_KIND = {"/v1/chat/completions": "chat", "/v1/completions": "completion", "/v1/embeddings": "embedding"}


@dataclass(frozen=True)
class BatchRecord:
    """One valid input line."""

    line: int
    """1-based line number in the input file (its position in the assembled output)."""
    custom_id: str
    url: str
    body: dict[str, Any]
    tokens: int
    """Estimated tokens: an upper bound of the prompt plus the completion allowance."""

    def to_json(self) -> dict[str, Any]:
        return {"custom_id": self.custom_id, "method": "POST", "url": self.url, "body": self.body}


@dataclass(frozen=True)
class LineError:
    """One bad line: OpenAI's batch error item."""

    line: int | None
    code: str
    message: str
    param: str | None = None

    def openai(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}

    def problem(self) -> Problem:
        where = f"line {self.line}" if self.line is not None else "file"
        return missing(where, self.message, code=self.code)


class BatchValidationError(ProblemsError):
    """Every bad line of a batch input file; ``errors`` in OpenAI's shape via :meth:`errors_object`."""

    def __init__(self, errors: Iterable[LineError], *, omitted: int = 0):
        self.errors = list(errors)
        self.omitted = omitted
        probs = [e.problem() for e in self.errors]
        if omitted:
            probs.append(missing("file", f"{omitted} more bad lines not listed", code="too_many_errors"))
        super().__init__(probs, title="invalid batch input file")

    def errors_object(self) -> dict[str, Any]:
        return {"object": "list", "data": [e.openai() for e in self.errors]}


@dataclass
class Limits:
    """Limits of one tenant's batch input."""

    allowed_models: tuple[str, ...]
    """Models the tenant may batch against (exact ids)."""
    max_file_bytes: int = MAX_FILE_BYTES
    max_lines: int = MAX_LINES
    max_line_tokens: int = MAX_LINE_TOKENS
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    counter: TokenCounter = field(default_factory=TokenCounter)
    """Prompt counter (default: the UTF-8 byte upper bound; pass the model's tokenizer for exact counts)."""


def check_embedding(body: dict[str, Any]) -> tuple[str, str] | None:
    """The first problem of an embeddings body as ``(param, message)``, or None."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "model", "'model' is required and must be a non-empty string."
    inp = body.get("input", None)
    if inp is None:
        return "input", "'input' is required."
    if isinstance(inp, str):
        ok = bool(inp)
    elif isinstance(inp, list) and inp:
        ok = (all(isinstance(x, str) and x for x in inp) or all(isinstance(x, int) and not isinstance(x, bool)
                                                                 for x in inp)
              or all(isinstance(x, list) and x and all(isinstance(t, int) and not isinstance(t, bool) for t in x)
                     for x in inp))
    else:
        ok = False
    if not ok:
        return "input", ("'input' must be a non-empty string, a list of non-empty strings, a list of token ids "
                         "or a list of token id lists.")
    enc = body.get("encoding_format")
    if enc is not None and enc not in ("float", "base64"):
        return "encoding_format", f"'encoding_format' must be 'float' or 'base64', got {enc!r}."
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
        return "dimensions", f"'dimensions' must be a positive integer, got {dims!r}."
    return None


def estimate_tokens(kind: str, body: dict[str, Any], limits: Limits) -> int:
    """Upper bound of the tokens a line uses: the prompt plus ``max_completion_tokens``/``max_tokens``."""
    c = limits.counter
    if kind == "embedding":
        inp = body["input"]
        if isinstance(inp, str):
            return c.count_text(inp)
        if all(isinstance(x, str) for x in inp):
            return sum(c.count_text(x) for x in inp)
        if all(isinstance(x, int) for x in inp):
            return len(inp)
        return sum(len(x) for x in inp)
    prompt = c.count_chat(body["messages"], body.get("tools")) if kind == "chat" else c.count_prompt(body["prompt"])
    allowance = body.get("max_completion_tokens") or body.get("max_tokens") or limits.default_max_tokens
    return prompt + int(allowance) * int(body.get("n") or 1)


def _check_line(n: int, obj: Any, limits: Limits, seen: dict[str, int], first: dict[str, Any]
                ) -> tuple[BatchRecord | None, list[LineError]]:
    errs: list[LineError] = []

    def bad(code: str, message: str, param: str | None = None) -> None:
        errs.append(LineError(n, code, message, param))

    if not isinstance(obj, dict):
        bad("invalid_json_line", f"expected a JSON object, got {type(obj).__name__}")
        return None, errs
    cid = obj.get("custom_id")
    if not isinstance(cid, str) or not cid:
        bad("invalid_custom_id", f"custom_id must be a non-empty string, got {cid!r}", "custom_id")
    elif cid in seen:
        bad("duplicate_custom_id", f"custom_id {cid!r} repeats line {seen[cid]}", "custom_id")
    else:
        seen[cid] = n
    if obj.get("method") != "POST":
        bad("invalid_method", f"method must be 'POST', got {obj.get('method')!r}", "method")
    url = obj.get("url")
    if url not in ENDPOINTS:
        bad("invalid_url", f"url {url!r} is not a batch endpoint; expected one of: {', '.join(ENDPOINTS)}", "url")
        url = None
    elif "url" in first and first["url"][0] != url:
        bad("mismatched_url", f"url {url!r} differs from {first['url'][0]!r} on line {first['url'][1]}; "
                              "a batch has one endpoint", "url")
    else:
        first.setdefault("url", (url, n))
    body = obj.get("body")
    if not isinstance(body, dict):
        bad("invalid_body", f"body must be a JSON object, got {body!r}"[:200], "body")
        return None, errs
    model = body.get("model")
    if isinstance(model, str) and model:
        if model not in limits.allowed_models:
            allowed = ", ".join(limits.allowed_models) or "(none)"
            bad("model_not_allowed", f"model {model!r} is not allowed for this tenant; expected one of: {allowed}",
                "body.model")
        elif "model" in first and first["model"][0] != model:
            bad("mismatched_model", f"model {model!r} differs from {first['model'][0]!r} on line "
                                    f"{first['model'][1]}; a batch uses one model", "body.model")
        else:
            first.setdefault("model", (model, n))
    if url is None:
        return None, errs
    kind = _KIND[url]
    if kind == "embedding":
        if depth_exceeds(body):
            problem: tuple[str | None, str] | None = (None, "the body nests objects or arrays too deeply")
        else:
            problem = check_embedding(body)
    else:
        inv = check_request(kind, body)
        problem = (inv.param, inv.message) if inv else None
    if problem is not None:
        param, message = problem
        bad("invalid_body", message, f"body.{param}" if param else "body")
        return None, errs
    try:
        tokens = estimate_tokens(kind, body, limits)
    except PromptError as exc:
        bad("invalid_body", str(exc), "body")
        return None, errs
    if tokens > limits.max_line_tokens:
        bad("too_many_tokens", f"estimated {tokens} tokens (prompt + max_tokens) exceeds the limit of "
                               f"{limits.max_line_tokens} per line", "body")
    if errs:
        return None, errs
    return BatchRecord(n, cid, url, body, tokens), errs


def validate_batch(data: bytes, limits: Limits) -> list[BatchRecord]:
    """The records of a batch input file, or :class:`BatchValidationError` listing every bad line."""
    if len(data) > limits.max_file_bytes:
        raise BatchValidationError([LineError(None, "file_too_large", f"the file has {len(data)} bytes; the "
                                              f"limit is {limits.max_file_bytes}")])
    lines = data.split(b"\n")
    if lines and lines[-1].strip() == b"":
        lines.pop()  # the final newline
    errs: list[LineError] = []
    if not lines:
        raise BatchValidationError([LineError(None, "empty_file", "the file has no requests")])
    if len(lines) > limits.max_lines:
        errs.append(LineError(None, "too_many_lines", f"the file has {len(lines)} lines; the limit is "
                                                      f"{limits.max_lines}"))
    records: list[BatchRecord] = []
    seen: dict[str, int] = {}
    first: dict[str, Any] = {}
    for n, raw in enumerate(lines, start=1):
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            msg = "empty line" if not raw.strip() else f"not valid JSON ({exc})"
            errs.append(LineError(n, "invalid_json_line", msg))
            continue
        rec, line_errs = _check_line(n, obj, limits, seen, first)
        errs.extend(line_errs)
        if rec is not None:
            records.append(rec)
    if errs:
        raise BatchValidationError(errs[:MAX_SHOWN_ERRORS], omitted=max(0, len(errs) - MAX_SHOWN_ERRORS))
    return records
