"""Prefix-affinity routing: keys, rendezvous order, bounded load, replica churn, config errors, and a gateway whose
upstream addresses its replicas one by one."""

from __future__ import annotations

import asyncio
import copy

import pytest

from serving.gateway import affinity
from serving.gateway.affinity import HIT, NO_KEY, OVERFLOW, Strategy, prefix_key, rank
from serving.gateway.config import OpenAIUpstream, RoutingConfig
from serving.gateway.errors import ConfigError
from tests.serving.gateway.conftest import base_config, chat, free_port

AFFINITY = Strategy("prefix-affinity")
SYSTEM = "You are the support assistant of Example Corp. Answer briefly. " * 8


def conversation(first: str, turns: int) -> list[list[dict]]:
    """The message lists of ``turns`` successive requests of one conversation (history grows each turn)."""
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": first}]
    out = [copy.deepcopy(msgs)]
    for t in range(1, turns):
        msgs += [{"role": "assistant", "content": f"answer {t}"}, {"role": "user", "content": f"follow-up {t}"}]
        out.append(copy.deepcopy(msgs))
    return out


class C:
    def __init__(self, name: str, outstanding: int = 0):
        self.name, self.outstanding = name, outstanding


# --- keys ------------------------------------------------------------------------------------------------------

def test_prefix_key_is_stable_over_the_turns_of_a_conversation_and_differs_between_conversations():
    keys = {AFFINITY.key("chat", {"messages": m}) for m in conversation("my router drops packets", 6)}
    other = AFFINITY.key("chat", {"messages": conversation("how do I reset my password", 1)[0]})
    assert len(keys) == 1 and other not in keys


def test_prefix_key_covers_only_the_leading_blocks():
    long_a = {"messages": [{"role": "system", "content": "x" * 10_000}, {"role": "user", "content": "a"}]}
    long_b = {"messages": [{"role": "system", "content": "x" * 10_000}, {"role": "user", "content": "b"}]}
    # 32 blocks x 16 tokens x 4 characters = 2,048 characters: the shared system prompt is all the key sees
    assert AFFINITY.key("chat", long_a) == AFFINITY.key("chat", long_b)
    wide = Strategy("prefix-affinity", blocks=1024)
    assert wide.key("chat", long_a) != wide.key("chat", long_b)
    assert prefix_key("completion", {"prompt": "abc"}, block_tokens=16, blocks=1) == \
        prefix_key("completion", {"prompt": ["abc"]}, block_tokens=16, blocks=1)


def test_session_header_then_user_field_take_precedence_over_the_prefix():
    body = {"messages": [{"role": "user", "content": "hi"}], "user": "u-1"}
    assert AFFINITY.key("chat", body, "sess-9") == "s:sess-9"
    assert AFFINITY.key("chat", body) == "u:u-1"
    assert Strategy("prefix-affinity", use_user=False).key("chat", body).startswith("p:")
    assert Strategy().key("chat", body, "sess-9") is None  # least-outstanding routes never key
    assert AFFINITY.key("chat", {"messages": []}) is None


# --- ranking ---------------------------------------------------------------------------------------------------

def test_affinity_keeps_a_key_on_one_replica_while_loads_change_within_the_bound():
    names = [f"10.0.0.{i}:8000" for i in range(6)]
    first = rank("s:conv-1", names, [0] * 6).order[0]
    for loads in ([3, 2, 4, 1, 0, 2], [1, 1, 1, 1, 1, 1], [5, 5, 5, 5, 5, 5]):
        loads = list(loads)
        loads[first] = min(loads[first], 2)
        r = rank("s:conv-1", names, loads)
        assert r.order[0] == first and r.result == HIT


def test_overflow_takes_the_next_replica_in_hash_order_when_the_first_is_over_its_bound():
    names = ["r0", "r1", "r2", "r3"]
    order = affinity.hash_order("s:hot", names)
    loads = [2, 2, 2, 2]
    loads[order[0]] = 9  # over ceil(1.25 x (17 + 1) / 4) = 6
    r = rank("s:hot", names, loads)
    assert r.order[0] == order[1] and r.result == OVERFLOW and r.preferred == order[0]
    assert r.order == [order[1], order[0], order[2], order[3]]
    loads[order[1]] = 9
    assert rank("s:hot", names, loads).order[0] == order[2]
    # a higher load factor tolerates more before overflowing
    assert rank("s:hot", names, loads, load_factor=3.0).result == HIT


def test_some_replica_always_has_room_under_the_bound():
    for loads in ([0], [7, 7, 7], [100, 0, 0, 0], [3, 9, 1, 4, 4]):
        r = rank("s:any", [f"r{i}" for i in range(len(loads))], list(loads), load_factor=1.0)
        assert r.order and r.result in (HIT, OVERFLOW)


def test_adding_or_removing_a_replica_moves_only_its_share_of_keys():
    names = [f"10.1.0.{i}:8000" for i in range(8)]
    keys = [f"s:{i}" for i in range(4000)]
    before = {k: names[affinity.hash_order(k, names)[0]] for k in keys}
    gone = names[3]
    fewer = [n for n in names if n != gone]
    after = {k: fewer[affinity.hash_order(k, fewer)[0]] for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == gone for k in moved)
    assert len(moved) == sum(1 for k in keys if before[k] == gone)
    more = names + ["10.1.0.99:8000"]
    grown = {k: more[affinity.hash_order(k, more)[0]] for k in keys}
    moved = [k for k in keys if before[k] != grown[k]]
    assert all(grown[k] == "10.1.0.99:8000" for k in moved)
    assert 4000 / 9 * 0.8 < len(moved) < 4000 / 9 * 1.2


def test_no_key_falls_back_to_least_outstanding():
    cands = [C("a", 4), C("b", 1), C("c", 3)]
    r = AFFINITY.rank(None, cands)
    assert r.result == NO_KEY and [cands[i].name for i in r.order] == ["b", "c", "a"]
    assert r.outcome(r.order[0]) == NO_KEY
    plain = Strategy().rank("s:x", cands)
    assert plain.result is None and cands[plain.order[0]].name == "b"


def test_weights_bias_the_hash_order():
    names = ["big", "small"]
    firsts = [names[affinity.hash_order(f"s:{i}", names, [3.0, 1.0])[0]] for i in range(4000)]
    assert 0.70 < firsts.count("big") / 4000 < 0.80


# --- config ----------------------------------------------------------------------------------------------------

def _cfg_with(mutate) -> dict:
    cfg = base_config("redis://127.0.0.1:6379/0", {n: type("S", (), {"url": "http://127.0.0.1:1/v1"})()
                                                   for n in ("a", "b", "c")})
    mutate(cfg)
    return cfg


def _problems(mutate) -> dict[str, str]:
    from serving.gateway.config import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config(_cfg_with(mutate))
    return {p.path: f"{p.value!r} {p.expected}" for p in err.value.problems}


def test_config_errors_name_the_key_the_value_and_the_expectation():
    def bad(cfg):
        cfg["upstreams"]["a"]["replicas"] = {"dns": "llama.serving.svc", "urls": ["http://10.0.0.1:8000"]}
        cfg["upstreams"]["b"]["replicas"] = {}
        cfg["upstreams"]["c"]["replicas"] = {"urls": ["ftp://x", "http://10.0.0.2:8000/v1"], "port": 0}
        cfg["routes"]["plain"]["routing"] = {"strategy": "prefix-affinity", "sessionHeader": "bad header:",
                                             "loadFactor": 0.5}
        cfg["routes"]["failover"]["routing"] = {"strategy": "sticky"}
        cfg["routes"]["cascade"]["routing"] = {"strategy": "prefix-affinity"}

    got = _problems(bad)
    assert "set exactly one of dns" in got["upstreams.a.replicas"]
    assert "set exactly one of dns" in got["upstreams.b.replicas"]
    assert got["upstreams.c.replicas.port"].startswith("0 ")
    assert "least-outstanding" in got["routes.failover.routing.strategy"]
    assert "1" in got["routes.plain.routing.loadFactor"]
    # the cross-checks run on what the schema accepted: fix the schema errors and they show
    def cross(cfg):
        cfg["upstreams"]["c"]["replicas"] = {"urls": ["ftp://x", "http://10.0.0.2:8000/v1"]}
        cfg["upstreams"]["a"]["replicas"] = {"dns": "-bad-.svc"}
        cfg["routes"]["plain"]["routing"] = {"strategy": "prefix-affinity", "sessionHeader": "bad header:"}
        cfg["routes"]["cascade"]["routing"] = {"strategy": "prefix-affinity"}

    got = _problems(cross)
    assert got["upstreams.c.replicas.urls[0]"] == "'ftp://x' http(s)://HOST[:PORT] (no path: it comes from baseUrl)"
    assert "no path" in got["upstreams.c.replicas.urls[1]"]
    assert got["upstreams.a.replicas.dns"].startswith("'-bad-.svc' a DNS name")
    assert got["routes.plain.routing.sessionHeader"].startswith("'bad header:' an HTTP header name")
    assert "set routing on its stage routes" in got["routes.cascade.routing.strategy"]


def test_defaults_keep_todays_behaviour():
    up = OpenAIUpstream(kind="openai", base_url="http://x/v1", model="m")
    assert up.replicas is None and RoutingConfig().strategy == "least-outstanding"


# --- a gateway over replicas -----------------------------------------------------------------------------------

def _replicated(stubs, strategy="prefix-affinity", first=None):
    def mutate(cfg):
        urls = [s.server.url for s in stubs.values()]
        if first:
            urls.insert(0, first)
        cfg["upstreams"]["a"]["replicas"] = {"urls": urls}
        cfg["routes"]["plain"]["routing"] = {"strategy": strategy}
        cfg["routes"]["plain"]["maxPromptTokens"] = 32768
    return mutate


def _served(stubs) -> dict[str, int]:
    return {n: s.state.requests for n, s in stubs.items() if s.state.requests}


def test_gateway_keeps_each_conversation_on_one_replica(make_gateway, stubs):
    gw = make_gateway(_replicated(stubs))
    spread = set()
    # rendezvous hashing of random stub ports: 12 conversations all on one of 3 replicas has probability 3^-11
    for c in range(12):
        for s in stubs.values():
            s.state.requests = 0
        for msgs in conversation(f"question number {c} about my invoice", 4):
            r = gw.post({"model": "plain", "messages": msgs, "max_tokens": 5})
            assert r.status_code == 200, r.text
        served = _served(stubs)
        assert list(served.values()) == [4], served  # every turn on the same replica
        spread |= set(served)
    assert len(spread) >= 2  # different conversations use different replicas
    assert gw.metric("gateway_routing_affinity_total", route="plain", result="hit") == 48


def test_gateway_session_header_and_streams_stick(make_gateway, stubs):
    gw = make_gateway(_replicated(stubs))
    for i in range(5):
        r = gw.post(chat(f"unrelated prompt {i}", max_tokens=5, stream=i % 2 == 1), headers={"x-session-id": "abc"})
        assert r.status_code == 200, r.text
    assert list(_served(stubs).values()) == [5]
    up = gw.gw.upstreams["a"]
    assert all(r.outstanding == 0 for r in up.replicas.values())  # streams and answers released their replica


def test_gateway_least_outstanding_over_replicas_spreads_and_skips_a_refusing_replica(make_gateway, stubs):
    dead = f"http://127.0.0.1:{free_port()}"
    gw = make_gateway(_replicated(stubs, "least-outstanding", first=dead))
    for i in range(12):
        r = gw.post(chat(f"hello {i}", max_tokens=5))
        assert r.status_code == 200, r.text
    assert len(_served(stubs)) == 3
    up = gw.gw.upstreams["a"]
    assert up.replicas[dead.removeprefix("http://")].ejected_until > 0
    assert gw.metric("gateway_routing_affinity_total", route="plain", result="hit") == 0


def test_upstream_without_replicas_is_unchanged(make_gateway, stubs):
    gw = make_gateway()
    assert not gw.gw.upstreams["a"].has_replicas and gw.gw.upstreams["a"].discovery is None
    assert gw.post(chat(max_tokens=5)).status_code == 200
    assert _served(stubs) == {"a": 1}


def test_no_replicas_discovered_is_a_retryable_503():
    from serving.gateway.upstreams import OpenAIUpstreamClient, UpstreamError

    async def run():
        up = OpenAIUpstreamClient("u", OpenAIUpstream.model_validate(
            {"kind": "openai", "baseUrl": "http://x/v1", "model": "m", "replicas": {"dns": "nothing.invalid"}}))

        async def empty(host):
            return []

        up.discovery._resolve = empty
        with pytest.raises(UpstreamError) as err:
            await up.complete("chat", {"messages": []})
        await up.aclose()
        return err.value

    err = asyncio.run(run())
    assert err.status == 503 and err.retryable and "no replicas" in err.reason



def test_gateway_overflows_a_busy_replica_to_the_next_in_hash_order(make_gateway, stubs):
    from concurrent.futures import ThreadPoolExecutor

    gw = make_gateway(_replicated(stubs))
    for s in stubs.values():
        s.state.delay_ms = 400  # requests overlap, so the key's replica reaches its bound
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda i: gw.post(chat(f"q{i}", max_tokens=5), headers={"x-session-id": "hot"})
                              .status_code, range(6)))
    assert codes == [200] * 6
    assert len(_served(stubs)) >= 2
    assert gw.metric("gateway_routing_affinity_total", route="plain", result="overflow") >= 1
    assert gw.metric("gateway_routing_affinity_total", route="plain", result="hit") >= 1
