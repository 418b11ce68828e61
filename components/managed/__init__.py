"""Managed inference: Bedrock provisioned throughput, SageMaker LMI endpoints."""
