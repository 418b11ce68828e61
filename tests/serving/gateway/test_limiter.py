"""The limiter against a real redis-server: refunds held back and carried by the next reservation, flushed after
the delay, never sent twice; charges settled at once; scripts reloaded after SCRIPT FLUSH; warm-up at startup."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from serving.gateway.config import TenantLimits
from serving.gateway.limiter import Limiter, LimiterUnavailable
from tests.serving.gateway.conftest import chat

TPM = TenantLimits(tokens_per_minute=1000)


def _level(url: str, tenant: str) -> float:
    return float(redis.Redis.from_url(url).hget(f"gw:lim:{{{tenant}}}:tpm", "l"))


def _evalsha_calls(url: str) -> int:
    return int(redis.Redis.from_url(url).info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def _run(url: str, fn, **kw):
    async def main():
        r = aioredis.Redis.from_url(url)
        lim = Limiter(r, timeout_s=2, **kw)
        try:
            return await fn(lim)
        finally:
            await lim.aclose()
            await r.aclose()

    return asyncio.run(main())


@pytest.fixture
def url(redis_server):
    redis_server.flush()
    return redis_server.url


def test_refund_is_held_then_carried_by_the_next_reservation(url):
    async def scenario(lim: Limiter):
        first = await lim.reserve("t", TPM, 300)
        calls = _evalsha_calls(url)
        assert lim.settle_later(first.reservation, 100)  # 200 unused: queued, no Redis call
        assert _evalsha_calls(url) == calls and not lim.idle
        assert _level(url, "t") <= 700 + 2  # still charged the whole reservation (plus refill)
        await lim.reserve("t", TPM, 50)
        assert _evalsha_calls(url) == calls + 1 and lim.idle  # one call: the refund travelled with it
        assert 700 + 200 - 50 <= _level(url, "t") <= 700 + 200 - 50 + 3

    _run(url, scenario, refund_delay_s=60)


def test_refund_is_applied_even_when_the_next_request_is_rejected(url):
    async def scenario(lim: Limiter):
        first = await lim.reserve("t", TPM, 900)
        lim.settle_later(first.reservation, 850)
        rejected = await lim.reserve("t", TPM, 500)
        assert not rejected.allowed and rejected.limit == "tpm"
        assert 150 <= _level(url, "t") <= 153 and lim.idle
        # a request-rate rejection carries the refund too
        limits = TenantLimits(requests_per_minute=1, tokens_per_minute=1000)
        ok = await lim.reserve("u", limits, 400)
        lim.settle_later(ok.reservation, 100)
        rejected = await lim.reserve("u", limits, 10)
        assert not rejected.allowed and rejected.limit == "rpm"
        assert 900 <= _level(url, "u") <= 903

    _run(url, scenario, refund_delay_s=60)


def test_refunds_of_every_tenant_are_flushed_after_the_delay(url):
    async def scenario(lim: Limiter):
        a = await lim.reserve("a", TPM, 300)
        b = await lim.reserve("b", TPM, 400)
        lim.settle_later(a.reservation, 100)
        lim.settle_later(b.reservation, 0)
        for _ in range(200):
            if lim.idle:
                break
            await asyncio.sleep(0.01)
        assert lim.idle
        assert 900 <= _level(url, "a") <= 903 and _level(url, "b") >= 1000 - 1

    _run(url, scenario, refund_delay_s=0.02)


def test_usage_above_the_reservation_is_charged_at_once(url):
    async def scenario(lim: Limiter):
        d = await lim.reserve("t", TPM, 100)
        assert not lim.settle_later(d.reservation, 160)  # the caller must settle now
        await lim.settle(d.reservation, 160)
        assert 840 <= _level(url, "t") <= 843 and lim.idle

    _run(url, scenario, refund_delay_s=60)


def test_no_refund_delay_means_the_caller_settles_each_response(url):
    async def scenario(lim: Limiter):
        d = await lim.reserve("t", TPM, 100)
        assert not lim.settle_later(d.reservation, 40)
        await lim.settle(d.reservation, 40)
        assert 960 <= _level(url, "t") <= 963

    _run(url, scenario, refund_delay_s=0)


class _DownAfterReserve:
    """A store that answers one call and then drops the connection (the carried refund may or may not have
    landed)."""

    def __init__(self, real):
        self.real = real
        self.calls = 0

    async def evalsha(self, *a):
        self.calls += 1
        if self.calls > 1:
            raise RedisConnectionError("connection reset")
        return await self.real.evalsha(*a)

    async def script_load(self, text):
        return await self.real.script_load(text)


def test_a_refund_whose_call_failed_is_never_sent_again(url):
    async def main():
        r = aioredis.Redis.from_url(url)
        flaky = _DownAfterReserve(r)
        lim = Limiter(flaky, timeout_s=2, refund_delay_s=60)
        d = await lim.reserve("t", TPM, 300)
        lim.settle_later(d.reservation, 0)
        with pytest.raises(LimiterUnavailable):
            await lim.reserve("t", TPM, 10)
        assert lim.idle  # dropped: resending could give the same tokens back twice
        await r.aclose()

    asyncio.run(main())
    assert _level(url, "t") <= 700 + 2


def test_scripts_are_reloaded_after_script_flush(url):
    async def scenario(lim: Limiter):
        d = await lim.reserve("t", TPM, 100)
        redis.Redis.from_url(url).script_flush()
        lim.settle_later(d.reservation, 0)
        await lim.flush()  # NOSCRIPT in the pipeline: loaded and sent again
        assert _level(url, "t") >= 1000 - 1
        redis.Redis.from_url(url).script_flush()
        assert (await lim.reserve("t", TPM, 100)).allowed

    _run(url, scenario, refund_delay_s=60)


def _clients(url: str) -> int:
    return len(redis.Redis.from_url(url).client_list())


def test_a_new_gateway_opens_limiter_connections_before_it_accepts_requests(make_gateway, redis_server):
    """The cause of 503s in a fresh replica's first burst: every request opened its own Redis connection inside the
    limiter timeout. Now the connections exist (and the scripts are loaded) when the port opens."""
    r = redis.Redis.from_url(redis_server.url)
    r.script_flush()
    before = _clients(redis_server.url)
    g = make_gateway(lambda c: c["limiter"].update(warmConnections=8))
    assert _clients(redis_server.url) - before >= 8
    from serving.gateway.limiter import _RESERVE, _SETTLE

    assert r.script_exists(_RESERVE.sha, _SETTLE.sha) == [True, True]
    assert g.post(chat(), key="tiny").status_code == 200
