"""Pure pieces: config validation, CLI exit codes, guard, token counting, embedder, breaker, retry budget."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from serving.gateway import cli, guard
from serving.gateway.config import CircuitBreakerConfig, load_config, parse_config
from serving.gateway.errors import ConfigError
from serving.gateway.routing import RetryBudget, escalation_reason, compile_refusals, mean_logprob
from serving.gateway.config import EscalationRule
from serving.gateway.tokens import PromptError, TokenCounter
from serving.gateway.upstreams import CircuitBreaker
from tests.kit import ROOT

EXAMPLE = ROOT / "serving" / "gateway" / "examples" / "local.yaml"
DIGEST = "a" * 64


def _minimal(**over) -> dict:
    cfg = {"tenants": {"keys": {"t": [DIGEST]}},
           "upstreams": {"u": {"kind": "openai", "baseUrl": "http://x/v1", "model": "m"}},
           "routes": {"r": {"targets": [{"upstream": "u"}]}}}
    cfg.update(over)
    return cfg


def test_example_config_is_valid():
    cfg = load_config(EXAMPLE)
    assert set(cfg.routes) == {"small", "large", "assistant"}
    assert cfg.routes["assistant"].cascade.stages == ["small", "large"]


def test_bad_config_lists_every_problem_with_its_path():
    bad = _minimal(
        upstreams={"u": {"kind": "openai", "baseUrl": "http://x/v1", "model": "m", "maxConnections": 0},
                   "b": {"kind": "grpc"}},
        routes={"r": {"targets": [{"upstream": "nope"}], "fallbacks": ["u"]},
                "c": {"cascade": {"stages": ["r", "missing"]}}, "e": {}},
        limiter={"failMode": "maybe"},
        tenants={"keys": {"t": ["sk-plaintext-key"]}},
        redis={"url": "http://cache:6379"},
    )
    with pytest.raises(ConfigError) as e:
        parse_config(bad)
    text = str(e.value)
    assert "upstreams.u.openai.maxConnections = 0: expected a number > 0" in text or \
        "upstreams.u.maxConnections" in text
    assert "upstreams.b" in text and "limiter.failMode = 'maybe': expected one of" in text
    # first pass (types) reports its problems; cross-field rules need a typed config, checked next
    good_types = _minimal(routes={"r": {"targets": [{"upstream": "nope"}], "fallbacks": ["nope2"]},
                                  "c": {"cascade": {"stages": ["r", "missing"]}}, "e": {}},
                          tenants={"keys": {"t": ["sk-plaintext-key"]}}, redis={"url": "http://cache:6379"})
    with pytest.raises(ConfigError) as e:
        parse_config(good_types)
    text = str(e.value)
    for expected in ("routes.r.targets[0].upstream = 'nope': unknown upstream; expected one of: u",
                     "routes.r.fallbacks[0] = 'nope2': unknown upstream",
                     "routes.c.cascade.stages[1] = 'missing': unknown route",
                     "routes.e.targets: required: at least one target",
                     "tenants.keys.t[0] = 'sk-plaintext...': expected a SHA-256 hex digest",
                     "redis.url = 'http://cache:6379': expected redis://"):
        assert expected in text, text
    assert text.startswith("invalid gateway config: 6 problems")


def test_limiter_refund_delay_and_warm_connections_are_bounded():
    with pytest.raises(ConfigError) as e:
        parse_config(_minimal(limiter={"refundDelayMs": -1, "warmConnections": 513}))
    text = str(e.value)
    assert "limiter.refundDelayMs = -1: expected a number >= 0" in text
    assert "limiter.warmConnections = 513: expected a number <= 512" in text
    with pytest.raises(ConfigError) as e:
        parse_config(_minimal(limiter={"refundDelayMs": 1001}))
    assert "limiter.refundDelayMs = 1001: expected a number <= 1000" in str(e.value)
    cfg = parse_config(_minimal()).limiter
    assert (cfg.refund_delay_ms, cfg.warm_connections) == (5, 16)


def test_unknown_key_and_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        parse_config(_minimal(routes={"r": {"targets": [{"upstream": "u"}], "maxToken": 5,
                                            "tokenizer": {"file": "nope.json"}}}))
    assert "routes.r.maxToken: unknown key" in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config(_minimal(routes={"r": {"targets": [{"upstream": "u"}], "tokenizer": {"file": "nope.json"}}}),
                     base_dir=tmp_path)
    assert "routes.r.tokenizer.file = 'nope.json': file not found" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "absent.yaml")
    assert "cannot read the file" in str(e.value)


def test_cli_exit_codes(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: {r: {}}\nupstreams: {}\n")
    assert cli.main(["check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "routes.r.targets: required" in err and "Traceback" not in err
    assert cli.main(["serve", "--config", str(bad)]) == 2
    assert cli.main(["check", "--config", str(EXAMPLE)]) == 0
    assert "3 routes" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text("routes: [\n")
    assert cli.main(["check", "--config", str(broken)]) == 2
    assert "not valid YAML at line" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-local-dev-key\n"))
    assert cli.main(["hash-key"]) == 0
    assert capsys.readouterr().out.strip() in EXAMPLE.read_text()


@pytest.mark.parametrize("a,b", [
    ("How do I enable 2FA on GitHub?", "How do I disable 2FA on GitHub?"),
    ("How do I turn on dark mode?", "How do I turn off dark mode?"),
    ("Is it safe to run the migration with downtime?", "Is it safe to run the migration without downtime?"),
    ("Why is my build failing?", "Why isn't my build failing?"),
    ("Upgrade the cluster to Kubernetes 1.30", "Upgrade the cluster to Kubernetes 1.31"),
    ("Set the limit to 100 requests", "Set the limit to 1000 requests"),
    ("How do I sort a list in python?", "How do I sort a list in java?"),
    ("Summarize the latest news about Apple", "Summarize the latest news about Google"),
    ("Convert 10 km to miles", "Convert 10 miles to km"),
    ("Did Brazil beat Germany in 2014?", "Did Germany beat Brazil in 2014?"),
    ("Translate this sentence from French to English", "Translate this sentence from English to French"),
])
def test_guard_rejects_traps(a, b):
    assert not guard.compatible(a, b)


@pytest.mark.parametrize("a,b", [
    ("How do I enable 2FA on GitHub?", "How can I turn on 2FA on GitHub?"),
    ("What is the capital of France?", "Tell me the capital of France"),
    ("Convert 10 km to miles", "What is 10 km in miles?"),
    ("How to undo the last git commit", "How can I undo my last git commit?"),
])
def test_guard_accepts_paraphrases(a, b):
    assert guard.compatible(a, b)


def test_token_counter_fallback_is_an_upper_bound():
    from serving.gateway.embed import _model_dir

    exact = TokenCounter(_model_dir() / "tokenizer.json", message_overhead_tokens=0)
    rough = TokenCounter(None, message_overhead_tokens=0)
    for text in ("hello world", "Ünïcödé ✓ text 🚀", "x" * 300, "def f(x):\n    return x ** 2\n"):
        assert rough.count_text(text) >= exact.count_text(text) > 0
    assert exact.exact and not rough.exact
    msgs = [{"role": "user", "content": "hi"}]
    assert TokenCounter(None, message_overhead_tokens=8).count_chat(msgs) == len("user") + 2 + 8 * 2
    with pytest.raises(PromptError, match="only text content parts"):
        rough.count_chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])


def test_local_embedder_matches_sentence_transformers(embedder):
    # reference: sentence-transformers 6.2 + torch 2.13 CPU on the same bundled weights (first 4 dims)
    texts = ["How do I enable 2FA on GitHub?", "How do I disable 2FA on GitHub?", "A man is eating food."]
    ref = np.array([[-0.02187, -0.122369, -0.053268, 0.030264],
                    [-0.029329, -0.043222, -0.050509, 0.023515],
                    [0.033242, 0.004406, -0.006277, 0.048379]])
    got = np.stack([embedder.embed(t) for t in texts])
    assert got.shape == (3, 384)
    assert np.allclose(got[:, :4], ref, atol=2e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert abs(float(got[0] @ got[1]) - 0.918518) < 1e-4  # the negation trap: cosine alone cannot tell
    assert embedder.too_long("word " * 300) and not embedder.too_long("short")


def test_circuit_breaker_opens_probes_and_closes():
    now = [0.0]
    b = CircuitBreaker(CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=10), clock=lambda: now[0])
    b.failure()
    assert b.state == "closed" and b.acquire()
    b.failure()
    assert b.state == "open" and not b.available() and not b.acquire()
    now[0] = 10.0
    assert b.available() and b.acquire()        # one probe...
    assert not b.acquire()                      # ...only one
    b.failure()
    assert b.state == "open"
    now[0] = 20.0
    assert b.acquire()
    b.success()
    assert b.state == "closed" and b.failures == 0


def test_retry_budget_limits_retries_to_a_share_of_requests():
    now = [0.0]
    rb = RetryBudget(0.2, 0.0, clock=lambda: now[0])
    for _ in range(10):
        rb.record_request()
    assert rb.try_retry() and rb.try_retry() and not rb.try_retry()
    now[0] = 25.0  # both windows expired
    assert not rb.try_retry()
    assert RetryBudget(0.0, 1.0, clock=lambda: 0.0).try_retry()  # the floor: minPerSecond x window


def test_escalation_rule():
    rule = EscalationRule(mean_logprob_below=-1.0)
    pats = compile_refusals(rule)
    ok = {"choices": [{"message": {"content": "Paris."}, "finish_reason": "stop",
                       "logprobs": {"content": [{"logprob": -0.2}, {"logprob": -0.4}]}}]}
    assert mean_logprob(ok) == pytest.approx(-0.3) and escalation_reason(ok, rule, pats) is None
    low = {"choices": [{"message": {"content": "Maybe?"}, "logprobs": {"content": [{"logprob": -2.0}]}}]}
    assert escalation_reason(low, rule, pats) == "low_logprob"
    refusal = {"choices": [{"message": {"content": "I'm sorry, but I cannot help with that."}}]}
    assert escalation_reason(refusal, rule, pats) == "refusal"
    filtered = {"choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}]}
    assert escalation_reason(filtered, rule, pats) == "refusal"
    no_lp = {"choices": [{"message": {"content": "ok"}}]}
    assert escalation_reason(no_lp, rule, pats) is None


def test_valkey_search_commands_and_reply_parsing():
    import asyncio

    from serving.gateway.cache import ValkeySearchIndex

    class FakeValkey:
        def __init__(self):
            self.calls = []

        async def execute_command(self, *args):
            self.calls.append(args)
            if args[0] == "FT.CREATE":
                raise RuntimeError("Index already exists")
            return [2, b"gw:s:1", [b"dist", b"0.05", b"payload", b"{\"a\":1}"],
                    b"gw:s:2", [b"dist", b"0.30", b"payload", b"{}"]]

    r = FakeValkey()
    idx = ValkeySearchIndex(r, name="gw", dim=4, timeout_s=1)
    vec = np.array([1, 0, 0, 0], np.float32)
    asyncio.run(idx.start())  # an existing index is fine
    assert r.calls[0][:8] == ("FT.CREATE", "gw", "ON", "HASH", "PREFIX", "1", "gw:", "SCHEMA")
    assert r.calls[0][8:] == ("scope", "TAG", "vec", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", "4",
                              "DISTANCE_METRIC", "COSINE")
    found = asyncio.run(idx.search("abc", vec, 4, 0.9))
    q = r.calls[1]
    assert q[:3] == ("FT.SEARCH", "gw", "@scope:{abc}=>[KNN 4 @vec $B AS dist]")
    assert q[3:6] == ("PARAMS", "2", "B") and q[6] == vec.tobytes() and q[-2:] == ("DIALECT", "2")
    assert found == [("gw:s:1", pytest.approx(0.95), b"{\"a\":1}")]  # 1 - 0.30 < 0.9 is dropped
