"""The RAG data plane: the vector store (Aurora PostgreSQL with pgvector, or Qdrant on the cluster) and its sizing."""
