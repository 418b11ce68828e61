"""A stub OpenAI-compatible embeddings server for tests, benchmarks and local runs (never production): ``POST
/v1/embeddings`` with ``{"model", "input": [texts]}`` answers deterministic feature-hashing vectors (each lower-case
word adds +-1 to one of ``dimensions`` coordinates, then L2 normalisation), so texts sharing words are near each
other and the same text always gets the same vector.

Cost model: each request sleeps ``batch_ms + item_ms x inputs`` (a stated stand-in for a GPU embedding server, where
a batch costs a fixed overhead plus a small per-item part). An input containing ``EMBED_REJECT`` gets a 400 in
OpenAI's error shape (a poison document). ``GET /v1/models`` answers 200.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

__all__ = ["StubEmbeddings", "hashed_vector"]

_WORD = re.compile(r"[a-z0-9]+")


def hashed_vector(text: str, dimensions: int) -> list[float]:
    v = np.zeros(dimensions, np.float64)
    for w in _WORD.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
        v[h % dimensions] += 1.0 if (h >> 32) & 1 else -1.0
    n = float(np.linalg.norm(v))
    if n == 0:
        v[0], n = 1.0, 1.0
    return (v / n).tolist()


@dataclass
class StubEmbeddings:
    """The server on a loopback port, in a background thread. ``url`` is its ``/v1`` base."""

    dimensions: int = 16
    batch_ms: float = 0.0
    item_ms: float = 0.0
    port: int = 0
    requests: int = 0
    inputs: int = 0
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StubEmbeddings:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _reply(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._reply(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                except (ValueError, KeyError, TypeError):
                    return self._reply(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
                with stub._lock:
                    stub.requests += 1
                    stub.inputs += len(texts)
                time.sleep((stub.batch_ms + stub.item_ms * len(texts)) / 1000)
                if any("EMBED_REJECT" in t for t in texts):
                    return self._reply(400, {"error": {"message": "input rejected by the model",
                                                       "type": "invalid_request_error", "code": "invalid_input"}})
                data = [{"object": "embedding", "index": i, "embedding": hashed_vector(t, stub.dimensions)}
                        for i, t in enumerate(texts)]
                self._reply(200, {"object": "list", "model": body.get("model", "stub"), "data": data,
                                  "usage": {"prompt_tokens": 0, "total_tokens": 0}})

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def reset(self) -> None:
        self.requests = self.inputs = 0
        self.batch_ms = self.item_ms = 0.0

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
