"""Load test of the OpenAI-compatible API: Locust file plus the workload model it uses."""
