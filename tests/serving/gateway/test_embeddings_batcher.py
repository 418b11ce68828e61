"""The micro-batcher's window: a full batch goes at once, a lone text goes when its window ends, and the window is
counted from the text's arrival (a text that already waited behind a busy worker gets no second window). Counted in
batches and checked with a fake clock, never by wall time."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from serving.gateway.batcher import EmbedBatcher


class Blocking:
    """embed_many waits until released (a busy worker); records the batches."""

    dim = 2

    def __init__(self, blocked: bool = True):
        self.release = threading.Event()
        if not blocked:
            self.release.set()
        self.batches: list[list[str]] = []

    def embed_many(self, texts):
        self.batches.append(list(texts))
        self.release.wait(10)
        return np.array([[float(len(t)), 1.0] for t in texts], np.float32)


def test_a_full_batch_goes_at_once_without_waiting_for_the_window():
    async def go():
        e = Blocking(blocked=False)
        b = EmbedBatcher(e, max_batch=4, max_wait_ms=60_000, timeout_s=30)
        vecs = await asyncio.wait_for(asyncio.gather(*(b.embed("x" * i) for i in range(1, 5))), 5)
        b.close()
        return e, vecs

    e, vecs = asyncio.run(go())
    assert [len(x) for x in e.batches] == [4]
    assert [v[0] for v in vecs] == [1.0, 2.0, 3.0, 4.0]  # each caller its own vector


def test_a_lone_text_is_dispatched_when_its_window_ends():
    async def go():
        e = Blocking(blocked=False)
        b = EmbedBatcher(e, max_batch=64, max_wait_ms=20, timeout_s=30)
        await asyncio.wait_for(b.embed("alone"), 5)
        b.close()
        return b

    b = asyncio.run(go())
    assert b.stats.batches == 1 and b.stats.sizes == [1]  # not held for a batch that never fills


def test_the_window_counts_from_arrival_not_from_the_worker_becoming_free():
    """A text queued behind a busy worker whose window has passed goes when the worker is free; one whose window
    has not passed waits only for the rest of it."""
    now = [0.0]

    async def go(elapsed: float):
        e = Blocking()
        b = EmbedBatcher(e, max_batch=2, max_wait_ms=60_000, timeout_s=30, clock=lambda: now[0])
        first = asyncio.gather(b.embed("a"), b.embed("b"))  # a full batch: dispatched, the worker blocks
        await asyncio.sleep(0.05)
        late = asyncio.ensure_future(b.embed("c"))  # arrives at fake t=0 while the worker is busy
        await asyncio.sleep(0.05)
        now[0] = elapsed
        e.release.set()
        await asyncio.wait_for(first, 5)
        try:
            await asyncio.wait_for(asyncio.shield(late), 2)
            done = True
        except TimeoutError:
            done = False
        timer = b._timer is not None
        late.cancel()
        b.close()
        return done, timer, [len(x) for x in e.batches]

    done, timer, sizes = asyncio.run(go(61.0))  # the 60 s window has passed: no second window
    assert done and not timer and sizes == [2, 1]
    now[0] = 0.0
    done, timer, sizes = asyncio.run(go(1.0))  # 59 s of the window left: it waits for them
    assert not done and timer and sizes == [2]


def test_batch_sizes_are_reported():
    seen: list[int] = []

    async def go():
        b = EmbedBatcher(Blocking(blocked=False), max_batch=3, max_wait_ms=10, timeout_s=30, on_batch=seen.append)
        await asyncio.wait_for(asyncio.gather(*(b.embed(str(i)) for i in range(7))), 5)
        b.close()

    asyncio.run(go())
    assert sum(seen) == 7 and max(seen) == 3


def test_the_benchmark_measures_both_settings():
    """bench/rag/embed.py's round: one text per call off, shared calls on (with a fast stand-in model)."""
    from bench.rag.embed import run, sentences, summary

    texts = sentences(64)
    off = summary([asyncio.run(run(Blocking(blocked=False), texts[:32], 8, 4, max_batch=1, window_ms=0))])
    on = summary([asyncio.run(run(Blocking(blocked=False), texts[32:], 8, 4, max_batch=64, window_ms=5))])
    assert off["batch"] == 1.0 and on["batch"] > 1.0
    assert off["rps"] > 0 and on["p99"] >= on["p50"] > 0
