"""Bedrock Converse / ConverseStream behind OpenAI chat-completions shapes.

``to_converse_request`` and ``from_converse_response`` are pure translations (tested against botocore's service
model with ``botocore.stub.Stubber``); :class:`BedrockInvoker` sends them with a ``bedrock-runtime`` client. The
``model_id`` may be a foundation-model id, a cross-Region profile id, an application inference profile ARN or a
provisioned model ARN (what ``BedrockProvisionedThroughput.model_arn`` exports).

Mapping (OpenAI -> Converse):
- ``system``/``developer`` messages -> ``system`` text blocks (in order); consecutive same-role messages are merged
  (Converse requires alternating roles); ``tool`` messages -> ``toolResult`` blocks in a user turn; assistant
  ``tool_calls`` -> ``toolUse`` blocks; ``image_url`` parts with ``data:`` URLs -> image blocks.
- ``max_tokens``/``max_completion_tokens`` -> ``maxTokens``; ``temperature``; ``top_p`` -> ``topP``; ``stop`` ->
  ``stopSequences``; ``tools``/``tool_choice`` -> ``toolConfig`` (``none`` drops the tools).
- Not expressible, refused with :class:`InvalidRequest`: ``n`` > 1, ``logprobs``/``top_logprobs``, ``logit_bias``,
  non-zero ``presence_penalty``/``frequency_penalty``, ``response_format`` other than text, remote image URLs.
Stop reasons -> ``finish_reason``: end_turn/stop_sequence -> stop, max_tokens/model_context_window_exceeded -> length,
tool_use -> tool_calls, guardrail_intervened/content_filtered -> content_filter, malformed output -> stop.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any, Iterator

from serving.aws import InvalidRequest

FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_calls", "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
    "malformed_model_output": "stop", "malformed_tool_use": "stop",
}
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}


def _text_of(content: Any, path: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise InvalidRequest(f"{path}[{i}]: only text parts are allowed here", param=f"{path}[{i}]")
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    if content is None:
        return ""
    raise InvalidRequest(f"{path}: content must be a string or a list of parts", param=path)


def _image_block(url: str, path: str) -> dict[str, Any]:
    if not url.startswith("data:") or ";base64," not in url:
        raise InvalidRequest(f"{path}: Bedrock takes inline images only (data:<mime>;base64,...), not remote URLs",
                             param=path)
    head, data = url[5:].split(";base64,", 1)
    fmt = IMAGE_FORMATS.get(head.lower())
    if fmt is None:
        raise InvalidRequest(f"{path}: image type {head!r} is not one of {sorted(set(IMAGE_FORMATS.values()))}",
                             param=path)
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise InvalidRequest(f"{path}: image data is not valid base64", param=path) from exc
    return {"image": {"format": fmt, "source": {"bytes": raw}}}


def _content_blocks(content: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if content is None:
        return []
    if not isinstance(content, list):
        raise InvalidRequest(f"{path}: content must be a string or a list of parts", param=path)
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            blocks.append(_image_block(str(url), f"{path}[{i}].image_url.url"))
        else:
            raise InvalidRequest(f"{path}[{i}]: unsupported content part type {kind!r}", param=f"{path}[{i}]")
    return blocks


def _tool_use_blocks(tool_calls: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(tool_calls):
        fn = call.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"{path}[{i}].function.arguments is not JSON", param=f"{path}[{i}]") from exc
        out.append({"toolUse": {"toolUseId": str(call.get("id", "")), "name": str(fn.get("name", "")),
                                "input": args}})
    return out


def _check_unsupported(req: dict[str, Any]) -> None:
    bad: list[str] = []
    if int(req.get("n") or 1) != 1:
        bad.append("n (Converse returns one choice)")
    if req.get("logprobs") or req.get("top_logprobs"):
        bad.append("logprobs/top_logprobs (Converse returns none)")
    if req.get("logit_bias"):
        bad.append("logit_bias")
    for key in ("presence_penalty", "frequency_penalty"):
        if req.get(key):
            bad.append(key)
    fmt = req.get("response_format")
    if fmt and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
        bad.append("response_format (only text)")
    if bad:
        raise InvalidRequest("not supported by Bedrock Converse: " + ", ".join(bad))


def _tool_config(req: dict[str, Any]) -> dict[str, Any] | None:
    tools = req.get("tools") or []
    choice = req.get("tool_choice")
    if not tools or choice == "none":
        return None
    specs = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not fn or not fn.get("name"):
            raise InvalidRequest(f"tools[{i}]: only function tools with a name are supported", param=f"tools[{i}]")
        spec: dict[str, Any] = {"name": fn["name"],
                                "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        specs.append({"toolSpec": spec})
    cfg: dict[str, Any] = {"tools": specs}
    if choice == "required":
        cfg["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        cfg["toolChoice"] = {"tool": {"name": (choice.get("function") or {}).get("name", "")}}
    elif choice in (None, "auto"):
        cfg["toolChoice"] = {"auto": {}}
    else:
        raise InvalidRequest(f"tool_choice {choice!r} is not one of none, auto, required or a function",
                             param="tool_choice")
    return cfg


def to_converse_request(model_id: str, openai_request: dict) -> dict:
    """The Converse/ConverseStream keyword arguments for an OpenAI chat-completions request."""
    req = openai_request
    _check_unsupported(req)
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": list(blocks)})

    for i, msg in enumerate(messages):
        path = f"messages[{i}]"
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            text = _text_of(msg.get("content"), f"{path}.content")
            if text:
                system.append({"text": text})
        elif role == "user":
            add("user", _content_blocks(msg.get("content"), f"{path}.content"))
        elif role == "assistant":
            blocks = _content_blocks(msg.get("content"), f"{path}.content")
            blocks += _tool_use_blocks(msg.get("tool_calls") or [], f"{path}.tool_calls")
            add("assistant", blocks)
        elif role == "tool":
            add("user", [{"toolResult": {"toolUseId": str(msg.get("tool_call_id", "")),
                                         "content": [{"text": _text_of(msg.get("content"), f"{path}.content")}]}}])
        else:
            raise InvalidRequest(f"{path}.role {role!r} is not system, developer, user, assistant or tool",
                                 param=f"{path}.role")
    if not turns or turns[0]["role"] != "user":
        raise InvalidRequest("the conversation must start with a user message after any system messages",
                             param="messages")

    out: dict[str, Any] = {"modelId": model_id, "messages": turns}
    if system:
        out["system"] = system
    inference: dict[str, Any] = {}
    max_tokens = req.get("max_completion_tokens") or req.get("max_tokens")
    if max_tokens is not None:
        inference["maxTokens"] = int(max_tokens)
    if req.get("temperature") is not None:
        inference["temperature"] = float(req["temperature"])
    if req.get("top_p") is not None:
        inference["topP"] = float(req["top_p"])
    stop = req.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(req)
    if tool_config:
        out["toolConfig"] = tool_config
    return out


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    prompt = int(usage.get("inputTokens", 0))
    completion = int(usage.get("outputTokens", 0))
    out = {"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": int(usage.get("totalTokens", prompt + completion))}
    if usage.get("cacheReadInputTokens"):
        out["prompt_tokens_details"] = {"cached_tokens": int(usage["cacheReadInputTokens"])}  # type: ignore[assignment]
    return out


def _completion_id(resp: dict[str, Any]) -> str:
    rid = (resp.get("ResponseMetadata") or {}).get("RequestId")
    return f"chatcmpl-{rid or uuid.uuid4().hex}"


def from_converse_response(resp: dict, model: str, *, created: int | None = None) -> dict:
    """An OpenAI ``chat.completion`` dict for a Converse response."""
    message = (resp.get("output") or {}).get("message") or {}
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            tool_calls.append({"id": use.get("toolUseId", ""), "type": "function",
                               "function": {"name": use.get("name", ""),
                                            "arguments": json.dumps(use.get("input", {}), separators=(",", ":"))}})
    out_msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None}
    if tool_calls:
        out_msg["tool_calls"] = tool_calls
    return {
        "id": _completion_id(resp), "object": "chat.completion",
        "created": int(time.time()) if created is None else created, "model": model,
        "choices": [{"index": 0, "message": out_msg, "logprobs": None,
                     "finish_reason": FINISH_REASONS.get(resp.get("stopReason", ""), "stop")}],
        "usage": _usage(resp.get("usage")),
    }


def chunks_from_stream_events(events: Any, model: str, *, completion_id: str | None = None,
                              created: int | None = None) -> Iterator[dict]:
    """OpenAI ``chat.completion.chunk`` dicts for ConverseStream events (as botocore yields them). The last chunk
    has no choices and carries ``usage`` (OpenAI's ``include_usage`` convention)."""
    cid = completion_id or f"chatcmpl-{uuid.uuid4().hex}"
    ts = int(time.time()) if created is None else created
    tool_index: dict[int, int] = {}

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: dict | None = None) -> dict:
        out: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": ts, "model": model,
                               "choices": [] if delta is None else [
                                   {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if usage is not None:
            out["usage"] = usage
        return out

    usage_seen = False
    for event in events:
        if "messageStart" in event:
            yield chunk({"role": event["messageStart"].get("role", "assistant"), "content": ""})
        elif "contentBlockStart" in event:
            start = event["contentBlockStart"].get("start") or {}
            if "toolUse" in start:
                block = event["contentBlockStart"].get("contentBlockIndex", 0)
                idx = tool_index.setdefault(block, len(tool_index))
                use = start["toolUse"]
                yield chunk({"tool_calls": [{"index": idx, "id": use.get("toolUseId", ""), "type": "function",
                                             "function": {"name": use.get("name", ""), "arguments": ""}}]})
        elif "contentBlockDelta" in event:
            body = event["contentBlockDelta"]
            delta = body.get("delta") or {}
            if "text" in delta:
                yield chunk({"content": delta["text"]})
            elif "toolUse" in delta:
                idx = tool_index.setdefault(body.get("contentBlockIndex", 0), len(tool_index))
                yield chunk({"tool_calls": [{"index": idx, "function": {"arguments": delta["toolUse"].get("input", "")}}]})
        elif "messageStop" in event:
            yield chunk({}, FINISH_REASONS.get(event["messageStop"].get("stopReason", ""), "stop"))
        elif "metadata" in event:
            usage_seen = True
            yield chunk(None, usage=_usage(event["metadata"].get("usage")))
    if not usage_seen:
        yield chunk(None, usage=_usage(None))


class BedrockInvoker:
    """Calls one Bedrock model (id or ARN) with OpenAI-shaped requests."""

    def __init__(self, model_id: str, *, region: str | None = None, client: Any = None,
                 read_timeout_seconds: float = 120.0):
        self.model_id = model_id
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("bedrock-runtime", region_name=region, config=Config(
                read_timeout=read_timeout_seconds, connect_timeout=5, tcp_keepalive=True,
                retries={"mode": "standard", "max_attempts": 3}))
        self.client = client

    def _model_name(self, req: dict) -> str:
        return str(req.get("model") or self.model_id)

    def converse(self, openai_request: dict) -> dict:
        """One OpenAI ``chat.completion`` for the request."""
        resp = self.client.converse(**to_converse_request(self.model_id, openai_request))
        return from_converse_response(resp, self._model_name(openai_request))

    def converse_stream(self, openai_request: dict) -> Iterator[dict]:
        """OpenAI ``chat.completion.chunk`` dicts as tokens arrive; the last one carries ``usage``. Service errors
        raised mid-stream surface as botocore ``EventStreamError``."""
        resp = self.client.converse_stream(**to_converse_request(self.model_id, openai_request))
        rid = (resp.get("ResponseMetadata") or {}).get("RequestId")
        yield from chunks_from_stream_events(resp["stream"], self._model_name(openai_request),
                                             completion_id=f"chatcmpl-{rid}" if rid else None)
