"""The stack's sections, one module per concern, in build order: each owns its config keys (``KEYS``), its
cross-field rules (``problems(cfg)``) and ``build(ctx, cfg)``."""

from infra.sections import batch, edge, foundation, gateway, managed, rag, serving

SECTIONS = [foundation, edge, managed, serving, gateway, batch, rag]
"""Build order: foundation -> edge -> managed inference -> serving -> gateway -> batch (KEDA and the gateway image)
-> rag (the vector store)."""
