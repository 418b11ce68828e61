"""Micro-batched embedding off the event loop.

Requests that arrive while the embedding worker is busy, or within ``max_wait_ms`` of each other, are embedded in
one call of the embedder's ``embed_many`` on a worker thread (numpy and the tokenizer release the GIL, so the event
loop keeps serving). The queue is bounded: when ``max_queue`` texts already wait, a new one fails at once; a caller
waits at most ``timeout_s``. Every failure (queue full, timeout, an embedder error) raises :class:`EmbedUnavailable`,
which the semantic cache turns into a miss: the request goes upstream, it never fails because of the cache.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np


class EmbedUnavailable(RuntimeError):
    """The embedder failed, timed out or is overloaded."""


@dataclass
class BatchStats:
    batches: int = 0
    texts: int = 0
    largest: int = 0
    seconds: float = 0.0
    """Time spent inside ``embed_many`` (worker thread)."""
    sizes: list[int] = field(default_factory=list)


class EmbedBatcher:
    """Collects texts into batches for ``embedder.embed_many`` (or ``embed``, one by one, when it has none)."""

    def __init__(self, embedder, *, max_batch: int = 16, max_wait_ms: float = 2.0, max_queue: int = 256,
                 timeout_s: float = 1.0, workers: int = 1):
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.stats = BatchStats()
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed")
        self._pending: list[tuple[str, asyncio.Future]] = []
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None

    async def embed(self, text: str) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if len(self._pending) >= self.max_queue:
            raise EmbedUnavailable(f"embedding queue full ({self.max_queue} waiting)")
        fut: asyncio.Future = loop.create_future()
        self._pending.append((text, fut))
        self._schedule(loop)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout_s)
        except TimeoutError as exc:
            fut.cancel()
            raise EmbedUnavailable(f"embedding took over {self.timeout_s * 1000:.0f} ms") from exc

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._running >= self._workers:
            return  # the worker's completion dispatches what has gathered meanwhile
        if len(self._pending) >= self.max_batch or self.max_wait_s <= 0:
            self._dispatch(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self._running < self._workers:
            self._dispatch(loop)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        live = [(t, f) for t, f in self._pending if not f.done()]
        batch, self._pending = live[: self.max_batch], live[self.max_batch:]
        if not batch:
            return
        self._running += 1
        work = loop.run_in_executor(self._pool, self._run, [t for t, _ in batch])
        work.add_done_callback(lambda w: self._done(loop, batch, w))

    def _run(self, texts: list[str]) -> np.ndarray:
        t = time.perf_counter()
        many = getattr(self.embedder, "embed_many", None)
        vecs = many(texts) if many is not None else np.stack([self.embedder.embed(x) for x in texts])
        s = self.stats
        s.seconds += time.perf_counter() - t
        s.batches += 1
        s.texts += len(texts)
        s.largest = max(s.largest, len(texts))
        if len(s.sizes) < 10_000:
            s.sizes.append(len(texts))
        return vecs

    def _done(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[str, asyncio.Future]], work) -> None:
        self._running -= 1
        exc = work.exception()
        if exc is None:
            vecs = work.result()
            if len(vecs) != len(batch):
                exc = EmbedUnavailable(f"embedder returned {len(vecs)} vectors for {len(batch)} texts")
        for i, (_, fut) in enumerate(batch):
            if fut.done():
                continue
            if exc is not None:
                err = exc if isinstance(exc, EmbedUnavailable) else EmbedUnavailable(
                    f"embedder failed: {type(exc).__name__}: {exc}")
                fut.set_exception(err)
            else:
                fut.set_result(np.asarray(vecs[i], dtype=np.float32))
        if self._pending:
            self._schedule(loop)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
