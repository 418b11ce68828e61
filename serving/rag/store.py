"""The vector-store interface the RAG data plane codes against, its records and the validation every backend shares.

Backends: :class:`serving.rag.postgres.PgVectorStore` (PostgreSQL with pgvector, the default: Aurora in AWS) and
:class:`serving.rag.qdrant.QdrantStore` (Qdrant, opt-in for high QPS). Both validate a request completely before
they write anything (:func:`validate_document`, :func:`validate_query`), take the tenant as a required argument of
every data call and put it into every read and write, and raise the typed errors of :mod:`serving.rag.errors`.

The calls are synchronous: a gateway handler runs them in a worker thread (``anyio.to_thread.run_sync``), one store
(one connection) per thread.
"""

from __future__ import annotations

import abc
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from problems import Problem

from .errors import raise_problems
from .filters import KEY_PATTERN, Condition, Scalar, parse_filter, scalar_problem

__all__ = [
    "LIMITS",
    "Chunk",
    "CollectionInfo",
    "Distance",
    "Hit",
    "Limits",
    "VectorStore",
    "validate_collection",
    "validate_document",
    "validate_ids",
    "validate_query",
]

Distance = Literal["cosine", "l2", "dot"]
"""How vectors compare: cosine distance, Euclidean (L2) distance, or negative inner product ("dot")."""
DISTANCES: tuple[str, ...] = ("cosine", "l2", "dot")

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
"""A collection name: it becomes part of a table name (PostgreSQL) or is the collection name (Qdrant)."""
ID_PATTERN = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")
"""A tenant or document id: 1-256 characters, no control characters."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one request, the same on every backend (a request past one is a 4xx, never a partial write)."""

    max_dimensions: int = 2000
    """Largest vector size: pgvector's HNSW index on the ``vector`` type indexes at most 2,000 dimensions."""
    max_chunks_per_document: int = 4096
    """Most chunks one document may have (a 1 MB text in 256-character chunks)."""
    max_chunk_chars: int = 32_768
    """Longest chunk text in characters (far above any embedding model's context of 512-8,192 tokens)."""
    max_metadata_keys: int = 32
    """Most metadata keys on one chunk."""
    max_top_k: int = 100
    """Most results one query may ask for."""
    max_ef_search: int = 1000
    """Largest HNSW search-list size a query may ask for (pgvector's own upper bound)."""


LIMITS = Limits()


@dataclass(frozen=True)
class Chunk:
    """One chunk of a document: its text, its embedding and its metadata (string, number or boolean values)."""

    text: str
    embedding: Sequence[float]
    metadata: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One query result. ``distance`` is the collection's distance (smaller is closer): cosine distance (1 - cosine
    similarity), Euclidean distance, or negative inner product."""

    document_id: str
    chunk_index: int
    text: str
    metadata: dict[str, Scalar]
    distance: float


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection is: its name, vector size and distance, and its backend's index and layout settings."""

    name: str
    dimensions: int
    distance: Distance
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)
    """Backend settings: HNSW ``m``/``ef_construction`` and the table (PostgreSQL), ``shard_number`` and
    ``replication_factor`` (Qdrant)."""


def validate_collection(name: Any, dimensions: Any, distance: Any, limits: Limits = LIMITS) -> None:
    """Raise :class:`~serving.rag.errors.InvalidQuery` listing every bad part of a collection definition."""
    problems: list[Problem] = []
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(Problem("name", name, "must match [a-z][a-z0-9_]{0,47}", code="query"))
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) \
            or not 1 <= dimensions <= limits.max_dimensions:
        problems.append(Problem("dimensions", dimensions,
                                f"must be an integer from 1 to {limits.max_dimensions}", code="query"))
    if distance not in DISTANCES:
        problems.append(Problem("distance", distance, f"must be one of: {', '.join(DISTANCES)}", code="query"))
    raise_problems(problems)


def id_problem(path: str, value: Any) -> Problem | None:
    if isinstance(value, str) and ID_PATTERN.match(value):
        return None
    return Problem(path, value, "must be a string of 1-256 characters without control characters", code="document")


def _vector_problem(path: str, vector: Any, dimensions: int) -> Problem | None:
    """Wrong length (code ``dimensions``, naming both lengths) or a non-number / non-finite entry (``document``)."""
    try:
        n = len(vector)
    except TypeError:
        return Problem(path, vector, f"must be a list of {dimensions} numbers", code="dimensions")
    if isinstance(vector, (str, bytes)):
        return Problem(path, vector, f"must be a list of {dimensions} numbers", code="dimensions")
    if n != dimensions:
        return Problem(path, f"{n} numbers",
                       f"has {n} dimensions; the collection's vectors have {dimensions}", code="dimensions")
    if isinstance(vector, np.ndarray) and vector.dtype.kind == "f" and vector.ndim == 1:
        bad = np.flatnonzero(~np.isfinite(vector))
        return Problem(f"{path}[{bad[0]}]", float(vector[bad[0]]), "must be a finite number",
                       code="document") if bad.size else None
    for i, x in enumerate(vector):
        if isinstance(x, bool) or not isinstance(x, (int, float)) and not hasattr(x, "__float__"):
            return Problem(f"{path}[{i}]", x, "must be a number", code="document")
        if not math.isfinite(float(x)):
            return Problem(f"{path}[{i}]", x, "must be a finite number", code="document")
    return None


def validate_ids(tenant: Any, document_id: Any = None) -> None:
    """Raise :class:`~serving.rag.errors.InvalidDocument` for a bad tenant (or document id, when given)."""
    found = [id_problem("tenant", tenant)]
    if document_id is not None:
        found.append(id_problem("document_id", document_id))
    raise_problems([p for p in found if p])


def validate_document(tenant: Any, document_id: Any, chunks: Any, dimensions: int,
                      limits: Limits = LIMITS) -> None:
    """Raise the typed error listing every problem of one document write (nothing is written before this passes)."""
    problems = [p for p in (id_problem("tenant", tenant), id_problem("document_id", document_id)) if p]
    if not isinstance(chunks, (list, tuple)):
        problems.append(Problem("chunks", chunks, "must be a list of chunks", code="document"))
        raise_problems(problems)
    if not chunks:
        problems.append(Problem("chunks", [], "must hold at least one chunk (delete a document to remove it)",
                                code="document"))
    elif len(chunks) > limits.max_chunks_per_document:
        problems.append(Problem("chunks", f"{len(chunks)} chunks",
                                f"must hold at most {limits.max_chunks_per_document} chunks", code="document"))
        raise_problems(problems)  # do not walk a huge list
    for i, chunk in enumerate(chunks):
        problems += _chunk_problems(f"chunks[{i}]", chunk, dimensions, limits)
    raise_problems(problems)


def _chunk_problems(at: str, chunk: Any, dimensions: int, limits: Limits) -> list[Problem]:
    if not isinstance(chunk, Chunk):
        return [Problem(at, chunk, "must be a Chunk(text, embedding, metadata)", code="document")]
    out: list[Problem] = []
    text = chunk.text
    if not isinstance(text, str) or not text.strip():
        out.append(Problem(f"{at}.text", text, "must be a non-empty string", code="document"))
    elif len(text) > limits.max_chunk_chars:
        out.append(Problem(f"{at}.text", text, f"must be at most {limits.max_chunk_chars} characters "
                                               f"(got {len(text)})", code="document"))
    elif "\x00" in text:
        out.append(Problem(f"{at}.text", text, "must not contain NUL characters", code="document"))
    if (p := _vector_problem(f"{at}.embedding", chunk.embedding, dimensions)) is not None:
        out.append(p)
    meta = chunk.metadata
    if not isinstance(meta, Mapping):
        out.append(Problem(f"{at}.metadata", meta, "must be an object of key to string, number or boolean",
                           code="document"))
        return out
    if len(meta) > limits.max_metadata_keys:
        out.append(Problem(f"{at}.metadata", f"{len(meta)} keys", f"must have at most {limits.max_metadata_keys} "
                                                                   "keys", code="document"))
    for key, value in meta.items():
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            out.append(Problem(f"{at}.metadata.{key}", key, "key must match [A-Za-z_][A-Za-z0-9_-]{0,63}",
                               code="document"))
        elif (p := scalar_problem(f"{at}.metadata.{key}", value, "document")) is not None:
            out.append(p)
    return out


def validate_query(tenant: Any, vector: Any, top_k: Any, filter: Any, ef_search: Any, dimensions: int,
                   limits: Limits = LIMITS) -> list[Condition]:
    """The query's filter conditions, or the typed error listing every problem of the query."""
    problems = [p for p in (id_problem("tenant", tenant),) if p]
    if (p := _vector_problem("vector", vector, dimensions)) is not None:
        problems.append(p)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= limits.max_top_k:
        problems.append(Problem("top_k", top_k, f"must be an integer from 1 to {limits.max_top_k}", code="query"))
    if ef_search is not None and (isinstance(ef_search, bool) or not isinstance(ef_search, int)
                                  or not 1 <= ef_search <= limits.max_ef_search):
        problems.append(Problem("ef_search", ef_search, f"must be an integer from 1 to {limits.max_ef_search}",
                                code="query"))
    conditions, found = parse_filter(filter)
    raise_problems(problems + found)
    return conditions


class VectorStore(abc.ABC):
    """Collections of chunk vectors, partitioned by tenant. Every data call names the tenant; no call reads or writes
    another tenant's chunks."""

    backend: str = ""
    limits: Limits = LIMITS

    @abc.abstractmethod
    def create_collection(self, name: str, dimensions: int, distance: Distance = "cosine", *,
                          exist_ok: bool = False) -> CollectionInfo:
        """Create a collection. With ``exist_ok`` an existing one of the same dimensions and distance is returned;
        otherwise (or when they differ) :class:`~serving.rag.errors.CollectionExists`."""

    @abc.abstractmethod
    def describe_collection(self, name: str) -> CollectionInfo:
        """The collection's definition, or :class:`~serving.rag.errors.UnknownCollection`."""

    @abc.abstractmethod
    def drop_collection(self, name: str) -> None:
        """Delete a collection and every tenant's chunks in it (``UnknownCollection`` if absent)."""

    @abc.abstractmethod
    def upsert_document(self, collection: str, tenant: str, document_id: str, chunks: Sequence[Chunk]) -> int:
        """Replace every chunk of ``document_id`` (of ``tenant``) with ``chunks``, numbered 0..n-1; returns n.
        Re-ingesting the same document is idempotent."""

    @abc.abstractmethod
    def delete_document(self, collection: str, tenant: str, document_id: str) -> int:
        """Delete the document's chunks; returns how many there were (0 for an unknown document)."""

    @abc.abstractmethod
    def query(self, collection: str, tenant: str, vector: Sequence[float], top_k: int = 10,
              filter: Mapping[str, Any] | None = None, *, ef_search: int | None = None) -> list[Hit]:
        """The ``top_k`` chunks of ``tenant`` nearest to ``vector`` that match ``filter``, nearest first."""

    @abc.abstractmethod
    def count(self, collection: str, tenant: str) -> int:
        """How many chunks ``tenant`` has in the collection."""
