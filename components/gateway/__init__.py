"""The OpenAI-compatible gateway as a cluster workload."""
