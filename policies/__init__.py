"""genai-scale's CrossGuard policy pack and its offline runner.

- ``policies/__main__.py`` builds the ``PolicyPack`` (only there: constructing it starts the analyzer's gRPC server).
- ``policies.security``, ``.reliability``, ``.cost``, ``.gpu``: the rules, registered as ``pulumi_policy`` policies.
- ``policies.pack``: the registered policies (``ALL_POLICIES``), their metadata (``RULES``) and the pack config of a
  tier built from its facts (``pack_config(tier, facts=...)``; the stack program writes it to
  ``policies/config/<tier>.json``). The pack reads no tier by name: what differs between tiers is policy config.
- ``policies.engine.evaluate(resources, config=...)``: the same policies over a recorded plan, offline.
"""
