"""Serving on the cluster: vLLM images and services, KEDA, monitoring."""
