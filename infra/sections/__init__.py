"""The stack's sections, one module per concern, in build order: each owns its config keys (``KEYS``), its
cross-field rules (``problems(cfg)``) and ``build(ctx, cfg)``."""

from infra.sections import batch, capacity, edge, foundation, gateway, managed, rag, serving

SECTIONS = [capacity, foundation, edge, managed, serving, gateway, batch, rag]
"""Build order: capacity (the plan, pure: no resources; the cron floors and capacity facts the serving section renders,
the peak windows of the Karpenter NodePools) -> foundation -> edge -> managed inference -> serving -> gateway -> batch
(KEDA and the gateway image) -> rag (the vector store)."""
