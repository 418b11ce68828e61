"""OpenAI-compatible serving gateway: routing, fallback, cascades, exact and semantic caches, token limits.

Start it with ``genai-scale gateway serve --config FILE``; see ``serving/gateway/README.md``.
This package never imports Pulumi or the infrastructure code.
"""
