"""The behaviour both vector-store backends share: collections, idempotent document replacement, deletes, metadata
filters, tenant isolation and every typed error with its message. PostgreSQL is a real server with pgvector (the
session fixture); Qdrant runs in qdrant-client's local mode (conftest.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serving.rag.errors import (
    CollectionExists,
    DimensionMismatch,
    InvalidDocument,
    InvalidFilter,
    InvalidQuery,
    InvalidRequest,
    UnknownCollection,
    VectorStoreError,
)
from serving.rag.store import LIMITS, Chunk, Hit

D = 4


def unit(*xs: float) -> list[float]:
    v = np.array(xs, dtype=float)
    return (v / np.linalg.norm(v)).tolist()


def doc(*texts: str, meta: dict | None = None) -> list[Chunk]:
    """Chunks whose embeddings point along successive axes (chunk i is nearest to axis i % D)."""
    return [Chunk(t, unit(*[1.0 if j == i % D else 0.05 for j in range(D)]), dict(meta or {}))
            for i, t in enumerate(texts)]


@pytest.fixture
def docs(store):
    store.create_collection("docs", D)
    return store


def texts(hits: list[Hit]) -> list[str]:
    return [h.text for h in hits]


# -- collections -----------------------------------------------------------------------------------------------------

def test_create_and_describe_a_collection(store):
    info = store.create_collection("docs", D, "l2")
    assert (info.name, info.dimensions, info.distance, info.backend) == ("docs", D, "l2", store.backend)
    assert store.describe_collection("docs") == info


def test_create_with_exist_ok_returns_the_same_collection_and_rejects_a_different_one(docs):
    assert docs.create_collection("docs", D, exist_ok=True).dimensions == D
    with pytest.raises(CollectionExists) as err:
        docs.create_collection("docs", D)
    assert "docs': collection exists; choose another name or pass exist_ok" in str(err.value)
    assert err.value.status == 409
    with pytest.raises(CollectionExists, match=r"exists with dimensions 4 and distance 'cosine'"):
        docs.create_collection("docs", 8, exist_ok=True)


def test_a_bad_collection_definition_lists_every_problem(store):
    with pytest.raises(InvalidQuery) as err:
        store.create_collection("Bad-Name", 0, "hamming")
    assert str(err.value) == (
        "invalid query: 3 problems\n"
        "  - name = 'Bad-Name': must match [a-z][a-z0-9_]{0,47}\n"
        "  - dimensions = 0: must be an integer from 1 to 2000\n"
        "  - distance = 'hamming': must be one of: cosine, l2, dot")
    with pytest.raises(InvalidQuery, match=r"dimensions = 2001: must be an integer from 1 to 2000"):
        store.create_collection("big", 2001)


def test_unknown_collection_is_a_404_on_every_call(store):
    calls = [lambda: store.describe_collection("nope"), lambda: store.drop_collection("nope"),
             lambda: store.upsert_document("nope", "t", "d", doc("a")),
             lambda: store.delete_document("nope", "t", "d"), lambda: store.count("nope", "t"),
             lambda: store.query("nope", "t", unit(1, 0, 0, 0))]
    for call in calls:
        with pytest.raises(UnknownCollection) as err:
            call()
        assert str(err.value) == "unknown collection: 1 problem\n  - collection = 'nope': no such collection; " \
                                 "create it first"
        assert err.value.status == 404


def test_drop_collection_removes_it(docs):
    docs.upsert_document("docs", "t", "d", doc("a"))
    docs.drop_collection("docs")
    with pytest.raises(UnknownCollection):
        docs.query("docs", "t", unit(1, 0, 0, 0))


def test_distances_are_smaller_for_closer_vectors_on_every_metric(store):
    for name, distance in (("c", "cosine"), ("e", "l2"), ("p", "dot")):
        store.create_collection(name, 2, distance)
        store.upsert_document(name, "t", "d", [Chunk("near", [1.0, 0.1]), Chunk("far", [-1.0, 0.5])])
        hits = store.query(name, "t", [1.0, 0.0], 2)
        assert [h.text for h in hits] == ["near", "far"] and hits[0].distance < hits[1].distance, distance


# -- documents -------------------------------------------------------------------------------------------------------

def test_upsert_then_query_returns_the_nearest_chunks_first(docs):
    assert docs.upsert_document("docs", "t", "d1", doc("x0", "x1", "x2", "x3")) == 4
    hits = docs.query("docs", "t", unit(0, 1, 0, 0), top_k=2)
    assert len(hits) == 2 and hits[0].text == "x1"  # the other three are equally far
    assert hits[0].document_id == "d1" and hits[0].chunk_index == 1
    assert hits[0].distance < hits[1].distance
    assert math.isclose(hits[0].distance, 1 - float(np.dot(unit(0, 1, 0, 0), doc("", "x1")[1].embedding)),
                        abs_tol=1e-5)


def test_reingesting_a_document_replaces_all_its_chunks(docs):
    docs.upsert_document("docs", "t", "d1", doc("old0", "old1", "old2"))
    docs.upsert_document("docs", "t", "d1", doc("new0"))
    assert docs.count("docs", "t") == 1
    assert texts(docs.query("docs", "t", unit(1, 0, 0, 0), top_k=10)) == ["new0"]
    docs.upsert_document("docs", "t", "d1", doc("new0"))  # idempotent
    assert docs.count("docs", "t") == 1


def test_delete_document_removes_only_that_document(docs):
    docs.upsert_document("docs", "t", "d1", doc("a0", "a1"))
    docs.upsert_document("docs", "t", "d2", doc("b0"))
    assert docs.delete_document("docs", "t", "d1") == 2
    assert docs.delete_document("docs", "t", "d1") == 0
    assert texts(docs.query("docs", "t", unit(1, 0, 0, 0))) == ["b0"]


def test_metadata_filters_equality_and_in_on_strings_numbers_and_booleans(docs):
    docs.upsert_document("docs", "t", "en", doc("en", meta={"lang": "en", "year": 2024, "draft": False}))
    docs.upsert_document("docs", "t", "de", doc("de", meta={"lang": "de", "year": 2025, "draft": True}))
    docs.upsert_document("docs", "t", "fr", doc("fr", meta={"lang": "fr", "year": 2023, "score": 0.5}))
    q = unit(1, 0, 0, 0)

    def where(f):
        return sorted(texts(docs.query("docs", "t", q, 10, f)))

    assert where({"lang": "de"}) == ["de"]
    assert where({"lang": {"$in": ["de", "fr"]}}) == ["de", "fr"]
    assert where({"year": 2024}) == ["en"]
    assert where({"year": {"$in": [2023, 2025]}}) == ["de", "fr"]
    assert where({"draft": True}) == ["de"]
    assert where({"draft": False, "lang": "en"}) == ["en"]
    assert where({"score": 0.5}) == ["fr"]
    assert where({"lang": "de", "year": 2024}) == []
    assert where({"missing": "x"}) == []
    assert where({}) == ["de", "en", "fr"]


def test_a_boolean_filter_never_matches_a_number_and_a_number_never_a_boolean(docs):
    docs.upsert_document("docs", "t", "one", doc("one", meta={"flag": 1}))
    docs.upsert_document("docs", "t", "true", doc("true", meta={"flag": True}))
    q = unit(1, 0, 0, 0)
    assert texts(docs.query("docs", "t", q, 10, {"flag": True})) == ["true"]
    assert texts(docs.query("docs", "t", q, 10, {"flag": 1})) == ["one"]


def test_filter_size_limits(docs):
    q = unit(1, 0, 0, 0)
    with pytest.raises(InvalidFilter, match=r"filter = '17 keys': must test at most 16 keys"):
        docs.query("docs", "t", q, 5, {f"k{i}": i for i in range(17)})
    with pytest.raises(InvalidFilter, match=r"filter.k.\$in = '101 values': must hold at most 100 values"):
        docs.query("docs", "t", q, 5, {"k": {"$in": list(range(101))}})
    with pytest.raises(InvalidFilter, match=r"filter.k = 'xxx.*must be at most 1024 characters \(got 1025\)"):
        docs.query("docs", "t", q, 5, {"k": "x" * 1025})
    with pytest.raises(InvalidFilter, match=r"filter.k = inf: must be a finite number"):
        docs.query("docs", "t", q, 5, {"k": float("inf")})


# -- tenant isolation ------------------------------------------------------------------------------------------------

def test_one_tenant_never_sees_counts_replaces_or_deletes_another_tenants_chunks(docs):
    docs.upsert_document("docs", "acme", "same-id", doc("acme secret", meta={"lang": "en"}))
    docs.upsert_document("docs", "globex", "same-id", doc("globex 0", "globex 1", meta={"lang": "en"}))
    q = unit(1, 0, 0, 0)
    assert texts(docs.query("docs", "acme", q, 100)) == ["acme secret"]
    assert texts(docs.query("docs", "acme", q, 100, {"lang": "en"})) == ["acme secret"]
    assert "acme secret" not in texts(docs.query("docs", "globex", q, 100))
    assert docs.query("docs", "initech", q, 100) == []
    assert (docs.count("docs", "acme"), docs.count("docs", "globex")) == (1, 2)
    docs.upsert_document("docs", "globex", "same-id", doc("globex new"))  # same document id, other tenant
    assert texts(docs.query("docs", "acme", q, 100)) == ["acme secret"]
    assert docs.delete_document("docs", "globex", "same-id") == 1
    assert docs.count("docs", "acme") == 1


# -- errors ----------------------------------------------------------------------------------------------------------

def test_wrong_vector_dimensions_name_the_bad_length_and_the_expected_one(docs):
    with pytest.raises(DimensionMismatch) as err:
        docs.query("docs", "t", [0.1, 0.2, 0.3])
    assert str(err.value) == ("wrong vector dimensions: 1 problem\n"
                              "  - vector = '3 numbers': has 3 dimensions; the collection's vectors have 4")
    assert err.value.status == 400
    with pytest.raises(DimensionMismatch) as err:
        docs.upsert_document("docs", "t", "d", [Chunk("a", [1.0] * D), Chunk("b", [1.0] * 5)])
    assert "chunks[1].embedding = '5 numbers': has 5 dimensions; the collection's vectors have 4" in str(err.value)
    assert docs.count("docs", "t") == 0  # nothing written


def test_empty_and_oversized_documents_are_rejected_before_anything_is_written(docs):
    docs.upsert_document("docs", "t", "d", doc("keep"))
    with pytest.raises(InvalidDocument) as err:
        docs.upsert_document("docs", "t", "d", [])
    assert str(err.value) == ("invalid document: 1 problem\n  - chunks = []: must hold at least one chunk "
                              "(delete a document to remove it)")
    too_many = [Chunk("x", [1.0] * D)] * (LIMITS.max_chunks_per_document + 1)
    with pytest.raises(InvalidDocument, match=r"chunks = '4097 chunks': must hold at most 4096 chunks"):
        docs.upsert_document("docs", "t", "d", too_many)
    with pytest.raises(InvalidDocument) as err:
        docs.upsert_document("docs", "t", "d", [Chunk("x" * (LIMITS.max_chunk_chars + 1), [1.0] * D),
                                                Chunk("  ", [1.0] * D)])
    assert "chunks[0].text = 'xxx" in str(err.value)
    assert "must be at most 32768 characters (got 32769)" in str(err.value)
    assert "chunks[1].text = '  ': must be a non-empty string" in str(err.value)
    assert texts(docs.query("docs", "t", unit(1, 0, 0, 0))) == ["keep"]


def test_bad_ids_text_and_metadata_list_every_problem(docs):
    bad = [Chunk("a\x00b", [1.0, float("nan"), 0, 0], {"ok": 1, "nested": {"a": 1}, "bad key": 1, "none": None}),
           "not a chunk"]
    with pytest.raises(InvalidDocument) as err:
        docs.upsert_document("docs", "", "d\n1", bad)
    assert str(err.value) == (
        "invalid document: 8 problems\n"
        "  - tenant = '': must be a string of 1-256 characters without control characters\n"
        "  - document_id = 'd\\n1': must be a string of 1-256 characters without control characters\n"
        "  - chunks[0].text = 'a\\x00b': must not contain NUL characters\n"
        "  - chunks[0].embedding[1] = nan: must be a finite number\n"
        "  - chunks[0].metadata.nested = {'a': 1}: must be a string, a number or a boolean (got dict)\n"
        "  - chunks[0].metadata.bad key = 'bad key': key must match [A-Za-z_][A-Za-z0-9_-]{0,63}\n"
        "  - chunks[0].metadata.none = None: must be a string, a number or a boolean (got null)\n"
        "  - chunks[1] = 'not a chunk': must be a Chunk(text, embedding, metadata)")


def test_bad_filters_name_the_key_path_and_the_value(docs):
    q = unit(1, 0, 0, 0)
    with pytest.raises(InvalidFilter) as err:
        docs.query("docs", "t", q, 5, {"lang": ["en"], "year": {"$gt": 2020}, "draft": None, "n": {"$in": []},
                                       "tags": {"$in": ["a", {"b": 1}]}, "bad key": 1})
    assert str(err.value) == (
        "invalid metadata filter: 6 problems\n"
        "  - filter.lang = ['en']: a list needs the $in operator: {\"$in\": [...]}\n"
        "  - filter.year = {'$gt': 2020}: an operator object must be exactly {\"$in\": [...]} (operators: $in)\n"
        "  - filter.draft = None: must be a string, a number or a boolean (got null)\n"
        "  - filter.n.$in = []: must hold at least one value\n"
        "  - filter.tags.$in[1] = {'b': 1}: must be a string, a number or a boolean (got dict)\n"
        "  - filter.bad key = 'bad key': key must match [A-Za-z_][A-Za-z0-9_-]{0,63}")
    assert err.value.status == 400
    with pytest.raises(InvalidFilter, match=r"filter = 'lang=en': must be an object of metadata key"):
        docs.query("docs", "t", q, 5, "lang=en")


@pytest.mark.parametrize("top_k", [0, -1, 101, 2.5, True, "10", None])
def test_bad_top_k(docs, top_k):
    with pytest.raises(InvalidQuery) as err:
        docs.query("docs", "t", unit(1, 0, 0, 0), top_k)
    assert str(err.value) == f"invalid query: 1 problem\n  - top_k = {top_k!r}: must be an integer from 1 to 100"


def test_bad_ef_search(docs):
    with pytest.raises(InvalidQuery, match=r"ef_search = 0: must be an integer from 1 to 1000"):
        docs.query("docs", "t", unit(1, 0, 0, 0), 5, ef_search=0)


def test_problems_of_several_kinds_raise_the_common_base_with_all_of_them(docs):
    with pytest.raises(InvalidRequest) as err:
        docs.query("docs", "", [1.0], 0, {"x": None})
    assert type(err.value) is InvalidRequest
    assert isinstance(err.value, VectorStoreError) and err.value.status == 400
    assert [p.path for p in err.value.problems] == ["tenant", "vector", "top_k", "filter.x"]
