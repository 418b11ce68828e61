"""The semantic cache: the decision procedure's rules, the long-prompt split, the micro-batcher, remote embedders,
and faults (embedder or store failure is a miss, never a 5xx)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from serving.gateway import guard
from serving.gateway.batcher import EmbedBatcher, EmbedUnavailable
from serving.gateway.config import ConfigError, parse_config
from serving.gateway.embed import BedrockEmbedder, OpenAIEmbedder
from tests.serving.gateway.conftest import GatewayHandle, base_config, chat

DOCS = "\n\n".join(
    f"Document {i}: Northwind Cloud refund policy, part {i}. " + " ".join(
        f"Refund requests of type {i}-{j} are reviewed within {j + 2} business days and answered by email."
        for j in range(25)) for i in range(1, 4))


def q(text: str) -> str:
    return guard.split(text).question


# --- rules ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a,b,reason", [
    ("How do I enable 2FA on GitHub?", "How do I disable 2FA on GitHub?", "polarity"),
    ("How do I turn on dark mode?", "How do I turn off dark mode?", "polarity"),
    ("Is it safe to run the migration with downtime?", "Is it safe to run the migration without downtime?",
     "negation"),
    ("Why is my build failing?", "Why isn’t my build failing?", "negation"),  # curly apostrophe
    ("Is it necessary to restart the server?", "Is it unnecessary to restart the server?", "polarity"),
    ("Upgrade the cluster to Kubernetes 1.30.", "Upgrade the cluster to Kubernetes 1.31", "numbers"),
    ("Give me three ideas for a party", "Give me five ideas for a party", "numbers"),
    ("How do I sort a list in python?", "How do I sort a list in java?", "entities"),
    ("What's the capital of Austria?", "What's the capital of Australia?", "entities"),
    ("Sort the list in ascending order.", "Sort the list in descending order.", "polarity"),
    ("Is the patient awake?", "Is the patient asleep?", "polarity"),
    ("Copy data into the bucket.", "Copy data out of the bucket.", "polarity"),
    ("What does the tenant owe?", "What does the landlord owe?", "polarity"),
    ("Explain the French Revolution briefly.", "Explain the French Revolution in detail.", "polarity"),
    ("How do I delete a user in Postgres?", "How do I delete all users in Postgres?", "quantifier"),
    ("Convert 10 km to miles", "Convert 10 miles to km", "role swap"),
    ("Did Brazil beat Germany in 2014?", "Did Germany beat Brazil in 2014?", "role swap"),
    ("Can a landlord evict a tenant without notice?", "Can a tenant evict a landlord without notice?", "role swap"),
    ("Translate this sentence from French to English", "Translate this sentence from English to French",
     "role swap"),
    ("Does the partner's policy override the terms of Acme?", "Do the terms of Acme override the partner's policy?",
     "role swap"),
    ("Should I send data to the hub or the sensor first?", "Should I send data to the sensor or the hub first?",
     "role swap"),
    # round 2: direction and role words, clock times, units of time
    ("How does the HPA scale a Deployment up?", "How does the HPA scale a Deployment down?", "polarity"),
    ("How do I decode a base64 string in Python?", "How do I encode a base64 string in Python?", "polarity"),
    ("Explain how the defendant can appeal.", "Explain how the plaintiff can appeal.", "polarity"),
    ("List flights arriving at JFK from London.", "List flights departing JFK for London.", "polarity"),
    ("Can I make a 7:30 pm connection?", "Can I make a 7:30 am connection?", "polarity"),
    ("Set up a cron job that runs every 5 minutes.", "Set up a cron job that runs every 5 hours.", "polarity"),
    ("Should ibuprofen be taken before or after aspirin, and how long apart?",
     "Should aspirin be taken before or after ibuprofen, and how long apart?", "role swap"),  # a pivot of 2 terms
])
def test_rules_reject_traps_with_their_reason(a, b, reason):
    assert guard.rule_problem(q(a), q(b)) == reason
    assert not guard.compatible(a, b)


@pytest.mark.parametrize("a,b", [
    ("How do I enable 2FA on GitHub?", "How can I turn on 2FA on GitHub?"),
    ("What is the capital of France?", "Tell me the capital of France"),
    ("Convert 10 km to miles", "What is 10 km in miles?"),
    ("How to undo the last git commit", "How can I undo my last git commit?"),
    ("How do I parse JSON in JS?", "how do i parse json in JavaScript"),  # alias and casing
    ("How do I connect to Postgres?", "How do I connect to PostgreSQL?"),
    ("Read a file in golang", "Read a file in Go."),  # alias and trailing punctuation
    ("How many grams are in 8 oz?", "How many grams are in 8 ounces?"),
    ("Why isn't my build failing?", "Why isn’t my build failing"),
    ("What is the boiling point of water at sea level?", "At sea level, what is the boiling point of water?"),
    ("What is the population of Canada?", "What's Canada's population?"),  # "of" reorder is not a role swap
    ("Summarize the text below.", "Summarize the following text."),  # "below"/"following" are not polarity
    # round 2: aliases, symmetric comparisons, "am" as a verb
    ("How do I create a unique index in MongoDB?", "How do I create a unique index in Mongo?"),
    ("Host a static website on Amazon Web Services", "Host a static website on AWS"),
    ("Set a budget alert on Google Cloud Platform", "Set a budget alert on GCP"),
    ("What is overfitting in machine learning?", "What is overfitting in ML?"),
    ("What is the difference between a Roth IRA and a traditional IRA?",
     "How does a traditional IRA differ from a Roth IRA?"),  # "A vs B" is "B vs A"
    ("Why am I getting a 429 error?", "Why do I get a 429 error?"),
])
def test_rules_accept_paraphrases(a, b):
    assert guard.rule_problem(q(a), q(b)) is None


def test_decision_thresholds_depend_on_changed_words():
    p = guard.Policy(threshold=0.8, threshold_reworded=0.9, max_changed_words=3)
    same = ("How do I merge two dicts in Python?", "How can I merge two dictionaries in Python?")
    assert guard.changed_words(*same) == 0
    assert guard.decide(*same, 0.81, p) == (True, "same content")
    assert guard.decide(*same, 0.79, p) == (False, "similarity")
    reworded = ("What is the speed of light?", "What is the velocity of light?")
    assert guard.changed_words(*reworded) == 2
    assert guard.decide(*reworded, 0.89, p) == (False, "similarity (reworded)")
    assert guard.decide(*reworded, 0.91, p) == (True, "reworded")
    assert guard.decide("How do I cook rice?", "How do I cook rice in a pan on the stove tonight quickly?", 0.95,
                        p) == (False, "changed words")
    assert guard.decide("How long are records kept?", "How long are records and backups kept?", 0.95,
                        p) == (False, "scope")
    # a restrictive modifier on one side only narrows the request
    assert guard.decide("What are the free tourist attractions in Paris?", "What are the tourist attractions in "
                        "Paris?", 0.95, p) == (False, "scope")
    assert guard.decide("What are the free tourist attractions in Paris?", "What are the free sights in Paris?",
                        0.95, p)[0] is True


@pytest.mark.parametrize("a,b", [
    ("How do I make every property optional in TS? Thanks in advance.",
     "How do I make every property optional in TS?"),
    ("Could you tell me: how do I set a budget alert?", "How do I set a budget alert?"),
    ("Hi there, what is overfitting???", "What is overfitting?"),
    ("Please answer: i take aspirin daily. When can I take ibuprofen?",
     "I take aspirin daily. When can I take ibuprofen?"),
])
def test_greetings_and_pleasantries_are_not_part_of_the_question(a, b):
    assert q(a).lower() == q(b).lower()


LONG = " ".join(f"Clause {i}: the deposit of {i + 100} euros is returned within {i + 2} days." for i in range(12))


def test_near_identical_contexts_share_the_key_and_any_changed_word_does_not():
    base = f"### Source 1\n{LONG}\n\n---------------------\nQuery: When is the deposit returned?\nAnswer: "
    reformatted = (f"Hello,\n\n**Source 1**\n{LONG.replace('. ', '.  ')}\n----------\n"
                   f"Question: When is the deposit returned?  \nAnswer:")
    a, b = guard.split(base), guard.split(reformatted)
    assert a.question == "When is the deposit returned?" and b.question == a.question
    assert a.context and a.context == b.context  # headings, separators, spaces, greeting lines, labels
    for changed in (LONG.replace("103 euros", "104 euros"), LONG.replace("is returned within 5", "is not returned "
                    "within 5"), LONG.replace("Clause 3", "Clause 30")):
        assert guard.split(base.replace(LONG, changed)).context != a.context
    other = guard.split(base.replace("When is the deposit returned?", "Who pays the deposit?"))
    assert other.context == a.context and other.question != a.question  # same documents, another question


def test_question_before_the_material_is_the_question():
    code = "```python\n" + "\n".join(f"def f{i}(x):\n    return x + {i}" for i in range(12)) + "\n```"
    first = guard.split("Why does f3 return the wrong value?\n\n" + code)
    last = guard.split(code + "\n\nWhy does f3 return the wrong value?")
    assert first.question == last.question == "Why does f3 return the wrong value?"
    assert first.context == last.context != ""
    email = "Summarize this email.\n\n" + LONG + "\n\nDaniel"
    assert guard.split(email).question == "Summarize this email."
    long_first = " ".join(["word"] * 40) + "\n\n" + LONG + "\n\nDaniel"
    assert guard.split(long_first).question == "Daniel"  # a long first paragraph is material, not the question


def test_long_prompt_split_context_must_match_and_question_decides():
    a = guard.split(DOCS + "\n\nQuestion: How many business days does a type 1-3 review take?")
    b = guard.split(DOCS.replace(". ", ".  ") + "\n\nWithin how many business days is a type 1-3 request reviewed?")
    assert a.context and a.context == b.context  # whitespace does not count
    assert a.question == "How many business days does a type 1-3 review take?"  # the label is dropped
    changed = guard.split(DOCS.replace("within 5 business", "within 6 business", 1) + "\n\nQuestion: x?")
    assert changed.context != a.context
    assert guard.split("Hello\n\nHow are you?").context == ""  # too short to be a context: one question
    one_para = guard.split(" ".join(["The deposit is returned after the inspection."] * 30) + " Who inspects?")
    assert one_para.question == "Who inspects?" and one_para.context


def test_normalize_quotes_and_whitespace():
    assert guard.normalize("Don’t  “stop”\u00a0now \n\n\n\nok ") == 'Don\'t "stop" now\n\nok'
    assert guard.tokens("Isn’t it Node.js.") == ["Is", "n't", "it", "Node.js"]


# --- micro-batching ------------------------------------------------------------------------------------------------

class _Recorder:
    dim = 4

    def __init__(self, fail: bool = False, delay: float = 0.05):
        self.calls: list[list[str]] = []
        self.fail = fail
        self.delay = delay
        self.threads: set[str] = set()

    def too_long(self, text: str) -> bool:
        return False

    def embed_many(self, texts):
        self.threads.add(threading.current_thread().name)
        self.calls.append(list(texts))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model crashed")
        return np.asarray([[len(t), 1, 0, 0] for t in texts], np.float32)


def test_concurrent_requests_share_one_batch_on_a_worker_thread():
    rec = _Recorder()

    async def main():
        b = EmbedBatcher(rec, max_batch=16, max_wait_ms=5)
        vecs = await asyncio.gather(*(b.embed("x" * i) for i in range(1, 7)))
        return b, vecs

    b, vecs = asyncio.run(main())
    assert rec.calls == [["x", "xx", "xxx", "xxxx", "xxxxx", "xxxxxx"]]  # one call for six requests
    assert [int(v[0]) for v in vecs] == [1, 2, 3, 4, 5, 6]  # each caller gets its own vector
    assert all(n.startswith("embed") for n in rec.threads) and b.stats.largest == 6


def test_requests_arriving_while_the_worker_is_busy_form_the_next_batch():
    rec = _Recorder(delay=0.1)

    async def main():
        b = EmbedBatcher(rec, max_batch=4, max_wait_ms=0)
        first = asyncio.ensure_future(b.embed("a"))
        await asyncio.sleep(0.02)  # the worker is busy with "a"
        rest = await asyncio.gather(*(b.embed(t) for t in "bcdefg"))
        return await first, rest

    asyncio.run(main())
    assert rec.calls == [["a"], ["b", "c", "d", "e"], ["f", "g"]]


def test_failing_embedder_fails_every_waiter_and_the_batcher_recovers():
    rec = _Recorder(fail=True)

    async def main():
        b = EmbedBatcher(rec, max_wait_ms=2)
        res = await asyncio.gather(*(b.embed(t) for t in "abc"), return_exceptions=True)
        rec.fail = False
        return res, await b.embed("ok")

    res, after = asyncio.run(main())
    assert all(isinstance(r, EmbedUnavailable) and "RuntimeError: model crashed" in str(r) for r in res)
    assert after[0] == 2


def test_queue_bound_and_timeout():
    rec = _Recorder(delay=0.3)

    async def main():
        b = EmbedBatcher(rec, max_batch=1, max_wait_ms=0, max_queue=2, timeout_s=0.1)
        return await asyncio.gather(*(b.embed(t) for t in "abcd"), return_exceptions=True)

    res = asyncio.run(main())
    msgs = [str(r) for r in res]
    assert "embedding took over 100 ms" in msgs[0]
    assert sum("queue full (2 waiting)" in m for m in msgs) == 1  # a, b, c queued (a dispatched), d refused


def test_local_embed_many_equals_embed(embedder):
    texts = ["short", "How do I enable 2FA on GitHub?", "a much longer prompt " * 12, "hi"]
    many = embedder.embed_many(texts)
    one = np.stack([embedder.embed(t) for t in texts])
    assert np.allclose(many, one, atol=1e-5)


# --- remote embedders ----------------------------------------------------------------------------------------------

class _EmbedServer:
    def __init__(self, dim: int = 3, status: int = 200):
        self.requests: list[dict] = []
        srv = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                srv.requests.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
                data = [{"index": i, "embedding": [3.0, 4.0] + [0.0] * (dim - 2)}
                        for i, _ in reversed(list(enumerate(body["input"])))]
                out = json.dumps({"object": "list", "data": data}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self):
        self.httpd.shutdown()


def test_openai_embedder_batches_in_one_call_and_normalises():
    srv = _EmbedServer()
    try:
        e = OpenAIEmbedder(srv.url, "bge-small", dimensions=3, api_key="sk-embed")
        v = e.embed_many(["a", "b"])
        assert srv.requests == [{"path": "/v1/embeddings", "auth": "Bearer sk-embed",
                                 "body": {"model": "bge-small", "input": ["a", "b"]}}]
        assert np.allclose(v, [[0.6, 0.8, 0.0]] * 2)
        with pytest.raises(ValueError, match="returned 3 dimensions, configured 4"):
            OpenAIEmbedder(srv.url, "m", dimensions=4).embed("a")
    finally:
        srv.stop()
    bad = _EmbedServer(status=503)
    try:
        with pytest.raises(OSError):
            OpenAIEmbedder(bad.url, "m", dimensions=3).embed("a")
    finally:
        bad.stop()


def test_bedrock_embedder_with_stubber():
    import io

    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    stub = Stubber(client)
    raw = json.dumps({"embedding": [0.6, 0.8], "inputTextTokenCount": 2}).encode()
    for text in ("a", "b"):
        stub.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(raw), len(raw)),
                                           "contentType": "application/json"},
                          {"modelId": "amazon.titan-embed-text-v2:0", "contentType": "application/json",
                           "accept": "application/json",
                           "body": json.dumps({"inputText": text, "dimensions": 256, "normalize": True})})
    with stub:
        e = BedrockEmbedder("amazon.titan-embed-text-v2:0", dimensions=256, client=client)
        assert np.allclose(e.embed_many(["a", "b"]), [[0.6, 0.8]] * 2)
    stub.assert_no_pending_responses()


def test_embedder_config_rules_name_the_key():
    from serving.gateway.auth import hash_key

    base = {"tenants": {"keys": {"t": [hash_key("sk-t")]}},
            "upstreams": {"u": {"kind": "openai", "baseUrl": "http://127.0.0.1:1/v1", "model": "m"}},
            "routes": {"r": {"targets": [{"upstream": "u"}]}}}
    with pytest.raises(ConfigError) as err:
        parse_config(dict(base, semanticCache={"embedder": {"kind": "openai"}}))
    assert "semanticCache.embedder.baseUrl" in str(err.value) and "required for kind openai" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config(dict(base, semanticCache={"embedder": {"kind": "bedrock", "dimensions": 384}}))
    assert "semanticCache.embedder.dimensions = 384: Titan Text Embeddings v2 takes 256, 512 or 1024" in str(err.value)
    ok = parse_config(dict(base, semanticCache={"embedder": {"kind": "openai", "baseUrl": "http://e:8080/v1",
                                                             "modelId": "bge", "dimensions": 384,
                                                             "maxBatch": 32, "maxWaitMs": 1}}))
    assert ok.semantic_cache.embedder.max_batch == 32


# --- through the gateway -------------------------------------------------------------------------------------------

class _Broken:
    dim = 384
    max_tokens = 256

    def too_long(self, text):
        return False

    def embed(self, text):
        raise RuntimeError("embedder down")

    def embed_many(self, texts):
        raise RuntimeError("embedder down")


def test_embedder_failure_is_a_miss_not_a_5xx(redis_server, stubs):
    redis_server.flush()
    for s in stubs.values():
        s.reset()
    g = GatewayHandle(base_config(redis_server.url, stubs), _Broken())
    try:
        r = g.post(chat("How do I enable 2FA on GitHub?", model="cached", temperature=0))
        assert r.status_code == 200 and r.headers["x-gateway-cache"] == "miss"  # empty scope: nothing embedded
        g.settle()
        r = g.post(chat("How can I turn on 2FA on GitHub?", model="cached", temperature=0))
        assert r.status_code == 200 and r.headers["x-gateway-cache"] == "miss"
        assert g.metric("gateway_cache_lookups_total", kind="semantic", result="error") == 1
        assert stubs["a"].state.requests == 2
    finally:
        g.stop()


def test_long_rag_prompt_hits_on_a_reworded_question_and_misses_on_another(make_gateway, stubs, embedder):
    assert embedder.too_long(DOCS)  # over 256 word pieces: cached by its question
    # a generous embedding timeout: a shared test machine must not turn a slow embedding into a miss here
    g = make_gateway(lambda c: c.setdefault("semanticCache", {}).update(embedder={"timeoutMs": 20_000}))
    first = DOCS + "\n\nQuestion: How many business days does a type 1-3 refund review take?"
    assert g.post(chat(first, model="cached", temperature=0)).headers["x-gateway-cache"] == "miss"
    g.settle()
    reworded = DOCS + "\n\nQuestion: How many business days does a refund review of type 1-3 take?"
    assert g.post(chat(reworded, model="cached", temperature=0)).headers["x-gateway-cache"] == "hit-semantic"
    other = DOCS + "\n\nQuestion: How many business days does a type 1-4 refund review take?"
    assert g.post(chat(other, model="cached", temperature=0)).headers["x-gateway-cache"] == "miss"
    swapped = DOCS.replace("Northwind", "Southwind") + \
        "\n\nQuestion: How many business days does a type 1-3 refund review take?"
    assert g.post(chat(swapped, model="cached", temperature=0)).headers["x-gateway-cache"] == "miss"
    assert stubs["a"].state.requests == 3


def test_scope_holds_the_context_and_usable_checks_only_the_question(embedder):
    from serving.gateway.cache import SemanticCache

    sc = SemanticCache(None, embedder)
    q1 = DOCS + "\n\nHow long does a review take?"
    assert sc.scope("base", q1) == sc.scope("base", DOCS.replace(" ", "  ") + "\n\nIs a review slow?")
    assert sc.scope("base", q1) != sc.scope("base", DOCS.replace("Northwind", "Southwind") + "\n\nHow long?")
    assert sc.scope("base", q1) != sc.scope("other", q1)
    assert sc.usable(q1)  # the whole prompt is over the window, its question is not
    assert not sc.usable(DOCS + "\n\n" + "why " * 300)
    assert not sc.usable("   ")


def test_scope_holds_the_anchors_the_guard_requires_to_be_equal(embedder):
    from serving.gateway.cache import SemanticCache

    sc = SemanticCache(None, embedder)
    assert sc.scope("b", "Convert 10 km to miles") == sc.scope("b", "What is 10 km in miles?")
    assert sc.scope("b", "Convert 10 km to miles") != sc.scope("b", "Convert 12 km to miles")
    assert sc.scope("b", "Is it safe?") != sc.scope("b", "Is it not safe?")
    assert sc.scope("b", "Delete a user") != sc.scope("b", "Delete all users")
    assert sc.scope("b", "Convert 10 km", use_guard=False) == sc.scope("b", "Convert 12 km", use_guard=False)
    for a, b in (("Convert 10 km to miles", "Convert 12 km to miles"), ("Is it safe?", "Is it not safe?"),
                 ("Delete a user", "Delete all users")):  # a different scope only where the guard says no anyway
        assert guard.rule_problem(a, b) in ("numbers", "negation", "quantifier")


class _Counting:
    def __init__(self, inner):
        self.inner, self.texts = inner, []
        self.dim, self.max_tokens = inner.dim, inner.max_tokens

    def too_long(self, text):
        return self.inner.too_long(text)

    def embed(self, text):
        self.texts.append(text)
        return self.inner.embed(text)

    def embed_many(self, texts):
        self.texts.extend(texts)
        return self.inner.embed_many(texts)


def test_an_empty_scope_is_a_miss_without_embedding_and_loses_no_hit(redis_server, stubs, embedder):
    redis_server.flush()
    for s in stubs.values():
        s.reset()
    counting = _Counting(embedder)
    g = GatewayHandle(base_config(redis_server.url, stubs), counting)
    try:
        r = g.post(chat("How do I enable 2FA on GitHub?", model="cached", temperature=0))
        assert r.headers["x-gateway-cache"] == "miss"
        g.settle()
        assert counting.texts == []  # nothing cached in the scope: no embedding, stored without a vector
        r = g.post(chat("Convert 10 km to miles", model="cached", temperature=0))  # another scope (numbers)
        g.settle()
        assert r.headers["x-gateway-cache"] == "miss" and counting.texts == []
        r = g.post(chat("How can I turn on 2FA on GitHub?", model="cached", temperature=0))
        assert r.headers["x-gateway-cache"] == "hit-semantic"  # the stored entry was embedded at this lookup
        assert sorted(counting.texts) == ["How can I turn on 2FA on GitHub?", "How do I enable 2FA on GitHub?"]
        assert stubs["a"].state.requests == 2
    finally:
        g.stop()


def test_an_index_without_lazy_entries_embeds_at_store(embedder):
    from serving.gateway.cache import SemanticCache

    added = []

    class Eager:
        lazy = False

        async def start(self):
            pass

        async def live(self, scope):
            return False

        async def add(self, scope, vec, payload, ttl_s):
            added.append(vec)

    sc = SemanticCache(Eager(), embedder)
    hit, vec = asyncio.run(sc.find("s", "How do I enable 2FA?", 0.8))
    assert hit is None and vec is None
    asyncio.run(sc.store("s", "How do I enable 2FA?", None, b"{}", 60))
    assert added[0] is not None and added[0].shape == (embedder.dim,)


def test_store_or_index_failure_raises_cache_unavailable(embedder):
    from serving.gateway.cache import CacheUnavailable, SemanticCache

    class Down:
        async def start(self):
            pass

        async def search(self, *a):
            raise ConnectionError("store down")

        async def add(self, *a):
            raise ConnectionError("store down")

    sc = SemanticCache(Down(), embedder)
    v = np.zeros(384, np.float32)
    with pytest.raises(CacheUnavailable, match="store down"):
        asyncio.run(sc.lookup("s", "q", v, 0.8))
    with pytest.raises(CacheUnavailable, match="store down"):
        asyncio.run(sc.store("s", "q", v, b"{}", 60))
    with pytest.raises(CacheUnavailable, match="embedder down"):
        asyncio.run(SemanticCache(Down(), _Broken()).embed("q"))


@pytest.mark.parametrize("a,b,reason", [
    ("When was the Eiffel Tower built?", "Why was the Eiffel Tower built?", "question word"),
    ("Is Japanese hard to learn?", "Is Japanese easy to learn?", "polarity"),
    ("Why is my laptop so fast?", "Why is my laptop so slow?", "polarity"),
    ("How do I stop my dog barking at night?", "How do I stop my dog barking during the day?", "polarity"),
    ("Best exercises for lower back pain", "Best exercises for upper back pain", "polarity"),
])
def test_more_rules(a, b, reason):
    assert guard.rule_problem(a, b) == reason


def test_who_and_whom_are_one_question_word():
    assert guard.rule_problem("Who did the committee appoint?", "Whom did the committee appoint?") is None
