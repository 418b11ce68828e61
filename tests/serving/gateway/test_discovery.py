"""Replica discovery: static URLs, DNS A records re-resolved in the background, dropped replicas, failed lookups."""

from __future__ import annotations

import asyncio

import pytest

from serving.gateway.discovery import Discovery, Endpoint, parse_url, resolve_dns


class FakeDns:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host: str) -> list[str]:
        self.calls += 1
        await asyncio.sleep(0)
        ans = self.answers[min(self.calls - 1, len(self.answers) - 1)]
        if isinstance(ans, Exception):
            raise ans
        return ans


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_static_urls_with_and_without_a_port():
    d = Discovery(urls=["http://10.0.0.2", "https://a.example:9000", "http://10.0.0.1:8001"], port=8000)
    assert [e.name for e in d.snapshot()] == ["10.0.0.1:8001", "10.0.0.2:8000", "a.example:9000"]
    assert d.snapshot()[2].url("/v1") == "https://a.example:9000/v1"
    assert Endpoint("http", "fd00::1", 8000).url("/v1", port=8001) == "http://[fd00::1]:8001/v1"
    with pytest.raises(ValueError, match="expected http"):
        parse_url("10.0.0.1:8000", 8000)
    with pytest.raises(ValueError, match="exactly one"):
        Discovery(urls=["http://a"], dns="b")


def test_dns_records_are_replicas_and_a_vanished_record_is_dropped():
    async def run():
        clock = Clock()
        dns = FakeDns(["10.0.0.1", "10.0.0.2"], ["10.0.0.2", "10.0.0.3"])
        d = Discovery(dns="llama.serving.svc", port=8000, refresh_seconds=10, resolver=dns, clock=clock)
        changes = []
        d.listeners.append(lambda added, removed: changes.append(([e.name for e in added],
                                                                  [e.name for e in removed])))
        first = [e.name for e in await d.endpoints()]
        clock.t = 5
        assert [e.name for e in await d.endpoints()] == first and dns.calls == 1  # fresh: no lookup
        clock.t = 11
        stale = [e.name for e in await d.endpoints()]  # served at once, refreshed in the background
        await asyncio.sleep(0.01)
        return first, stale, [e.name for e in d.snapshot()], changes, dns.calls

    first, stale, now, changes, calls = asyncio.run(run())
    assert first == stale == ["10.0.0.1:8000", "10.0.0.2:8000"]
    assert now == ["10.0.0.2:8000", "10.0.0.3:8000"] and calls == 2
    assert changes == [(["10.0.0.1:8000", "10.0.0.2:8000"], []), (["10.0.0.3:8000"], ["10.0.0.1:8000"])]


def test_a_failed_lookup_keeps_the_last_known_replicas():
    async def run():
        dns = FakeDns(["10.0.0.1"], OSError("SERVFAIL"), ["10.0.0.4"])
        d = Discovery(dns="x.svc", resolver=dns, refresh_seconds=0.0)
        await d.refresh()
        await d.refresh()
        kept = [e.name for e in d.snapshot()]
        await d.refresh()
        return kept, [e.name for e in d.snapshot()], d.failures

    kept, later, failures = asyncio.run(run())
    assert kept == ["10.0.0.1:8000"] and later == ["10.0.0.4:8000"] and failures == 1


def test_concurrent_first_callers_share_one_lookup():
    async def run():
        dns = FakeDns(["10.0.0.1"])
        d = Discovery(dns="x.svc", resolver=dns)
        got = await asyncio.gather(*(d.endpoints() for _ in range(10)))
        return dns.calls, {tuple(e.name for e in g) for g in got}

    calls, answers = asyncio.run(run())
    assert calls == 1 and answers == {("10.0.0.1:8000",)}


def test_upstream_drops_a_replica_that_left_dns():
    from serving.gateway.config import OpenAIUpstream
    from serving.gateway.upstreams import OpenAIUpstreamClient

    async def run():
        up = OpenAIUpstreamClient("u", OpenAIUpstream.model_validate(
            {"kind": "openai", "baseUrl": "http://llama:8000/v1", "model": "m",
             "replicas": {"dns": "llama-replicas.svc", "refreshSeconds": 1}}))
        up.discovery._resolve = FakeDns(["10.0.0.1", "10.0.0.2"], ["10.0.0.2"])
        first = sorted(r.name for r in await up.live_replicas())
        url = str(up.replicas["10.0.0.2:8000"].urls["chat"])
        await up.discovery.refresh()
        after = sorted(up.replicas)
        await up.aclose()
        return first, after, url

    first, after, url = asyncio.run(run())
    assert first == ["10.0.0.1:8000", "10.0.0.2:8000"] and after == ["10.0.0.2:8000"]
    assert url == "http://10.0.0.2:8000/v1/chat/completions"


def test_real_resolver_answers_localhost():
    assert "127.0.0.1" in asyncio.run(resolve_dns("localhost"))
