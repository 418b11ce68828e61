"""Routes: weighted least-outstanding-requests balancing, retries within a budget, fallbacks, circuit breakers,
and cascades (small model first, escalate by rule).

Attempt order for one request: the available target with the lowest ``(outstanding + 1) / weight`` (ties broken at
random), then the next best target, then the fallbacks in their configured order. A route with
``routing.strategy: prefix-affinity`` orders its targets, and the replicas of an upstream with ``replicas``, by the
request's affinity key instead (``serving/gateway/affinity.py``: rendezvous hashing with a bounded-load overflow).
Upstreams whose circuit is open are skipped without counting as an attempt. Every attempt after the first must fit
the route's retry budget, so an outage cannot multiply the load on the remaining upstreams. Streams fall back only
before their first byte is sent.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

from serving.gateway.affinity import Ranking, Strategy
from serving.gateway.config import EscalationRule, RouteConfig
from serving.gateway.metrics import Counter, Metrics
from serving.gateway.tokens import TokenCounter
from serving.gateway.upstreams import UpstreamClient, UpstreamError


class IncompleteStream(UpstreamError):
    """A live stream that ended cleanly before ``data: [DONE]``."""


class NoUpstream(Exception):
    """Every upstream of the route is unavailable (circuits open) or the retry budget is spent."""


class RetryBudget:
    """Retries allowed = ratio x requests + minPerSecond x window, over a sliding pair of 10-second windows."""

    def __init__(self, ratio: float, min_per_second: float, window_s: float = 10.0, clock=time.monotonic):
        self.ratio, self.min_per_s, self.window = ratio, min_per_second, window_s
        self._clock = clock
        self._start = clock()
        self._req = [0, 0]  # previous, current
        self._ret = [0, 0]

    def _roll(self) -> None:
        now = self._clock()
        while now - self._start >= self.window:
            self._start += self.window
            self._req = [self._req[1], 0]
            self._ret = [self._ret[1], 0]
            if now - self._start >= 2 * self.window:
                self._start = now
                self._req, self._ret = [0, 0], [0, 0]

    def record_request(self) -> None:
        self._roll()
        self._req[1] += 1

    def try_retry(self) -> bool:
        self._roll()
        allowed = self.ratio * sum(self._req) + self.min_per_s * self.window
        if sum(self._ret) + 1 > allowed:
            return False
        self._ret[1] += 1
        return True


@dataclass
class Route:
    name: str
    cfg: RouteConfig
    targets: list[tuple[UpstreamClient, float]]
    fallbacks: list[UpstreamClient]
    counter: TokenCounter
    budget: RetryBudget
    stages: list["Route"] | None = None
    refusal_res: list[re.Pattern[str]] | None = None
    strategy: Strategy = field(init=False)
    """The route's ``routing`` settings, resolved."""

    def __post_init__(self) -> None:
        self.strategy = Strategy.from_config(self.cfg.routing)

    @property
    def supports_logprobs(self) -> bool:
        ups = [u for u, _ in self.targets] + self.fallbacks
        return bool(ups) and all(u.supports_logprobs for u in ups)


def session_of(route: Route, headers: Mapping[str, str]) -> str | None:
    """The request's session key from the route's ``routing.sessionHeader`` (None without one)."""
    h = route.strategy.session_header
    return (headers.get(h) or None) if h and route.strategy.affinity else None


def _pick(route: Route, tried: set[str], key: str | None = None) -> tuple[UpstreamClient, bool, str | None] | None:
    """Next upstream to try, whether it is a fallback, and the affinity outcome of a prefix-affinity route's target
    choice; takes the breaker's probe slot if half-open."""
    cands = [(u, w) for u, w in route.targets if u.name not in tried and u.breaker.available()]
    if route.strategy.affinity and cands:
        ranking = route.strategy.rank(key, [u for u, _ in cands], [w for _, w in cands])
        for i in ranking.order:
            if cands[i][0].breaker.acquire():
                return cands[i][0], False, ranking.outcome(i)
        cands = []
    while cands:
        best = min((u.outstanding + 1) / w for u, w in cands)
        ties = [(u, w) for u, w in cands if (u.outstanding + 1) / w == best]
        u, w = random.choice(ties)
        if u.breaker.acquire():
            return u, False, None
        cands.remove((u, w))
    for u in route.fallbacks:
        if u.name not in tried and u.breaker.available() and u.breaker.acquire():
            return u, True, None
    return None


class Router:
    def __init__(self, metrics: Metrics):
        self.m = metrics
        self.affinity = Counter("gateway_routing_affinity_total",
                                "Prefix-affinity routing decisions by route and result: hit (the key's own replica), "
                                "overflow (it was over its load bound or unavailable: the next in hash order), "
                                "no_key (nothing to key on: least outstanding).", ["route", "result"],
                                registry=metrics.registry)

    def _order(self, route: Route, key: str | None):
        """The replica order function for an upstream with ``replicas`` (least outstanding unless the route has
        prefix affinity); counts the affinity outcome."""

        def order(reps: list) -> list:
            ranking: Ranking = route.strategy.rank(key, reps)
            if ranking.result is not None and ranking.order:
                self.affinity.labels(route.name, ranking.outcome(ranking.order[0])).inc()
            return [reps[i] for i in ranking.order]

        return order

    async def _attempts(self, route: Route, fn, *, stream: bool = False, key: str | None = None):
        """Run ``fn(upstream)`` over the attempt order; returns (result, upstream). ``stream``: the breaker learns
        the outcome when the stream ends (``_GuardedEvents``), not when it opens."""
        tried: set[str] = set()
        last: UpstreamError | None = None
        route.budget.record_request()
        attempts = 0
        while attempts < route.cfg.max_attempts:
            picked = _pick(route, tried, key)
            if picked is None:
                break
            up, is_fallback, outcome = picked
            if outcome is not None and attempts == 0 and not up.has_replicas:
                self.affinity.labels(route.name, outcome).inc()
            if attempts > 0:
                if not route.budget.try_retry():
                    self.m.retry_budget_exhausted.labels(route.name).inc()
                    up.breaker.release_probe()
                    break
                self.m.retries.labels(route.name).inc()
            if is_fallback:
                self.m.fallbacks.labels(route.name, up.name).inc()
            attempts += 1
            tried.add(up.name)
            up.outstanding += 1
            self.m.outstanding.labels(up.name).set(up.outstanding)
            keep_open = False
            try:
                result = await fn(up)
                keep_open = True
                if not stream:
                    up.breaker.success()
                self.m.upstream_requests.labels(up.name, "ok").inc()
                return result, up
            except UpstreamError as exc:
                self.m.upstream_requests.labels(up.name, "error").inc()
                self.m.upstream_errors.labels(up.name, exc.reason.split(" (")[0]).inc()
                if not exc.retryable:
                    # the upstream answered and the request was at fault: neither a failure nor a success for the
                    # breaker (a half-open probe is given back), so one tenant's bad requests cannot reset or trip
                    # the circuit another tenant depends on
                    up.breaker.neutral()
                    raise
                up.breaker.failure()
                self.m.circuit_open.labels(up.name).set(1 if up.breaker.opened_at is not None else 0)
                last = exc
            finally:
                if not keep_open:
                    up.outstanding -= 1
                    self.m.outstanding.labels(up.name).set(up.outstanding)
        if last is not None:
            raise last
        raise NoUpstream(f"no upstream available for {route.name!r} (circuits open or retry budget spent)")

    async def complete(self, route: Route, kind: str, body: dict[str, Any],
                       session: str | None = None) -> tuple[dict[str, Any], str]:
        """``session``: the request's session key (:func:`session_of`), for prefix-affinity routes."""
        key = route.strategy.key(kind, body, session)

        async def call(up: UpstreamClient):
            if up.has_replicas:
                return await up.complete(kind, body, order=self._order(route, key))
            return await up.complete(kind, body)

        resp, up = await self._attempts(route, call, key=key)
        self._release(up)
        return resp, up.name

    async def stream(self, route: Route, kind: str, body: dict[str, Any],
                     session: str | None = None) -> tuple[AsyncIterator[bytes], str]:
        """Open a stream (fallback allowed until then); the iterator releases the upstream when it ends."""
        key = route.strategy.key(kind, body, session)

        async def call(up: UpstreamClient):
            if up.has_replicas:
                return await up.open_stream(kind, body, order=self._order(route, key))
            return await up.open_stream(kind, body)

        events, up = await self._attempts(route, call, stream=True, key=key)
        return _GuardedEvents(self, events, up), up.name

    def _release(self, up: UpstreamClient) -> None:
        up.outstanding -= 1
        self.m.outstanding.labels(up.name).set(up.outstanding)


class _GuardedEvents:
    """A live upstream stream: counts a mid-stream failure, or an end before ``[DONE]``, against the upstream's
    breaker, and releases the upstream (outstanding count, connection) exactly once, also when it is closed before
    it was ever read (an async generator that never started would not run its ``finally``)."""

    def __init__(self, router: Router, events: AsyncIterator[bytes], up: UpstreamClient):
        self._router, self._events, self._up = router, events, up
        self._closed = False
        self._done = False
        self._judged = False  # the breaker has heard how this stream went

    def __aiter__(self) -> "_GuardedEvents":
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            ev = await self._events.__anext__()
        except StopAsyncIteration:
            await self.aclose()
            if not self._done:
                self._fault("incomplete stream")
                raise IncompleteStream(502, "the stream ended before [DONE]", retryable=True) from None
            raise
        except UpstreamError:
            self._fault("mid-stream")
            await self.aclose()
            raise
        if ev.startswith(b"data: [DONE]"):
            self._done = True
            self._judged = True
            self._up.breaker.success()
        return ev

    def _fault(self, reason: str) -> None:
        self._judged = True
        self._up.breaker.failure()
        self._router.m.upstream_errors.labels(self._up.name, reason).inc()
        self._router.m.circuit_open.labels(self._up.name).set(1 if self._up.breaker.opened_at is not None else 0)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._judged:  # closed early (client gone, gateway-side check): no verdict on the upstream
            self._up.breaker.release_probe()
        self._router._release(self._up)
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()


# --- cascades ---------------------------------------------------------------------------------------------------

def mean_logprob(resp: dict[str, Any]) -> float | None:
    """Mean token log-probability of the first choice (chat ``logprobs.content`` or completions
    ``logprobs.token_logprobs``); None when the upstream returned none."""
    choices = resp.get("choices") or []
    if not choices:
        return None
    lp = choices[0].get("logprobs") or {}
    vals: list[float] = []
    if isinstance(lp.get("content"), list):
        vals = [t.get("logprob") for t in lp["content"] if isinstance(t, dict) and t.get("logprob") is not None]
    elif isinstance(lp.get("token_logprobs"), list):
        vals = [v for v in lp["token_logprobs"] if v is not None]
    return sum(vals) / len(vals) if vals else None


def answer_text(resp: dict[str, Any]) -> str:
    choices = resp.get("choices") or [{}]
    c = choices[0]
    if "message" in c:
        return (c.get("message") or {}).get("content") or ""
    return c.get("text") or ""


def escalation_reason(resp: dict[str, Any], rule: EscalationRule, patterns: list[re.Pattern[str]]) -> str | None:
    """Why a cascade stage's answer should be escalated, or None to accept it."""
    choice = (resp.get("choices") or [{}])[0]
    if rule.refusal:
        if choice.get("finish_reason") == "content_filter" or (choice.get("message") or {}).get("refusal"):
            return "refusal"
        text = answer_text(resp)
        if any(p.search(text) for p in patterns):
            return "refusal"
    if rule.finish_reason_length and choice.get("finish_reason") == "length":
        return "length"
    if rule.mean_logprob_below is not None:
        m = mean_logprob(resp)
        if m is not None and m < rule.mean_logprob_below:
            return "low_logprob"
    return None


def compile_refusals(rule: EscalationRule) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in rule.refusal_patterns]
