"""serving/gateway/pool_policy.py: each policy's victim on hand-made candidates, in-flight models never evicted,
deterministic ties, the decayed count, and the registry the gateway config names policies from."""

import pytest

from serving.gateway import pool_policy as pp
from serving.gateway.pool_policy import (
    CostAware,
    Lfu,
    Lru,
    ModelUse,
    decayed,
    record_use,
)

H = pp.HALF_LIFE_SECONDS


def use(last_used: float, uses: float, in_flight: int = 0, reload_seconds: float = 1.0) -> ModelUse:
    return ModelUse(last_used=last_used, uses=uses, in_flight=in_flight, reload_seconds=reload_seconds)


def test_registry_names_every_policy_and_the_default_is_one_of_them():
    assert list(pp.POLICIES) == ["lru", "lfu", "cost-aware"]
    assert all(p.name == name for name, p in pp.POLICIES.items())
    assert pp.DEFAULT_POLICY == "lru" and pp.DEFAULT_POLICY in pp.POLICIES


def test_decayed_count_halves_every_half_life_and_never_grows_backwards():
    u = use(1000.0, 8.0)
    assert decayed(u, 1000.0) == 8.0
    assert decayed(u, 1000.0 + H) == pytest.approx(4.0)
    assert decayed(u, 1000.0 + 3 * H) == pytest.approx(1.0)
    assert decayed(u, 500.0) == 8.0, "a now before last_used does not inflate the count"
    assert decayed(u, 1010.0, half_life_seconds=10.0) == pytest.approx(4.0)


def test_record_use_decays_then_adds_one_and_keeps_in_flight_and_reload():
    first = record_use(None, 100.0)
    assert first == ModelUse(last_used=100.0, uses=1.0, in_flight=0)
    u = use(100.0, 3.0, in_flight=2, reload_seconds=7.5)
    after = record_use(u, 100.0 + H)
    assert (after.last_used, after.uses, after.in_flight, after.reload_seconds) == (100.0 + H, pytest.approx(2.5),
                                                                                     2, 7.5)
    assert u.uses == 3.0, "the input is not mutated"
    late = record_use(u, 50.0)
    assert (late.last_used, late.uses) == (100.0, 4.0), "an out-of-order request counts, last_used stays"


def test_lru_evicts_the_oldest_last_use():
    c = {"a": use(300, 50), "b": use(100, 90), "c": use(200, 1)}
    assert Lru().victim(c, 400) == "b"


def test_lfu_evicts_the_fewest_decayed_uses_not_the_oldest():
    # b is the oldest but was used a lot; c is recent but used once: lfu evicts c, lru would evict b
    c = {"a": use(300, 50), "b": use(100, 90), "c": use(390, 1)}
    assert Lfu().victim(c, 400) == "c"
    assert Lru().victim(c, 400) == "b"


def test_lfu_decay_lets_a_stale_favourite_go():
    # a had 100 uses ten half-lives ago (~0.1 now); b has 2 uses just now
    c = {"a": use(0, 100), "b": use(10 * H, 2)}
    assert Lfu().victim(c, 10 * H) == "a"
    assert Lfu(half_life_seconds=1e12).victim(c, 10 * H) == "b", "without decay the old count would win"


def test_cost_aware_weighs_uses_by_reload_seconds():
    # a: 4 uses x 10 s = 40; b: 10 uses x 2 s = 20; c: 3 uses x 60 s = 180 -> b (lfu would pick c)
    c = {"a": use(100, 4, reload_seconds=10), "b": use(100, 10, reload_seconds=2), "c": use(100, 3, reload_seconds=60)}
    assert CostAware().victim(c, 100) == "b"
    assert Lfu().victim(c, 100) == "c"


def test_cost_aware_with_default_reload_ranks_like_lfu():
    c = {"a": use(300, 50), "b": use(100, 90), "c": use(390, 1)}
    assert CostAware().victim(c, 400) == Lfu().victim(c, 400) == "c"


@pytest.mark.parametrize("name", ["lru", "lfu", "cost-aware"])
def test_a_model_with_in_flight_requests_is_never_evicted(name):
    policy = pp.POLICIES[name]
    # the model every policy would pick first ("x": oldest, fewest uses, cheapest) is busy
    c = {"x": use(0, 0.001, in_flight=1, reload_seconds=0.01), "y": use(500, 40), "z": use(400, 60)}
    assert policy.victim(c, 600) in {"y", "z"}
    assert policy.victim({"x": c["x"]}, 600) is None
    assert policy.victim({"x": c["x"], "w": use(1, 1, in_flight=3)}, 600) is None
    assert policy.victim({}, 600) is None


@pytest.mark.parametrize("name", ["lru", "lfu", "cost-aware"])
def test_ties_are_broken_by_name_whatever_the_order_of_the_candidates(name):
    policy = pp.POLICIES[name]
    same = {k: use(100, 5) for k in ("m-b", "m-c", "m-a")}
    assert policy.victim(same, 200) == "m-a"
    assert policy.victim(dict(reversed(list(same.items()))), 200) == "m-a"


def test_tie_rules_before_the_name():
    # lru: equal last use -> fewer uses first
    assert Lru().victim({"a": use(100, 9), "b": use(100, 3)}, 200) == "b"
    # lfu: equal decayed count -> the older last use first (b: 4 at t=100 is 2 at t=100+H, like a's 2 at 100+H)
    assert Lfu().victim({"a": use(100 + H, 2), "b": use(100, 4)}, 100 + H) == "b"
    # cost-aware: equal products (2 x 5 = 10 x 1) -> the smaller count first
    assert CostAware().victim({"a": use(100, 10, reload_seconds=1), "b": use(100, 2, reload_seconds=5)}, 100) == "b"


def test_half_life_must_be_positive():
    with pytest.raises(ValueError, match=r"half_life_seconds \(0\) must be > 0"):
        Lfu(half_life_seconds=0)
    with pytest.raises(ValueError, match=r"half_life_seconds \(-1\) must be > 0"):
        CostAware(half_life_seconds=-1)
