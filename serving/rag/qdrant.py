"""QdrantStore: the vector store on Qdrant (qdrant-client), the opt-in backend for high query rates.

Layout: one Qdrant collection per collection, one point per chunk. A point's id is a UUID derived from (tenant,
document id, chunk index), its payload ``{"tenant", "document_id", "chunk_index", "text", "metadata": {...}}``. The
``tenant`` payload field has a keyword index marked ``is_tenant`` (Qdrant then lays a tenant's points out together),
``document_id`` a keyword index; every query, count and delete carries a ``must`` condition on the tenant.

Collections are created with ``shard_number`` and ``replication_factor`` from the store's arguments (the seed's
cluster: 3 nodes, replication 2). Qdrant's local mode (``QdrantClient(":memory:")``, what the tests use) has no
shards, replicas or payload indexes: it accepts and ignores those settings, so the tests check the calls and the
data path, not the cluster layout (the cluster layout is checked against the pinned Helm chart by the VectorStore
component's tests).

Writes: Qdrant has no multi-statement transactions. :meth:`QdrantStore.upsert_document` validates everything first,
then upserts the new chunks (deterministic ids: re-ingesting overwrites the same points) and deletes the document's
chunks past the new count. A failure between the two leaves extra old tail chunks until the retry, which converges;
there is never a moment with none of the document's chunks.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from problems import Problem

from .errors import CollectionExists, UnknownCollection
from .filters import Condition
from .store import (
    LIMITS,
    Chunk,
    CollectionInfo,
    Distance,
    Hit,
    Limits,
    VectorStore,
    validate_collection,
    validate_document,
    validate_ids,
    validate_query,
)

__all__ = ["QdrantStore"]

_DISTANCE = {"cosine": models.Distance.COSINE, "l2": models.Distance.EUCLID, "dot": models.Distance.DOT}
_FROM_DISTANCE = {v: k for k, v in _DISTANCE.items()}
_NAMESPACE = uuid.UUID("6f1c2b0e-2a0c-4d8e-9a5e-3c1f0b7d9e21")
"""Namespace of the chunk point ids (uuid5 of tenant, document id and chunk index)."""


def point_id(tenant: str, document_id: str, chunk_index: int) -> str:
    """The point id of one chunk: stable, so a re-ingest overwrites the same point."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant}\n{document_id}\n{chunk_index}"))


class QdrantStore(VectorStore):
    """The :class:`~serving.rag.store.VectorStore` on Qdrant. ``shard_number`` and ``replication_factor`` apply to
    the collections this store creates (ignored by local mode); ``hnsw_ef`` is the default query-time ``ef``."""

    backend = "qdrant"

    def __init__(self, client: QdrantClient, *, shard_number: int = 1, replication_factor: int = 1,
                 hnsw_ef: int | None = None, limits: Limits = LIMITS):
        self._client = client
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.hnsw_ef = hnsw_ef
        self.limits = limits

    @property
    def client(self) -> QdrantClient:
        return self._client

    # -- collections ---------------------------------------------------------------------------------------------

    def create_collection(self, name: str, dimensions: int, distance: Distance = "cosine", *,
                          exist_ok: bool = False) -> CollectionInfo:
        validate_collection(name, dimensions, distance, self.limits)
        if self._client.collection_exists(name):
            info = self.describe_collection(name)
            if exist_ok and info.dimensions == dimensions and info.distance == distance:
                return info
            why = "exists" if not exist_ok else \
                f"exists with dimensions {info.dimensions} and distance {info.distance!r}"
            raise CollectionExists([Problem("name", name, f"collection {why}; choose another name"
                                            + ("" if exist_ok else " or pass exist_ok"), code="query")])
        self._client.create_collection(
            name, vectors_config=models.VectorParams(size=dimensions, distance=_DISTANCE[distance]),
            shard_number=self.shard_number, replication_factor=self.replication_factor)
        with warnings.catch_warnings():  # local mode says payload indexes have no effect there: known, documented
            warnings.filterwarnings("ignore", message="Payload indexes have no effect in the local Qdrant")
            self._client.create_payload_index(name, "tenant", field_schema=models.KeywordIndexParams(
                type="keyword", is_tenant=True))
            self._client.create_payload_index(name, "document_id", field_schema=models.PayloadSchemaType.KEYWORD)
        return self.describe_collection(name)

    def describe_collection(self, name: str) -> CollectionInfo:
        if not isinstance(name, str) or not self._client.collection_exists(name):
            raise UnknownCollection([Problem("collection", name, "no such collection; create it first",
                                             code="collection")])
        params = self._client.get_collection(name).config.params
        vectors = params.vectors
        assert isinstance(vectors, models.VectorParams)
        return CollectionInfo(name=name, dimensions=vectors.size, distance=_FROM_DISTANCE[vectors.distance],
                              backend=self.backend,
                              settings={"shard_number": params.shard_number,
                                        "replication_factor": params.replication_factor})

    def drop_collection(self, name: str) -> None:
        self.describe_collection(name)
        self._client.delete_collection(name)

    # -- documents -----------------------------------------------------------------------------------------------

    def upsert_document(self, collection: str, tenant: str, document_id: str, chunks: Sequence[Chunk]) -> int:
        info = self.describe_collection(collection)
        validate_document(tenant, document_id, chunks, info.dimensions, self.limits)
        points = [models.PointStruct(id=point_id(tenant, document_id, i),
                                     vector=[float(x) for x in c.embedding],
                                     payload={"tenant": tenant, "document_id": document_id, "chunk_index": i,
                                              "text": c.text, "metadata": dict(c.metadata)})
                  for i, c in enumerate(chunks)]
        self._client.upsert(collection, points=points, wait=True)
        self._client.delete(collection, points_selector=models.FilterSelector(filter=models.Filter(
            must=[*self._owner(tenant, document_id),
                  models.FieldCondition(key="chunk_index", range=models.Range(gte=len(points)))])), wait=True)
        return len(points)

    def delete_document(self, collection: str, tenant: str, document_id: str) -> int:
        self.describe_collection(collection)
        validate_ids(tenant, document_id)
        selector = models.Filter(must=self._owner(tenant, document_id))
        n = self._client.count(collection, count_filter=selector, exact=True).count
        self._client.delete(collection, points_selector=models.FilterSelector(filter=selector), wait=True)
        return n

    def count(self, collection: str, tenant: str) -> int:
        self.describe_collection(collection)
        validate_ids(tenant)
        return self._client.count(collection, count_filter=models.Filter(must=self._owner(tenant)),
                                  exact=True).count

    @staticmethod
    def _owner(tenant: str, document_id: str | None = None) -> list[models.Condition]:
        must: list[models.Condition] = [models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))]
        if document_id is not None:
            must.append(models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id)))
        return must

    # -- queries -------------------------------------------------------------------------------------------------

    def query(self, collection: str, tenant: str, vector: Sequence[float], top_k: int = 10,
              filter: Mapping[str, Any] | None = None, *, ef_search: int | None = None) -> list[Hit]:
        info = self.describe_collection(collection)
        conditions = validate_query(tenant, vector, top_k, filter, ef_search, info.dimensions, self.limits)
        ef = ef_search or self.hnsw_ef
        found = self._client.query_points(
            collection, query=[float(x) for x in vector], limit=top_k, with_payload=True,
            query_filter=self.query_filter(tenant, conditions),
            search_params=models.SearchParams(hnsw_ef=max(ef, top_k)) if ef else None).points
        return [Hit(document_id=p.payload["document_id"], chunk_index=p.payload["chunk_index"],
                    text=p.payload["text"], metadata=p.payload["metadata"],
                    distance=self._distance(info.distance, p.score)) for p in found]

    @classmethod
    def query_filter(cls, tenant: str, conditions: list[Condition]) -> models.Filter:
        """The Qdrant filter of a query: the tenant condition first, then one condition per metadata key."""
        must: list[models.Condition] = list(cls._owner(tenant))
        for cond in conditions:
            must.append(_condition(f"metadata.{cond.key}", cond.values))
        return models.Filter(must=must)

    @staticmethod
    def _distance(distance: str, score: float) -> float:
        """Qdrant's score as the store's distance (smaller is closer): cosine and dot scores are similarities."""
        if distance == "cosine":
            return 1.0 - score
        if distance == "dot":
            return -score
        return score


def _condition(key: str, values: tuple) -> models.Condition:
    """``key`` equals one of ``values``. Qdrant matches keywords and integers (``MatchAny`` for several), booleans
    with ``MatchValue``, and floats only by range (an equal lower and upper bound); mixed kinds are a ``should``."""
    def one(v: Any) -> models.Condition:
        if isinstance(v, float) and not v.is_integer():
            return models.FieldCondition(key=key, range=models.Range(gte=v, lte=v))
        if isinstance(v, float):
            v = int(v)
        return models.FieldCondition(key=key, match=models.MatchValue(value=v))

    strings = all(isinstance(v, str) for v in values)
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if len(values) > 1 and (strings or ints):
        return models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))
    if len(values) == 1:
        return one(values[0])
    return models.Filter(should=[one(v) for v in values])
