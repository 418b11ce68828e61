"""genai-scale's CrossGuard policy pack and its offline runner.

- ``policies/__main__.py`` builds the ``PolicyPack`` (only there: constructing it starts the analyzer's gRPC server).
- ``policies.security``, ``.reliability``, ``.cost``, ``.gpu``: the rules, registered as ``pulumi_policy`` policies.
- ``policies.pack``: the registered policies (``ALL_POLICIES``), their metadata (``RULES``) and the per-tier pack
  config (``pack_config(tier)``, also written to ``policies/config/<tier>.json``).
- ``policies.engine.evaluate(resources, config=...)``: the same policies over a recorded plan, offline.
"""
