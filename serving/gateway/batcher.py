"""Micro-batched embedding off the event loop.

Requests that arrive while the embedding worker is busy, or within ``max_wait_ms`` of each other, are embedded in
one call of the embedder's ``embed_many`` on a worker thread (numpy and the tokenizer release the GIL, so the event
loop keeps serving). A full batch (``max_batch`` texts) goes at once; otherwise the window is counted from the oldest
waiting text's arrival, so a lone text is dispatched at most ``max_wait_ms`` after it arrived when the worker is idle
(a text that already waited that long behind a busy worker goes as soon as the worker is free, with no second
window). The queue is bounded: when ``max_queue`` texts already wait, a new one fails at once; a caller
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
                 timeout_s: float = 1.0, workers: int = 1, clock=None, on_batch=None):
        """``clock()``: seconds on the event loop's clock (default ``loop.time``; tests pass a fake one).
        ``on_batch(size)``: called on the worker thread after every ``embed_many`` call (metrics)."""
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.stats = BatchStats()
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed")
        self._pending: list[tuple[str, asyncio.Future, float]] = []
        """(text, its future, its arrival on the clock), oldest first."""
        self._clock = clock
        self._on_batch = on_batch
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None

    async def embed(self, text: str) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if len(self._pending) >= self.max_queue:
            raise EmbedUnavailable(f"embedding queue full ({self.max_queue} waiting)")
        fut: asyncio.Future = loop.create_future()
        self._pending.append((text, fut, self._now(loop)))
        self._schedule(loop)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout_s)
        except TimeoutError as exc:
            fut.cancel()
            raise EmbedUnavailable(f"embedding took over {self.timeout_s * 1000:.0f} ms") from exc

    @property
    def waiting(self) -> int:
        """Texts queued and not yet handed to the embedder."""
        return len(self._pending)

    def _now(self, loop: asyncio.AbstractEventLoop) -> float:
        return self._clock() if self._clock is not None else loop.time()

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._running >= self._workers:
            return  # the worker's completion dispatches what has gathered meanwhile
        if not self._pending:
            return
        left = self.max_wait_s - (self._now(loop) - self._pending[0][2])
        if len(self._pending) >= self.max_batch or left <= 0:
            self._dispatch(loop)
        elif self._timer is None:
            self._timer = loop.call_later(left, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self._running < self._workers:
            self._dispatch(loop)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        live = [p for p in self._pending if not p[1].done()]
        batch, self._pending = live[: self.max_batch], live[self.max_batch:]
        if not batch:
            return
        self._running += 1
        work = loop.run_in_executor(self._pool, self._run, [p[0] for p in batch])
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
        if self._on_batch is not None:
            self._on_batch(len(texts))
        return vecs

    def _done(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[str, asyncio.Future, float]], work) -> None:
        self._running -= 1
        exc = work.exception()
        if exc is None:
            vecs = work.result()
            if len(vecs) != len(batch):
                exc = EmbedUnavailable(f"embedder returned {len(vecs)} vectors for {len(batch)} texts")
        for i, (_, fut, _) in enumerate(batch):
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
