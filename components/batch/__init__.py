"""Batch inference: queue-driven workers on spot accelerator capacity (see batch_inference)."""
