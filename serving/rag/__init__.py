"""The RAG data plane's runtime: the vector store and the ingestion workers (serving/rag/README.md).

``store`` holds the interface, records and validation; ``postgres.PgVectorStore`` (PostgreSQL + pgvector, the default)
and ``qdrant.QdrantStore`` (Qdrant) implement it; ``errors`` the typed errors; ``localpg`` starts a throwaway
PostgreSQL with pgvector for tests and benchmarks. Ingestion: ``chunking`` (token-bounded chunks), ``ingest`` (the
S3/SQS contract with the gateway), ``worker`` (``python -m serving.rag worker``), ``connect`` (store settings). The
backends are imported from their modules, so importing this package loads neither database client.
"""

from .errors import (
                     CollectionExists,
                     DimensionMismatch,
                     InvalidDocument,
                     InvalidFilter,
                     InvalidQuery,
                     InvalidRequest,
                     UnknownCollection,
                     VectorStoreError,
)
from .store import LIMITS, Chunk, CollectionInfo, Distance, Hit, Limits, VectorStore

__all__ = [
                     "LIMITS",
                     "Chunk",
                     "CollectionExists",
                     "CollectionInfo",
                     "DimensionMismatch",
                     "Distance",
                     "Hit",
                     "InvalidDocument",
                     "InvalidFilter",
                     "InvalidQuery",
                     "InvalidRequest",
                     "Limits",
                     "UnknownCollection",
                     "VectorStore",
                     "VectorStoreError",
]
