"""A local OpenAI-compatible stub upstream for trying the gateway, the tests and the benchmarks.

``genai-scale gateway stub --port 9001`` serves ``/v1/chat/completions`` and ``/v1/completions`` (JSON, or SSE with
``stream: true``: a role chunk, N content chunks, a finish chunk, a usage chunk when asked, ``[DONE]``) and
``/v1/models``. Its behaviour can be changed at run time with ``POST /_control`` (JSON, all keys optional):

- ``status``: answer every request with this HTTP status (200 = normal);
- ``chunks``: content chunks per streamed answer; ``delay_ms``: sleep before each chunk (and before a JSON answer);
- ``text``: answer text; ``logprob``: the log-probability reported for each token when ``logprobs`` is asked;
- ``hang``: never answer (to exercise timeouts);
- ``cut_after``: end a streamed answer cleanly after this many content chunks, without a finish reason or
  ``[DONE]`` (-1 = never; to exercise truncation handling).

``GET /_stats`` returns request counts and the tokens reported in usage (``tokens_served``) for completed answers.
Usage: ``prompt_tokens`` = UTF-8 bytes of the prompt text // 4 + 1; ``completion_tokens`` = min(chunks, max_tokens).
"""

from __future__ import annotations

import asyncio
import time

import orjson

JSON_H = [(b"content-type", b"application/json")]
SSE_H = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class StubState:
    def __init__(self, name: str = "stub") -> None:
        self.name = name
        self.status = 200
        self.chunks = 20
        self.delay_ms = 0.0
        self.text = "Hello from the stub upstream."
        self.logprob = -0.1
        self.hang = False
        self.cut_after = -1
        self.requests = 0
        self.completed = 0
        self.tokens_served = 0
        self.last_body: dict | None = None


def _prompt_tokens(req: dict) -> int:
    if "messages" in req:
        n = 0
        for m in req.get("messages") or []:
            c = m.get("content")
            if isinstance(c, str):
                n += len(c.encode())
            elif isinstance(c, list):
                n += sum(len(str(p.get("text", "")).encode()) for p in c if isinstance(p, dict))
        return n // 4 + 1
    p = req.get("prompt", "")
    return len(str(p).encode()) // 4 + 1


def make_stub(state: StubState | None = None):
    st = state or StubState()

    async def read_body(receive) -> bytes:
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                return body

    async def send_json(send, status: int, obj) -> None:
        await send({"type": "http.response.start", "status": status, "headers": JSON_H})
        await send({"type": "http.response.body", "body": orjson.dumps(obj)})

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path, method = scope["path"], scope["method"]
        raw = await read_body(receive)
        if path == "/_control" and method == "POST":
            for k, v in orjson.loads(raw or b"{}").items():
                setattr(st, k, v)
            return await send_json(send, 200, {"ok": True})
        if path == "/_stats":
            return await send_json(send, 200, {"requests": st.requests, "completed": st.completed,
                                               "tokens_served": st.tokens_served, "last_body": st.last_body})
        if path in ("/v1/models", "/models"):
            return await send_json(send, 200, {"object": "list", "data": [
                {"id": st.name, "object": "model", "created": 0, "owned_by": "stub"}]})
        chat = path in ("/v1/chat/completions", "/chat/completions")
        if not chat and path not in ("/v1/completions", "/completions"):
            return await send_json(send, 404, {"error": {"message": "not found"}})
        st.requests += 1
        req = orjson.loads(raw or b"{}")
        st.last_body = req
        if st.hang:
            await asyncio.sleep(3600)
        if st.status != 200:
            return await send_json(send, st.status, {"error": {"message": f"stub status {st.status}",
                                                               "type": "stub_error", "code": st.status}})
        max_tokens = int(req.get("max_tokens") or req.get("max_completion_tokens") or 10_000)
        n_tokens = max(0, min(st.chunks, max_tokens))
        pt = _prompt_tokens(req)
        usage = {"prompt_tokens": pt, "completion_tokens": n_tokens, "total_tokens": pt + n_tokens}
        words = (st.text.split(" ") * (n_tokens // max(1, len(st.text.split(" "))) + 1))[:n_tokens]
        model = req.get("model", st.name)
        created = int(time.time())
        finish = "length" if n_tokens < st.chunks else "stop"
        want_lp = bool(req.get("logprobs"))
        if not req.get("stream"):
            if st.delay_ms:
                await asyncio.sleep(st.delay_ms / 1000)
            text = " ".join(words) if n_tokens < st.chunks else st.text
            if chat:
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                          "logprobs": ({"content": [{"token": w, "logprob": st.logprob} for w in (words or ["x"])]}
                                       if want_lp else None)}
                obj = "chat.completion"
            else:
                choice = {"index": 0, "text": text, "finish_reason": finish,
                          "logprobs": ({"token_logprobs": [st.logprob] * max(1, n_tokens)} if want_lp else None)}
                obj = "text_completion"
            st.completed += 1
            st.tokens_served += usage["total_tokens"]
            return await send_json(send, 200, {"id": f"cmpl-{st.requests}", "object": obj, "created": created,
                                               "model": model, "choices": [choice], "usage": usage})
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        await send({"type": "http.response.start", "status": 200, "headers": SSE_H})
        base = {"id": f"cmpl-{st.requests}", "object": "chat.completion.chunk" if chat else "text_completion",
                "created": created, "model": model}

        def ev(choice=None, **extra) -> bytes:
            o = dict(base, choices=[choice] if choice is not None else [], **extra)
            return b"data: " + orjson.dumps(o) + b"\n\n"

        if chat:
            await send({"type": "http.response.body", "more_body": True,
                        "body": ev({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})})
        for i, w in enumerate(words):
            if i == st.cut_after:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if st.delay_ms:
                await asyncio.sleep(st.delay_ms / 1000)
            piece = w if i == 0 else " " + w
            c = ({"index": 0, "delta": {"content": piece}, "finish_reason": None} if chat
                 else {"index": 0, "text": piece, "finish_reason": None, "logprobs": None})
            await send({"type": "http.response.body", "body": ev(c), "more_body": True})
        last = ({"index": 0, "delta": {}, "finish_reason": finish} if chat
                else {"index": 0, "text": "", "finish_reason": finish, "logprobs": None})
        tail = ev(last)
        if include_usage:
            tail += ev(None, usage=usage)
        tail += b"data: [DONE]\n\n"
        st.completed += 1
        st.tokens_served += usage["total_tokens"]
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    app.state = st  # type: ignore[attr-defined]
    return app


def serve(host: str = "127.0.0.1", port: int = 9001, name: str = "stub") -> None:
    import uvicorn

    uvicorn.run(make_stub(StubState(name)), host=host, port=port, log_level="warning", access_log=False,
                lifespan="on", http="httptools", loop="uvloop", timeout_keep_alive=120)
