"""Routing strategies over a set of candidates (a route's targets, or an upstream's replicas): least outstanding
requests, and prefix affinity with bounded load.

vLLM keeps the KV blocks of recent prompts (automatic prefix caching, on in the rendered arguments) and skips their
prefill when a new prompt starts with the same tokens, but only on the replica that holds them. Balancing by least
outstanding requests scatters the turns of one conversation, and the prompts that share a long system prompt or RAG
context, over every replica, so each replica prefills them again. Prefix affinity sends requests that share a key to
the same replica:

- **The key.** The client's session key when it gives one (the route's ``sessionHeader``, then the body's ``user``
  field), else a hash of the prompt's leading blocks: the chat messages up to and including the first user message
  (system prompt, tools, first question: what every later turn of the conversation repeats verbatim), cut to
  ``prefixBlocks x prefixBlockTokens`` tokens. vLLM hashes its cache in blocks of ``--block-size`` tokens (16 by
  default), so the key covers whole blocks of the prefix every turn shares. The gateway counts
  :data:`CHARS_PER_TOKEN` characters per token to stay tokenizer-free: the key only has to be equal for prompts that
  share the prefix, not aligned to the engine's block boundaries. No key (an empty prompt) falls back to least
  outstanding.
- **Consistent hashing.** Candidates are ranked by weighted rendezvous (highest random weight) hashing of
  ``(key, candidate name)``: every gateway replica computes the same order without shared state, and adding or
  removing a candidate moves only the keys that rank it first.
- **Bounded load** (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018): a
  candidate takes the request only while ``outstanding + 1 <= ceil(loadFactor x (total outstanding + 1) x weight /
  total weight)``; otherwise the next candidate in the key's hash order does (an *overflow*). Some candidate always
  has room, so a hot prefix spreads over the next replicas in its order instead of queueing on one.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

CHARS_PER_TOKEN = 4
"""Characters per token used to cut the prefix without a tokenizer (the usual English average for BPE tokenizers
such as Llama 3's; a key cut a little longer or shorter still matches every prompt that shares the prefix)."""

HIT, OVERFLOW, NO_KEY = "hit", "overflow", "no_key"
"""Outcomes of one affinity decision (the ``result`` label of ``gateway_routing_affinity_total``)."""


class Candidate(Protocol):
    """Anything that can be routed to: a name stable across gateway replicas and a count of requests in flight."""

    name: str
    outstanding: int


def session_key(session: str | None, body: dict[str, Any], *, use_user: bool = True) -> str | None:
    """The client's session key: the header value, else the body's ``user`` field (when ``use_user``)."""
    if session:
        return "s:" + session
    user = body.get("user") if use_user else None
    if isinstance(user, str) and user:
        return "u:" + user
    return None


def _anchor_text(kind: str, body: dict[str, Any]) -> str:
    """What every request of one conversation starts with: the messages up to and including the first user message
    (and the tools, which chat templates render before them); for text completions, the prompt."""
    if kind == "completion":
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            if len(prompt) == 1 and isinstance(prompt[0], str):
                return prompt[0]
            if prompt and all(isinstance(t, int) for t in prompt):
                return " ".join(map(str, prompt))  # token ids: one "word" each, cut like text below
            return ""
        return prompt if isinstance(prompt, str) else ""
    parts: list[str] = []
    tools = body.get("tools")
    if tools:
        parts.append(repr(tools))
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            break
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"{m.get('role', '')}\x1f{content or ''}\x1e")
        if m.get("role") == "user":
            break
    return "".join(parts)


def prefix_key(kind: str, body: dict[str, Any], *, block_tokens: int, blocks: int) -> str | None:
    """Hash of the conversation's leading ``blocks`` blocks of ``block_tokens`` tokens (None for an empty prompt)."""
    text = _anchor_text(kind, body)
    if not text:
        return None
    head = text[: blocks * block_tokens * CHARS_PER_TOKEN]
    return "p:" + hashlib.blake2b(head.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _score(key: str, name: str, weight: float) -> float:
    """Weighted rendezvous score: ``-weight / ln(u)`` with ``u`` uniform in (0, 1) from the hash of the pair."""
    h = int.from_bytes(hashlib.blake2b(f"{key}\x00{name}".encode(), digest_size=8).digest(), "big")
    u = (h + 1) / (2 ** 64 + 1)
    return -weight / math.log(u)


def hash_order(key: str, names: Sequence[str], weights: Sequence[float] | None = None) -> list[int]:
    """Indexes of ``names`` in the key's rendezvous order (best first)."""
    ws = weights or [1.0] * len(names)
    return sorted(range(len(names)), key=lambda i: _score(key, names[i], ws[i]), reverse=True)


@dataclass(frozen=True)
class Ranking:
    """Candidates (indexes into the list given) in the order to try them, and the affinity outcome when the first
    is taken: ``hit`` (the key's own candidate), ``overflow`` (it was over its load bound) or ``no_key``; None for
    least-outstanding routing."""

    order: list[int]
    result: str | None
    preferred: int | None = None
    """The key's own candidate (first in hash order), whether or not it had room."""

    def outcome(self, taken: int) -> str | None:
        """The affinity outcome when ``taken`` is the candidate finally used (an unavailable first choice is an
        overflow too)."""
        if self.result in (None, NO_KEY):
            return self.result
        return HIT if taken == self.preferred else OVERFLOW


def least_outstanding(loads: Sequence[int], weights: Sequence[float] | None = None) -> list[int]:
    """Indexes by ``(outstanding + 1) / weight``, ties in random order (the gateway's default balancing)."""
    ws = weights or [1.0] * len(loads)
    jitter = [random.random() for _ in loads]
    return sorted(range(len(loads)), key=lambda i: ((loads[i] + 1) / ws[i], jitter[i]))


def bounded_capacity(loads: Sequence[int], weights: Sequence[float], i: int, load_factor: float) -> int:
    """Most requests candidate ``i`` may hold after taking this one."""
    return math.ceil(load_factor * (sum(loads) + 1) * weights[i] / sum(weights))


def rank(key: str | None, names: Sequence[str], loads: Sequence[int], *, weights: Sequence[float] | None = None,
         load_factor: float = 1.25) -> Ranking:
    """Prefix-affinity order of the candidates for ``key``: the first in hash order with room under the bound, then
    the others in hash order; without a key, least outstanding."""
    if not names:
        return Ranking([], None)
    ws = list(weights or [1.0] * len(names))
    if key is None:
        return Ranking(least_outstanding(loads, ws), NO_KEY)
    order = hash_order(key, names, ws)
    first = next(i for i in order if loads[i] + 1 <= bounded_capacity(loads, ws, i, load_factor))
    rest = [i for i in order if i != first]
    return Ranking([first] + rest, HIT if first == order[0] else OVERFLOW, order[0])


@dataclass(frozen=True)
class Strategy:
    """One route's routing settings, resolved: how to key a request and how to rank candidates for it."""

    name: str = "least-outstanding"
    block_tokens: int = 16
    blocks: int = 32
    load_factor: float = 1.25
    session_header: str | None = "x-session-id"
    use_user: bool = True

    @property
    def affinity(self) -> bool:
        return self.name == "prefix-affinity"

    @classmethod
    def from_config(cls, cfg: Any) -> Strategy:
        """From a route's ``routing`` block (:class:`serving.gateway.config.RoutingConfig`)."""
        return cls(cfg.strategy, cfg.prefix_block_tokens, cfg.prefix_blocks, cfg.load_factor, cfg.session_header,
                   cfg.use_user_field)

    def key(self, kind: str, body: dict[str, Any], session: str | None = None) -> str | None:
        """The request's affinity key (None for least-outstanding routes, or when the request gives nothing to key
        on)."""
        if not self.affinity:
            return None
        return session_key(session, body, use_user=self.use_user) or prefix_key(
            kind, body, block_tokens=self.block_tokens, blocks=self.blocks)

    def rank(self, key: str | None, candidates: Sequence[Candidate],
             weights: Sequence[float] | None = None) -> Ranking:
        loads = [c.outstanding for c in candidates]
        if not self.affinity:
            return Ranking(least_outstanding(loads, weights), None)
        return rank(key, [c.name for c in candidates], loads, weights=weights, load_factor=self.load_factor)
