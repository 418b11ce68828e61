"""QdrantStore specifics, on qdrant-client's local mode (``QdrantClient(":memory:")``): local mode has no shards,
replicas or payload indexes, so these tests check the calls the store makes for them (a recording client) and the
filters it builds; the shared behaviour (documents, filters, isolation, errors) is in test_store.py."""

from __future__ import annotations

from qdrant_client import QdrantClient, models

from serving.rag.filters import Condition
from serving.rag.qdrant import QdrantStore, point_id
from serving.rag.store import Chunk


class RecordingClient(QdrantClient):
    """Local mode, recording the collection and payload-index calls."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.calls: list[tuple[str, tuple, dict]] = []

    def create_collection(self, *args, **kwargs):
        self.calls.append(("create_collection", args, kwargs))
        return super().create_collection(*args, **kwargs)

    def create_payload_index(self, *args, **kwargs):
        self.calls.append(("create_payload_index", args, kwargs))
        return super().create_payload_index(*args, **kwargs)


def test_collections_get_shards_and_replicas_from_the_arguments_and_a_tenant_payload_index():
    client = RecordingClient()
    QdrantStore(client, shard_number=3, replication_factor=2).create_collection("docs", 384, "dot")
    (_, args, kwargs), *indexes = client.calls
    assert args == ("docs",)
    assert kwargs["shard_number"] == 3 and kwargs["replication_factor"] == 2
    assert kwargs["vectors_config"] == models.VectorParams(size=384, distance=models.Distance.DOT)
    tenant = next(k for _, a, k in indexes if a[1] == "tenant")["field_schema"]
    assert tenant == models.KeywordIndexParams(type="keyword", is_tenant=True)
    assert [a[1] for _, a, _ in indexes] == ["tenant", "document_id"]


def test_every_query_filter_starts_with_the_tenant_condition():
    f = QdrantStore.query_filter("acme", [Condition("lang", ("en",)), Condition("year", (2024, 2025)),
                                          Condition("score", (0.5,)), Condition("mixed", ("a", 1, True))])
    tenant, lang, year, score, mixed = f.must
    assert tenant == models.FieldCondition(key="tenant", match=models.MatchValue(value="acme"))
    assert lang == models.FieldCondition(key="metadata.lang", match=models.MatchValue(value="en"))
    assert year == models.FieldCondition(key="metadata.year", match=models.MatchAny(any=[2024, 2025]))
    assert score == models.FieldCondition(key="metadata.score", range=models.Range(gte=0.5, lte=0.5))
    assert isinstance(mixed, models.Filter) and len(mixed.should) == 3
    assert QdrantStore.query_filter("acme", []).must == [tenant]


def test_point_ids_are_stable_and_differ_by_tenant_document_and_chunk():
    assert point_id("a", "d", 0) == point_id("a", "d", 0)
    assert len({point_id("a", "d", 0), point_id("b", "d", 0), point_id("a", "e", 0), point_id("a", "d", 1)}) == 4


def test_reingest_overwrites_the_same_points_and_drops_the_old_tail(qdrant_store):
    qdrant_store.create_collection("docs", 2)
    qdrant_store.upsert_document("docs", "t", "d", [Chunk(f"old{i}", [1.0, float(i)]) for i in range(3)])
    qdrant_store.upsert_document("docs", "t", "d", [Chunk("new0", [1.0, 0.0])])
    points, _ = qdrant_store.client.scroll("docs", with_payload=True)
    assert [(str(p.id), p.payload["text"]) for p in points] == [(point_id("t", "d", 0), "new0")]
