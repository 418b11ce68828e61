"""Pool policies: parsing (every error message) and the seed's decision matrix."""

from __future__ import annotations

import pytest

from components.serving.pools.strategy import (WORKLOADS, Policy, PolicyError, mismatch_warning, parse_policy,
                                               policy_problems, recommend)


@pytest.mark.parametrize("text,expected", [
    ("dedicated", Policy("dedicated")),
    ("dynamic", Policy("dynamic")),
    ("mig:all-1g.10gb", Policy("mig", mig_profile="all-1g.10gb")),
    ("mig:all-balanced", Policy("mig", mig_profile="all-balanced")),
    ("time-slicing:4", Policy("time-slicing", slices=4)),
    (" time-slicing:2 ", Policy("time-slicing", slices=2)),
])
def test_parse_policy(text, expected):
    assert parse_policy(text) == expected
    assert str(parse_policy(text)) == text.strip()


@pytest.mark.parametrize("text,message", [
    ("", "one of dedicated, mig:<profile> (e.g. mig:all-1g.10gb), time-slicing:<n> (e.g. time-slicing:4) or dynamic"),
    ("shared", "one of dedicated, mig:<profile> (e.g. mig:all-1g.10gb), time-slicing:<n> (e.g. time-slicing:4) "
               "or dynamic"),
    ("dedicated:2", "dedicated takes no parameter (write 'dedicated')"),
    ("dynamic:lru", "dynamic takes no parameter (write 'dynamic')"),
    ("mig", "mig needs the GPU operator's MIG configuration, e.g. mig:all-1g.10gb or mig:all-balanced"),
    ("mig:3g.40gb", "a MIG configuration named all-<g>g.<mem>gb or all-balanced (the GPU operator's default "
                    "mig-parted names), e.g. mig:all-3g.40gb"),
    ("time-slicing", "time-slicing needs the shares per GPU, e.g. time-slicing:4"),
    ("time-slicing:two", "time-slicing:<n> with n a whole number from 2 to 64"),
    ("time-slicing:1", "time-slicing:<n> with n from 2 to 64 (the node group's timeSlicingReplicas bounds), not 1"),
    ("time-slicing:65", "time-slicing:<n> with n from 2 to 64 (the node group's timeSlicingReplicas bounds), not 65"),
])
def test_parse_errors_say_what_would_parse(text, message):
    with pytest.raises(PolicyError) as err:
        parse_policy(text)
    assert err.value.expected == message
    assert str(err.value) == f"policy {text!r}: {message}"
    [problem] = policy_problems(text, "serving.pools.p.policy")
    assert (problem.path, problem.value, problem.expected) == ("serving.pools.p.policy", text, message)


def test_valid_policy_has_no_problems():
    assert policy_problems("dynamic") == []


@pytest.mark.parametrize("workload,policy,kinds,cites", [
    ("single-large-model", "dedicated", ("dedicated",), "dedicated, multi-GPU"),
    ("many-small-models", "mig:<profile> or time-slicing:<n>", ("mig", "time-slicing"), "MIG or time-sharing"),
    ("variable-traffic", "dynamic", ("dynamic",), "dynamic allocation"),
    ("latency-critical", "dedicated", ("dedicated",), "no contention"),
    ("cost-optimised", "time-slicing:<n>", ("time-slicing", "dynamic"), "sharing plus time-slicing"),
    ("dev-test", "time-slicing:<n>", ("time-slicing",), "time-sharing"),
])
def test_recommendation_per_workload_cites_the_seed(workload, policy, kinds, cites):
    rec = recommend(workload)
    assert (rec.workload, rec.policy, rec.kinds) == (workload, policy, kinds)
    assert rec.reason.startswith("seed 003 §4.4 gives ") and cites in rec.reason and rec.reason.endswith(".")


def test_every_workload_has_a_recommendation():
    assert WORKLOADS == ("single-large-model", "many-small-models", "variable-traffic", "latency-critical",
                         "cost-optimised", "dev-test")
    assert all(recommend(w).policy for w in WORKLOADS)


def test_unknown_workload_lists_the_known_ones():
    with pytest.raises(ValueError, match="workload 'batch': one of single-large-model, many-small-models, "
                                         "variable-traffic, latency-critical, cost-optimised, dev-test"):
        recommend("batch")


def test_mismatch_warning_only_when_the_policy_differs():
    assert mismatch_warning("variable-traffic", "dynamic") is None
    assert mismatch_warning("many-small-models", "time-slicing:4") is None
    assert mismatch_warning("many-small-models", parse_policy("mig:all-1g.10gb")) is None
    warning = mismatch_warning("latency-critical", "dynamic")
    assert warning is not None
    assert warning.startswith("policy dynamic differs from the recommendation for workload latency-critical "
                              "(dedicated): seed 003 §4.4 gives latency-critical")
    assert recommend("dev-test").accepts("time-slicing:2") and not recommend("dev-test").accepts("dedicated")
