"""SageMaker InvokeEndpoint / InvokeEndpointWithResponseStream for LMI (vLLM) endpoints, in OpenAI shapes.

The LMI container takes the OpenAI chat-completions schema on ``/invocations`` when the body has ``messages``
(djl-serving ``user_guides/chat_input_output_schema.md``) and answers with a ``chat.completion`` JSON. Streaming
(``"stream": true``) answers ``application/jsonlines``: one ``chat.completion.chunk`` JSON object per line
(djl-serving ``djl_python/async_utils.py`` ``create_stream_chunk_output`` appends ``\\n``; the vLLM handler strips
vLLM's ``data: `` prefix and turns ``[DONE]`` into an empty last line, ``lmi_vllm/request_response_utils.py``).
SageMaker cuts that byte stream into ``PayloadPart`` events at arbitrary points, so lines are re-assembled here.
Server-sent-event framing (``data: {...}``) from other vLLM containers is accepted too. The request asks for
``stream_options.include_usage`` so vLLM ends the stream with a usage-only chunk.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Iterator

from serving.aws import ModelResponseError

JSON = "application/json"


def _body(openai_request: dict, *, stream: bool) -> bytes:
    body = {k: v for k, v in openai_request.items() if k not in ("stream", "stream_options")}
    if "messages" not in body:
        from serving.aws import InvalidRequest

        raise InvalidRequest("messages is required (the endpoint speaks the chat-completions schema)",
                             param="messages")
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":")).encode()


def _check(obj: Any, *, stream: bool) -> dict:
    if not isinstance(obj, dict):
        raise ModelResponseError(f"endpoint answered {type(obj).__name__}, not a JSON object")
    if "error" in obj or ("code" in obj and "choices" not in obj):
        err = obj.get("error")
        message = err.get("message") if isinstance(err, dict) else (err or obj.get("message") or "model error")
        code = (err.get("code") if isinstance(err, dict) else None) or obj.get("code")
        raise ModelResponseError(str(message), code=code)
    if "choices" not in obj:
        raise ModelResponseError("endpoint answer has no 'choices' (is the container serving the chat schema?)")
    obj.setdefault("object", "chat.completion.chunk" if stream else "chat.completion")
    return obj


def parse_completion(payload: bytes, *, model: str) -> dict:
    """The ``chat.completion`` dict from an InvokeEndpoint body."""
    try:
        obj = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelResponseError(f"endpoint answer is not JSON: {payload[:120]!r}") from exc
    out = _check(obj, stream=False)
    out.setdefault("model", model)
    out.setdefault("created", int(time.time()))
    return out


def _line_to_chunk(line: bytes, model: str) -> dict | None:
    text = line.decode("utf-8").strip()
    if text.startswith("data:"):
        text = text[5:].strip()
    if not text or text == "[DONE]" or text.startswith(":"):
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelResponseError(f"stream line is not JSON: {text[:120]!r}") from exc
    out = _check(obj, stream=True)
    out.setdefault("model", model)
    return out


def chunks_from_payload_parts(parts: Iterable[bytes], *, model: str) -> Iterator[dict]:
    """Re-assemble JSON lines split across ``PayloadPart`` byte boundaries and yield OpenAI chunks."""
    buffer = b""
    for part in parts:
        buffer += part
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            chunk = _line_to_chunk(line, model)
            if chunk is not None:
                yield chunk
    if buffer.strip():
        chunk = _line_to_chunk(buffer, model)
        if chunk is not None:
            yield chunk


def _payload_bytes(events: Iterable[dict]) -> Iterator[bytes]:
    for event in events:
        if "PayloadPart" in event:
            yield event["PayloadPart"].get("Bytes", b"")
        # ModelStreamError / InternalStreamFailure are raised by botocore's event-stream parser as EventStreamError


class SageMakerInvoker:
    """Calls one SageMaker real-time endpoint (optionally one inference component) with OpenAI-shaped requests."""

    def __init__(self, endpoint_name: str, *, region: str | None = None, client: Any = None,
                 inference_component: str | None = None, read_timeout_seconds: float = 120.0):
        self.endpoint_name = endpoint_name
        self.inference_component = inference_component
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("sagemaker-runtime", region_name=region, config=Config(
                read_timeout=read_timeout_seconds, connect_timeout=5, tcp_keepalive=True,
                retries={"mode": "standard", "max_attempts": 3}))
        self.client = client

    def _kwargs(self, body: bytes) -> dict[str, Any]:
        kw: dict[str, Any] = {"EndpointName": self.endpoint_name, "Body": body, "ContentType": JSON}
        if self.inference_component:
            kw["InferenceComponentName"] = self.inference_component
        return kw

    def _model(self, req: dict) -> str:
        return str(req.get("model") or self.endpoint_name)

    def invoke(self, openai_request: dict) -> dict:
        """One OpenAI ``chat.completion`` for the request."""
        kwargs = self._kwargs(_body(openai_request, stream=False))
        resp = self.client.invoke_endpoint(Accept=JSON, **kwargs)
        return parse_completion(resp["Body"].read(), model=self._model(openai_request))

    def invoke_stream(self, openai_request: dict) -> Iterator[dict]:
        """OpenAI ``chat.completion.chunk`` dicts as tokens arrive; vLLM's last chunk carries ``usage``."""
        kwargs = self._kwargs(_body(openai_request, stream=True))
        resp = self.client.invoke_endpoint_with_response_stream(**kwargs)
        yield from chunks_from_payload_parts(_payload_bytes(resp["Body"]), model=self._model(openai_request))
