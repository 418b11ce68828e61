"""The gateway's collection endpoints and RAG routes against a real PostgreSQL with pgvector, S3/SQS on a moto server
and the ingestion worker run in-process with the gateway's own local embedding model: the whole flow, RAG routes
through the openai SDK with the retrieved-chunk cache, tenant isolation, and every bad-input path (4xx, nothing
written)."""

from __future__ import annotations

import json
import uuid

import boto3
import openai
import psycopg
import pytest

from serving.gateway.config import parse_config
from serving.gateway.errors import ConfigError
from serving.rag.ingest import MAX_DOCUMENT_BYTES
from serving.rag.localpg import LocalPostgres
from serving.rag.postgres import PgVectorStore
from serving.rag.worker import Worker, WorkerConfig
from tests.serving.batch.conftest import FAKE_CREDS, REGION, run_moto_server
from tests.serving.gateway.conftest import KEYS, base_config
from tests.serving.rag.conftest import make_rag_queues

DSN_ENV = "GENAI_SCALE_TEST_RAG_DSN"
READER_DSN_ENV = "GENAI_SCALE_TEST_RAG_READER_DSN"
READER_APP = "genai-scale-rag-reader"
BUDGET = 10**9
"""acme's tokens per minute: a bucket that refills in a millisecond, so after a request its level is exactly
``BUDGET`` minus that request's charge."""
DOCS = [
    {"id": "leave", "text": "Employees get twenty five days of paid vacation leave every year.",
     "metadata": {"team": "hr", "year": 2025}},
    {"id": "laptop", "text": "A laptop is replaced every three years; request a new one from the IT service desk.",
     "metadata": {"team": "it", "year": 2024}},
    {"id": "expenses", "text": "Travel expenses are reimbursed within thirty days when receipts are attached.",
     "metadata": {"team": "finance", "year": 2025}},
]


@pytest.fixture(scope="module")
def moto_url():
    yield from run_moto_server()


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL 18 with pgvector for this module (serving/rag/localpg.py)."""
    with LocalPostgres() as server:
        yield server


class Env:
    def __init__(self, gw, s3, sqs, bucket, queue, dlq, dsn, embedder):
        self.gw, self.s3, self.sqs, self.bucket, self.queue, self.dlq = gw, s3, sqs, bucket, queue, dlq
        self.dsn, self.embedder = dsn, embedder

    def http(self, method: str, path: str, tenant: str = "acme", **kw):
        return self.gw.client.request(method, path, headers={"authorization": f"Bearer {KEYS[tenant]}"}, **kw)

    def sdk(self, tenant: str = "acme") -> openai.OpenAI:
        return openai.OpenAI(api_key=KEYS[tenant], base_url=self.gw.url + "/v1", max_retries=0, timeout=30)

    def depth(self) -> int:
        a = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def objects(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])]

    def ingest(self) -> None:
        """Run a worker until the queue is empty, embedding with the gateway's own local model."""
        cfg = WorkerConfig(queue_url=self.queue, bucket=self.bucket, embed_url="http://unused", max_tokens=64,
                           overlap_tokens=8, idle_exit_seconds=0.5, max_receives=2)
        store = PgVectorStore.connect(self.dsn)
        try:
            assert Worker(cfg, sqs=self.sqs, s3=self.s3, store=store,
                          embedder_factory=lambda dims: self.embedder).run() == 0
        finally:
            store.close()

    def add(self, docs: list[dict], tenant: str = "acme", collection: str = "handbook"):
        return self.http("POST", f"/v1/collections/{collection}/documents", tenant, json={"documents": docs})


@pytest.fixture
def env(moto_url, postgres, make_gateway, embedder, monkeypatch):
    for k, v in FAKE_CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv(DSN_ENV, postgres.conninfo)
    # the "reader": the same server on read-only connections (any write sent there fails), named to be found
    monkeypatch.setenv(READER_DSN_ENV, f"{postgres.conninfo} application_name={READER_APP} "
                                       "options='-c default_transaction_read_only=on'")
    suffix = uuid.uuid4().hex[:8]
    kw = {"endpoint_url": moto_url, "region_name": REGION}
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    queue, dlq = make_rag_queues(s3, sqs, max_receives=2, suffix=suffix)
    bucket = "rag-test"

    def mutate(cfg):
        cfg["embeddings"] = {"enabled": True, "models": {"minilm": {"kind": "local"}}}
        cfg["rag"] = {"enabled": True, "store": {"dsnEnv": DSN_ENV, "readerDsnEnv": READER_DSN_ENV},
                      "embeddingModel": "minilm", "bucket": bucket,
                      "queueUrl": queue, "region": REGION, "maxDocumentsPerRequest": 5,
                      "routes": {"support-rag": {"route": "small", "collection": "handbook", "topK": 2},
                                 "hr-rag": {"route": "small", "collection": "handbook", "topK": 3,
                                            "filter": {"team": "hr"}}}}
        cfg["tenants"]["limits"]["globex"] = {"models": ["small", "support-rag"]}
        cfg["tenants"]["limits"]["acme"] = {"tokensPerMinute": BUDGET, "requestsPerMinute": 10**6}
        cfg["tenants"]["limits"]["tiny"]["maxPromptTokens"] = 8

    store = PgVectorStore.connect(postgres.conninfo)
    try:
        yield Env(make_gateway(mutate), s3, sqs, bucket, queue, dlq, postgres.conninfo, embedder.plain())
    finally:
        for (name,) in store.connection.execute("SELECT name FROM rag_collections").fetchall():
            store.drop_collection(name)
        for key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]:
            s3.delete_object(Bucket=bucket, Key=key)
        store.close()


@pytest.fixture
def handbook(env):
    assert env.http("POST", "/v1/collections", json={"name": "handbook"}).status_code == 201
    r = env.add(DOCS)
    assert r.status_code == 202, r.text
    env.ingest()
    return env


# --- collections, documents, queries --------------------------------------------------------------------------------

def test_create_a_collection_with_the_embedding_models_dimensions(env):
    r = env.http("POST", "/v1/collections", json={"name": "handbook"})
    assert r.status_code == 201
    assert r.json() == {"object": "collection", "name": "handbook", "dimensions": 384, "distance": "cosine",
                        "embedding_model": "minilm", "backend": "pgvector"}
    assert env.http("POST", "/v1/collections", "globex", json={"name": "handbook"}).status_code == 200
    r = env.http("POST", "/v1/collections", json={"name": "handbook", "distance": "l2"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "collection_exists"
    assert "exists with dimensions 384 and distance 'cosine'" in r.json()["error"]["message"]


def test_documents_are_queued_one_message_each_then_ingested_and_queried(env):
    env.http("POST", "/v1/collections", json={"name": "handbook"})
    r = env.add(DOCS)
    assert r.status_code == 202
    data = r.json()["data"]
    assert [d["id"] for d in data] == ["leave", "laptop", "expenses"] and all(d["status"] == "queued" for d in data)
    assert env.depth() == 3
    single = env.http("POST", "/v1/collections/handbook/documents", json={"text": "An id is made up."})
    assert single.status_code == 202 and single.json()["data"][0]["id"].startswith("doc-")
    env.ingest()
    assert env.depth() == 0
    got = env.http("GET", "/v1/collections/handbook").json()
    assert got["chunks"] == 4 and got["dimensions"] == 384
    r = env.http("POST", "/v1/collections/handbook/query", json={"query": "How many vacation days do I get?",
                                                                 "top_k": 2})
    assert r.status_code == 200, r.text
    hits = r.json()["data"]
    assert hits[0]["document_id"] == "leave" and hits[0]["metadata"] == {"team": "hr", "year": 2025}
    assert hits[0]["distance"] <= hits[1]["distance"]
    r = env.http("POST", "/v1/collections/handbook/query", json={"query": "vacation", "filter": {"year": 2024}})
    assert [h["document_id"] for h in r.json()["data"]] == ["laptop"]
    vec = env.embedder.embed("reimbursement of travel costs").tolist()
    r = env.http("POST", "/v1/collections/handbook/query", json={"vector": vec, "top_k": 1})
    assert r.json()["data"][0]["document_id"] == "expenses"


def test_re_ingesting_replaces_and_deleting_removes_a_document(handbook):
    env = handbook
    env.add([{"id": "leave", "text": "Employees now get thirty days of paid vacation leave."}])
    env.ingest()
    hits = env.http("POST", "/v1/collections/handbook/query", json={"query": "vacation days", "top_k": 5}).json()
    leave = [h for h in hits["data"] if h["document_id"] == "leave"]
    assert [h["text"] for h in leave] == ["Employees now get thirty days of paid vacation leave."]
    r = env.http("DELETE", "/v1/collections/handbook/documents/leave")
    assert r.status_code == 200 and r.json() == {"object": "collection.document.deleted", "id": "leave",
                                                 "deleted": True, "chunks": 1}
    assert env.http("GET", "/v1/collections/handbook").json()["chunks"] == 2
    assert env.http("DELETE", "/v1/collections/handbook/documents/leave").status_code == 404


def test_a_delete_before_ingestion_leaves_nothing_behind(env):
    env.http("POST", "/v1/collections", json={"name": "handbook"})
    env.add(DOCS[:1])
    assert env.http("DELETE", "/v1/collections/handbook/documents/leave").json()["chunks"] == 0
    env.ingest()  # the queued message finds no document
    assert env.http("GET", "/v1/collections/handbook").json()["chunks"] == 0


# --- RAG routes ---------------------------------------------------------------------------------------------------

def test_a_rag_route_puts_numbered_sources_into_the_prompt_through_the_openai_sdk(handbook, stubs):
    env = handbook
    stub = stubs["a"].state
    out = env.sdk().chat.completions.create(model="support-rag", max_tokens=16,
                                            messages=[{"role": "system", "content": "Be brief."},
                                                      {"role": "user", "content": "How many vacation days?"}])
    assert out.choices[0].message.content
    sent = stub.last_body["messages"]
    assert sent[0]["role"] == "system" and sent[1:] == [{"role": "system", "content": "Be brief."},
                                                        {"role": "user", "content": "How many vacation days?"}]
    prompt = sent[0]["content"]
    assert prompt.startswith("Answer the user's question from the numbered sources below.")
    assert "[1] (document leave) Employees get twenty five days of paid vacation leave every year." in prompt
    assert "[2] (document " in prompt and "[3]" not in prompt, "topK 2"
    assert stub.last_body["model"] == "model-a", "answered by the route's upstream"
    hr = env.sdk().chat.completions.create(model="hr-rag", max_tokens=16,
                                           messages=[{"role": "user", "content": "laptop replacement"}])
    assert hr.choices[0].message.content
    assert "(document leave)" in stub.last_body["messages"][0]["content"]
    assert "(document laptop)" not in stub.last_body["messages"][0]["content"], "the route's filter"
    ids = [m.id for m in env.sdk().models.list().data]
    assert "support-rag" in ids and "hr-rag" in ids


def test_retrieved_chunks_are_cached_until_an_ingest_bumps_the_collection_version(handbook, stubs):
    env = handbook
    hit = lambda: env.gw.metric("gateway_cache_lookups_total", kind="rag", result="hit")
    ask = {"model": "support-rag", "max_tokens": 8, "messages": [{"role": "user", "content": "laptop rules"}]}
    assert env.gw.post(ask).status_code == 200
    assert env.gw.post(ask).status_code == 200
    assert hit() == 1
    env.add([{"id": "laptop", "text": "Laptops are now replaced every two years by the IT service desk."}])
    env.ingest()
    assert env.gw.post(ask).status_code == 200
    assert hit() == 1, "the accepted document bumped the version: a miss"
    assert "every two years" in stubs["a"].state.last_body["messages"][0]["content"], "the new version retrieved"
    assert env.gw.post(ask, key="globex").status_code == 200
    assert hit() == 1, "another tenant never shares an entry"


def test_a_rag_route_without_user_text_is_400_and_a_tenant_without_it_404(handbook):
    env = handbook
    r = env.gw.post({"model": "support-rag", "messages": [{"role": "system", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = env.gw.post({"model": "hr-rag", "messages": [{"role": "user", "content": "hi"}]}, key="globex")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


# --- tenant isolation ---------------------------------------------------------------------------------------------

def test_another_tenant_never_sees_counts_deletes_or_retrieves_the_first_tenants_chunks(handbook, stubs):
    env = handbook
    assert env.http("GET", "/v1/collections/handbook", "globex").json()["chunks"] == 0
    r = env.http("POST", "/v1/collections/handbook/query", "globex", json={"query": "vacation days", "top_k": 10})
    assert r.status_code == 200 and r.json()["data"] == []
    vec = env.embedder.embed("vacation days").tolist()
    assert env.http("POST", "/v1/collections/handbook/query", "globex", json={"vector": vec}).json()["data"] == []
    assert env.http("DELETE", "/v1/collections/handbook/documents/leave", "globex").status_code == 404
    assert env.http("GET", "/v1/collections/handbook").json()["chunks"] == 3
    env.add([{"id": "leave", "text": "Globex staff get ten days of leave."}], tenant="globex")
    env.ingest()
    acme = env.http("POST", "/v1/collections/handbook/query", json={"query": "days of leave", "top_k": 10}).json()
    assert "Globex staff get ten days of leave." not in [h["text"] for h in acme["data"]]
    globex = env.http("POST", "/v1/collections/handbook/query", "globex", json={"query": "leave"}).json()
    assert [h["text"] for h in globex["data"]] == ["Globex staff get ten days of leave."]
    env.sdk("globex").chat.completions.create(model="support-rag", max_tokens=8,
                                              messages=[{"role": "user", "content": "How many vacation days?"}])
    prompt = stubs["a"].state.last_body["messages"][0]["content"]
    assert "Globex staff" in prompt and "twenty five" not in prompt


# --- bad input: clear 4xx, nothing written ------------------------------------------------------------------------

def _nothing_written(env) -> None:
    assert env.depth() == 0 and env.objects() == []


@pytest.mark.parametrize("docs, status, code, words", [
    ([{"id": "a", "text": ""}], 400, "invalid_document", "documents[0].text = '': must be a non-empty string"),
    ([{"id": "a", "text": "fine"}, {"id": "b", "text": 3}], 400, "invalid_document", "documents[1].text = 3"),
    ([{"id": "a", "text": "x", "metadata": {"tags": ["a"]}}], 400, "invalid_document", "documents[0].metadata.tags"),
    ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], 400, "invalid_document",
     "documents[1].id = 'a': appears twice in this request"),
    ([{"id": "a", "text": "x" * (MAX_DOCUMENT_BYTES + 1)}], 413, "document_too_large",
     f"must be at most {MAX_DOCUMENT_BYTES} bytes"),
    ([{"id": "a", "text": "x", "extra": 1}], 400, "invalid_document", "documents[0].extra = 1: unknown field"),
    ([{"text": "x"}] * 6, 400, "too_many_documents", "at most 5 per request"),
    ([], 400, "invalid_value", "'documents' must be a non-empty list"),
])
def test_bad_documents_are_4xx_listing_every_problem_and_nothing_is_written(env, docs, status, code, words):
    env.http("POST", "/v1/collections", json={"name": "handbook"})
    r = env.add(docs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and words in err["message"]
    _nothing_written(env)


def test_an_unknown_collection_is_404_for_documents_queries_and_deletes(env):
    for method, path, body in (("POST", "/v1/collections/nope/documents", {"text": "x"}),
                               ("POST", "/v1/collections/nope/query", {"query": "x"}),
                               ("DELETE", "/v1/collections/nope/documents/a", None),
                               ("GET", "/v1/collections/nope", None)):
        r = env.http(method, path, json=body)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "collection_not_found"
        assert "collection = 'nope': no such collection; create it first" in r.json()["error"]["message"]
    _nothing_written(env)


@pytest.mark.parametrize("body, code, param, words", [
    ({"vector": [0.1, 0.2, 0.3]}, "invalid_dimensions", "vector",
     "vector = '3 numbers': has 3 dimensions; the collection's vectors have 384"),
    ({"query": "x", "filter": {"year": {"$gt": 2020}}}, "invalid_filter", "filter.year", "operators: $in"),
    ({"query": "x", "filter": {"team": ["hr"]}}, "invalid_filter", "filter.team", "filter.team"),
    ({"query": "x", "top_k": 0}, "invalid_query", "top_k", "top_k = 0: must be an integer from 1 to 100"),
    ({"query": "x", "vector": [1.0]}, "invalid_value", "query", "exactly one of 'query'"),
    ({"query": "   "}, "invalid_value", "query", "'query' must be a non-empty string"),
    ({"query": "x", "k": 3}, "unknown_parameter", "k", "Unrecognized field 'k'"),
])
def test_bad_queries_are_400_with_the_stores_message(handbook, body, code, param, words):
    r = handbook.http("POST", "/v1/collections/handbook/query", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (err["code"], err["param"]) == (code, param) and words in err["message"]
    assert err["type"] == "invalid_request_error"


def test_bad_collection_definitions_and_auth(env):
    r = env.http("POST", "/v1/collections", json={"name": "Bad-Name"})
    assert r.status_code == 400 and "name = 'Bad-Name': must match [a-z][a-z0-9_]{0,47}" in r.json()["error"][
        "message"]
    r = env.http("POST", "/v1/collections", json={"name": "ok", "distance": "manhattan"})
    assert r.status_code == 400 and "distance = 'manhattan': must be one of: cosine, l2, dot" in r.text
    r = env.gw.client.get("/v1/collections/handbook")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


# --- the tenant's token budget and maxPromptTokens ------------------------------------------------------------------

def _charged(redis_url: str, tenant: str = "acme") -> float:
    """Tokens the tenant's last reservation took: the token bucket's level after it (acme's refills at once)."""
    import redis

    level = redis.Redis.from_url(redis_url).hget(f"gw:lim:{{{tenant}}}:tpm", "l")
    return BUDGET - float(level) if level is not None else 0.0


def test_accepted_documents_are_charged_their_tokens(env, redis_server):
    env.http("POST", "/v1/collections", json={"name": "handbook"})
    assert _charged(redis_server.url) == 0
    assert env.add(DOCS).status_code == 202
    env.gw.settle()
    assert _charged(redis_server.url) == sum(env.embedder.token_count(d["text"]) for d in DOCS)


def test_query_text_is_charged_when_embedded_and_refunded_when_cached(handbook, redis_server):
    env, text = handbook, "How many vacation days do I get?"
    r = env.http("POST", "/v1/collections/handbook/query", json={"query": text, "top_k": 1})
    assert r.status_code == 200 and r.json()["data"][0]["document_id"] == "leave"
    env.gw.settle()
    assert _charged(redis_server.url) == env.embedder.token_count(text)
    r = env.http("POST", "/v1/collections/handbook/query", json={"query": text, "top_k": 1})
    assert r.status_code == 200
    env.gw.settle()
    assert _charged(redis_server.url) == 0, "the chunks came from the cache: the reservation was given back"


def test_a_rag_routes_retrieval_is_charged_tokens_only_before_the_chat_request(handbook, stubs):
    env, text = handbook, "How many vacation days?"
    limiter = env.gw.gw.limiter
    calls, reserve = [], limiter.reserve

    async def spy(tenant, limits, cost):
        calls.append((tenant, limits.requests_per_minute, cost))
        return await reserve(tenant, limits, cost)

    limiter.reserve = spy
    try:
        r = env.gw.post({"model": "support-rag", "max_tokens": 8, "messages": [{"role": "user", "content": text}]})
    finally:
        limiter.reserve = reserve
    assert r.status_code == 200, r.text
    assert calls[0] == ("acme", None, env.embedder.token_count(text)), "the query text: tokens, no request"
    assert len(calls) == 2 and calls[1][:2] == ("acme", 10**6), "then the chat request, counted as one request"


def test_documents_above_the_whole_token_budget_are_400_and_nothing_is_written(env, redis_server):
    env.http("POST", "/v1/collections", json={"name": "handbook"}, tenant="tiny")
    text = "word " * 1100
    n = env.embedder.token_count(text)
    r = env.http("POST", "/v1/collections/handbook/documents", "tiny", json={"id": "big", "text": text})
    assert r.status_code == 400 and r.json()["error"] == {
        "message": f"This request has {n} document tokens, more than this API key's budget of 1000 tokens per "
                   "minute; send fewer or smaller documents per request.", "type": "invalid_request_error",
        "param": "text", "code": "exceeds_token_budget"}
    _nothing_written(env)


def test_max_prompt_tokens_applies_to_query_text_and_rag_retrieval_before_anything_is_reserved(handbook,
                                                                                               redis_server):
    env, text = handbook, "How many days of paid vacation leave do employees get?"
    n = env.embedder.token_count(text)
    assert n > 8
    r = env.http("POST", "/v1/collections/handbook/query", "tiny", json={"query": text})
    assert r.status_code == 400 and r.json()["error"] == {
        "message": f"'query' has {n} tokens, above this API key's limit of 8 tokens per text (maxPromptTokens); "
                   "send a shorter query.", "type": "invalid_request_error", "param": "query",
        "code": "context_length_exceeded"}
    r = env.gw.post({"model": "support-rag", "messages": [{"role": "user", "content": text}]}, key="tiny")
    assert r.status_code == 400 and r.json()["error"] == {
        "message": f"The last user message has {n} tokens, above this API key's limit of 8 tokens per text "
                   "(maxPromptTokens); send a shorter last user message.", "type": "invalid_request_error",
        "param": "messages", "code": "context_length_exceeded"}
    import redis

    assert redis.Redis.from_url(redis_server.url).keys("gw:lim:{tiny}:*") == [], "nothing reserved"
    assert env.http("POST", "/v1/collections/handbook/query", "tiny", json={"query": "vacation"}).status_code == 200


def test_query_text_the_model_cannot_take_names_the_models_limit(handbook):
    text = "word " * 300
    r = handbook.http("POST", "/v1/collections/handbook/query", json={"query": text})
    assert r.status_code == 400 and r.json()["error"]["message"] == (
        f"'query' has {handbook.embedder.token_count(text)} tokens, above the limit of 256 tokens of model 'minilm'; "
        "send a shorter query.")


# --- reads on the reader endpoint ---------------------------------------------------------------------------------

def test_reads_go_to_the_reader_and_writes_stay_on_the_writer(handbook, postgres):
    """The reader connections are read-only, so the collection created and the document deleted below could only
    have been written on the writer; the lookups and queries open connections on the reader."""
    env = handbook
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        readers = lambda: conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                       (READER_APP,)).fetchone()[0]
        assert readers() == 0, "creating the collection and accepting documents read nothing on the reader"
        assert env.http("GET", "/v1/collections/handbook").json()["chunks"] == 3
        r = env.http("POST", "/v1/collections/handbook/query", json={"query": "laptop", "top_k": 1})
        assert r.status_code == 200 and r.json()["data"][0]["document_id"] == "laptop"
        assert readers() >= 1
        assert env.http("DELETE", "/v1/collections/handbook/documents/laptop").status_code == 200
        assert env.http("POST", "/v1/collections", json={"name": "second"}).status_code == 201
        assert env.http("GET", "/v1/collections/handbook").json()["chunks"] == 2


def test_reads_default_to_the_writer_and_a_reader_host_keeps_the_writers_credentials():
    from serving.gateway.rag_api import reader_settings
    from serving.rag.connect import StoreSettings

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rag-AbCdEf"
    store = {"host": "db.cluster-x.us-east-1.rds.amazonaws.com", "secretArn": arn, "region": "us-east-1"}
    assert reader_settings(parse_config(_cfg({"store": store})).rag.store) is None
    reader = "db.cluster-ro-x.us-east-1.rds.amazonaws.com"
    got = reader_settings(parse_config(_cfg({"store": {**store, "readerHost": reader}})).rag.store)
    assert got == StoreSettings(host=reader, secret_arn=arn, region="us-east-1")
    dsn = {"dsnEnv": "W", "readerDsnEnv": "R"}
    assert reader_settings(parse_config(_cfg({"store": dsn})).rag.store, {"R": "host=r"}) == StoreSettings(
        dsn="host=r")


# --- config -------------------------------------------------------------------------------------------------------

def _cfg(rag: dict, embeddings: dict | None = None) -> dict:
    cfg = base_config("redis://127.0.0.1:6379/0", {})
    cfg["upstreams"] = {"a": {"kind": "openai", "baseUrl": "http://a:8000/v1", "model": "m"}}
    cfg["routes"] = {"small": {"targets": [{"upstream": "a"}]}}
    cfg["embeddings"] = embeddings or {"enabled": True, "models": {"minilm": {"kind": "local"}}}
    cfg["rag"] = rag
    return cfg


@pytest.mark.parametrize("rag, words", [
    ({"enabled": True}, ["rag.bucket: required when rag.enabled is true",
                         "rag.queueUrl: required", "rag.embeddingModel: required",
                         "rag.store.host: required for kind pgvector unless dsnEnv is set"]),
    ({"embeddingModel": "bge"}, [("rag.embeddingModel = 'bge': not a name of embeddings.models; expected one of: "
                                  "minilm")]),
    ({"store": {"host": "db"}}, ["rag.store.secretArn: required with host unless iamAuth is true"]),
    ({"store": {"host": "db", "iamAuth": True}}, ["rag.store.user: required when iamAuth is true"]),
    ({"chunk": {"maxTokens": 64, "overlapTokens": 40}},
     ["rag.chunk.overlapTokens = 40: must be at most half of maxTokens (32)"]),
    ({"routes": {"small": {"route": "small", "collection": "handbook"}}},
     ["rag.routes.small = 'small': a RAG route needs a name of its own"]),
    ({"routes": {"x-rag": {"route": "nope", "collection": "Hand Book"}}},
     ["rag.routes.x-rag.route = 'nope': unknown route; expected one of: small",
      "rag.routes.x-rag.collection = 'Hand Book': a collection name"]),
    ({"routes": {"x-rag": {"route": "small", "collection": "c", "filter": {"y": {"$gt": 1}}}}},
     ["rag.routes.x-rag.filter.y"]),
    ({"store": {"dsnEnv": "W", "readerHost": "r"}},
     ["rag.store.readerHost = 'r': needs kind pgvector with host (the writer endpoint) and no dsnEnv; with dsnEnv "
      "set readerDsnEnv"]),
    ({"store": {"kind": "qdrant", "url": "http://q:6333", "readerHost": "r", "readerDsnEnv": "R"}},
     ["rag.store.readerHost = 'r': needs kind pgvector",
      "rag.store.readerDsnEnv = 'R': needs kind pgvector with dsnEnv (the writer's connection string)"]),
    ({"store": {"host": "db", "iamAuth": True, "user": "u", "readerDsnEnv": "R"}},
     ["rag.store.readerDsnEnv = 'R': needs kind pgvector with dsnEnv (the writer's connection string)"]),
])
def test_rag_config_errors_name_every_problem(rag, words):
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg(rag))
    for w in words:
        assert w in str(err.value)


def test_a_tenants_models_may_name_rag_routes():
    cfg = _cfg({"routes": {"x-rag": {"route": "small", "collection": "c"}}})
    cfg["tenants"]["limits"]["acme"] = {"models": ["x-rag"]}
    assert parse_config(cfg).rag.routes["x-rag"].top_k == 4
    cfg["tenants"]["limits"]["acme"] = {"models": ["y-rag"]}
    with pytest.raises(ConfigError, match="tenants.limits.acme.models"):
        parse_config(cfg)


def test_the_aws_document_object_and_message_follow_the_contract(env):
    env.http("POST", "/v1/collections", json={"name": "handbook"})
    env.add([{"id": "a/b", "text": "Slash in an id.", "metadata": {"k": "v"}}])
    (key,) = env.objects()
    assert key == "rag/docs/acme/handbook/a%2Fb.json"
    obj = env.s3.get_object(Bucket=env.bucket, Key=key)
    doc = json.loads(obj["Body"].read())
    assert doc["text"] == "Slash in an id." and doc["metadata"] == {"k": "v"}
    assert obj["Metadata"]["version"] == doc["version"]
    (msg,) = env.sqs.receive_message(QueueUrl=env.queue)["Messages"]
    assert json.loads(msg["Body"]) == {"tenant": "acme", "collection": "handbook", "documentId": "a/b", "key": key,
                                       "version": doc["version"]}


# --- failures and the template -------------------------------------------------------------------------------------

def test_storage_failures_answer_503_and_queue_nothing(env):
    env.http("POST", "/v1/collections", json={"name": "handbook"})
    api = env.gw.gw.rag_api

    class Broken:
        def put_object(self, **kw):
            raise ConnectionError("S3 unreachable")

    good, api.s3 = api.s3, Broken()
    try:
        r = env.add(DOCS[:1])
    finally:
        api.s3 = good
    assert r.status_code == 503 and r.json()["error"]["code"] == "document_storage_unavailable"
    assert r.headers["retry-after"] == "2" and env.depth() == 0
    factories = api._store_factory, api._reader_factory
    for store in api._stores:  # every connection lost, and the database refuses new ones
        store.close()
    api._store_factory = api._reader_factory = lambda: (_ for _ in ()).throw(OSError("database down"))
    try:
        r = env.http("POST", "/v1/collections/handbook/query", json={"query": "x"})
    finally:
        api._store_factory, api._reader_factory = factories
    assert r.status_code == 503 and r.json()["error"]["code"] == "vector_store_unavailable"
    assert env.http("GET", "/v1/collections/handbook").status_code == 200, "reconnected once it is back"


def test_the_default_template_and_the_last_user_turn():
    from serving.gateway.rag_api import last_user_text, render_template

    assert render_template([]).endswith("Sources:\n(no sources found)")
    msg = render_template([{"document_id": "a", "text": "One."}, {"document_id": "b", "text": "Two."}])
    assert msg.endswith("Sources:\n[1] (document a) One.\n[2] (document b) Two.")
    assert last_user_text([{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"},
                           {"role": "user", "content": [{"type": "text", "text": "last"},
                                                        {"type": "text", "text": "part"}]}]) == "last\npart"
    assert last_user_text([{"role": "system", "content": "s"}]) is None


def test_a_rag_request_with_its_own_mistake_is_refused_before_the_paid_retrieval(handbook):
    """``max_tokens`` above the answering route's limit is the client's mistake: 400 before the query text is embedded and charged."""
    env = handbook
    limiter = env.gw.gw.limiter
    calls, reserve = [], limiter.reserve

    async def spy(tenant, limits, cost):
        calls.append((tenant, cost))
        return await reserve(tenant, limits, cost)

    limiter.reserve = spy
    try:
        r = env.gw.post({"model": "support-rag", "max_tokens": 10**6,
                         "messages": [{"role": "user", "content": "How many vacation days?"}]})
        assert r.status_code == 400 and r.json()["error"]["code"] == "max_tokens_exceeded", r.text
    finally:
        limiter.reserve = reserve
    assert calls == [], "nothing embedded, reserved or charged"
