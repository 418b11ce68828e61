"""Exact and semantic response caches in Redis/Valkey, shared by every gateway replica.

Keys never cross tenants: both caches hash the tenant into the key (exact) or the index scope (semantic) together
with the route, the sampling parameters and the conversation context, so a lookup can only ever see entries written
for the same tenant, model and parameters. The semantic scope also holds the prompt's own context (the documents
before the question of a RAG prompt, :func:`serving.gateway.guard.split`); only the question is embedded, and each
nearest neighbour is judged by :func:`serving.gateway.guard.decide`. Every store or embedder failure raises
:class:`CacheUnavailable`; the gateway treats that as a miss (fail open) and counts it.

Semantic index, two implementations behind one interface:

- ``valkey-search`` (ElastiCache for Valkey >= 8.2, node-based, cluster mode disabled): entries are hashes
  ``<index>:<scope>:<id>`` with a TAG field ``scope`` and an HNSW ``vec`` field (FLOAT32, COSINE); lookups are
  ``FT.SEARCH <index> "@scope:{<scope>}=>[KNN k @vec $B AS dist]"`` pre-filtered by scope.
- ``shared-log`` (any Redis, for example the Debian ``redis-server`` in tests): each write is a payload key with a
  TTL plus an entry in the stream ``<index>:log`` (scope, id, vector, expiry), trimmed to ``maxEntries``. Every
  replica tails the stream into a local per-scope vector matrix and searches it with numpy, then fetches the
  payloads with MGET. Entries written by one replica are visible to all the others at their next lookup.

Embedding is skipped where it cannot matter. The scope also holds the question's anchors (its numbers, negations
and quantifiers, :func:`serving.gateway.guard.anchor_key`), which the decision procedure requires to be equal, so a
scope only ever holds entries that could hit. :meth:`SemanticCache.find` asks the index whether the scope has a live
entry before embedding: when it has none the lookup is a miss without an embedding. On the ``shared-log`` index the
answer is then stored without a vector, and the scope's next lookup embeds such entries (together with its own
question) before searching, so no hit is lost; ``valkey-search`` needs the vector in the hash, so the store embeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass

import numpy as np
import orjson

from serving.gateway import guard
from serving.gateway.batcher import EmbedBatcher
from serving.gateway.config import SemanticStoreConfig


class CacheUnavailable(RuntimeError):
    """The cache store failed or timed out."""


def digest(*parts: object) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ExactCache:
    def __init__(self, redis, *, timeout_s: float, prefix: str = "gw:xc:"):
        self._r = redis
        self._t = timeout_s
        self._p = prefix

    async def get(self, key: str) -> bytes | None:
        try:
            async with asyncio.timeout(self._t):
                return await self._r.get(self._p + key)
        except Exception as exc:
            raise CacheUnavailable(str(exc) or type(exc).__name__) from exc

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        try:
            async with asyncio.timeout(self._t):
                await self._r.set(self._p + key, value, ex=ttl_s)
        except Exception as exc:
            raise CacheUnavailable(str(exc) or type(exc).__name__) from exc


@dataclass
class SemanticHit:
    payload: bytes
    similarity: float


class _Rows:
    """A growable per-scope matrix of unit vectors with ids and expiry times."""

    __slots__ = ("vecs", "ids", "exps", "ready", "n")

    def __init__(self, dim: int):
        self.vecs = np.zeros((16, dim), np.float32)
        self.ids: list[str] = []
        self.exps = np.zeros(16, np.int64)
        self.ready = np.zeros(16, bool)
        """False for an entry stored without a vector (embedded on the scope's next lookup)."""
        self.n = 0

    def add(self, vec: np.ndarray | None, id_: str, exp: int) -> None:
        if self.n == len(self.vecs):
            self.vecs = np.concatenate([self.vecs, np.zeros_like(self.vecs)])
            self.exps = np.concatenate([self.exps, np.zeros_like(self.exps)])
            self.ready = np.concatenate([self.ready, np.zeros_like(self.ready)])
        if vec is not None:
            self.vecs[self.n] = vec
        self.ready[self.n] = vec is not None
        self.exps[self.n] = exp
        self.ids.append(id_)
        self.n += 1

    def drop_oldest(self, drop: int) -> None:
        keep = self.n - drop
        self.vecs[:keep] = self.vecs[drop: self.n]
        self.exps[:keep] = self.exps[drop: self.n]
        self.ready[:keep] = self.ready[drop: self.n]
        self.ids = self.ids[drop:]
        self.n = keep

    def live(self, now_ms: int) -> np.ndarray:
        return self.exps[: self.n] > now_ms

    def compact(self, now_ms: int) -> None:
        live = self.exps[: self.n] > now_ms
        if live.all():
            return
        keep = np.nonzero(live)[0]
        self.vecs[: len(keep)] = self.vecs[keep]
        self.exps[: len(keep)] = self.exps[keep]
        self.ready[: len(keep)] = self.ready[keep]
        self.ids = [self.ids[i] for i in keep]
        self.n = len(keep)


class SharedLogIndex:
    """The ``shared-log`` semantic index (see module docstring)."""

    kind = "shared-log"
    lazy = True
    """Entries may be stored without a vector: the scope's next lookup embeds them."""

    def __init__(self, redis, *, name: str, dim: int, max_entries: int, timeout_s: float):
        self._r = redis
        self._name = name
        self._log = f"{name}:log"
        self._dim = dim
        self._max = max_entries
        self._t = timeout_s
        self._last = "0-0"
        self._scopes: dict[str, _Rows] = {}
        self._count = 0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._sync()

    async def _sync(self, batch: int = 10_000) -> None:
        async with self._lock:
            while True:
                res = await asyncio.wait_for(self._r.xread({self._log: self._last}, count=batch), self._t)
                if not res:
                    return
                entries = res[0][1]
                for entry_id, fields in entries:
                    self._last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    scope = fields[b"scope"].decode()
                    rows = self._scopes.get(scope)
                    if rows is None:
                        rows = self._scopes[scope] = _Rows(self._dim)
                    vec = fields[b"vec"]
                    rows.add(np.frombuffer(vec, np.float32) if vec else None, fields[b"id"].decode(),
                             int(fields[b"exp"]))
                    self._count += 1
                if self._count > self._max:
                    self._evict()
                if len(entries) < batch:
                    return

    def _evict(self) -> None:
        now = int(time.time() * 1000)
        for rows in self._scopes.values():
            rows.compact(now)
        self._count = sum(r.n for r in self._scopes.values())
        if self._count > self._max:  # still too many: drop the oldest half of the largest scopes
            for rows in sorted(self._scopes.values(), key=lambda r: -r.n):
                drop = rows.n // 2
                rows.drop_oldest(drop)
                self._count -= drop
                if self._count <= self._max:
                    break

    async def search(self, scope: str, vec: np.ndarray, k: int,
                     threshold: float) -> list[tuple[str, float, bytes | None]]:
        """Up to ``k`` (id, similarity, payload) at or above ``threshold``, best first."""
        await self._sync()
        rows = self._scopes.get(scope)
        if rows is None or rows.n == 0:
            return []
        sims = rows.vecs[: rows.n] @ vec
        now = int(time.time() * 1000)
        sims = np.where(rows.live(now) & rows.ready[: rows.n], sims, -1.0)
        if rows.n > k:
            idx = np.argpartition(-sims, k)[:k]
        else:
            idx = np.arange(rows.n)
        idx = idx[np.argsort(-sims[idx])]
        found = [(rows.ids[i], float(sims[i])) for i in idx if sims[i] >= threshold]
        if not found:
            return []
        payloads = await asyncio.wait_for(self._r.mget([f"{self._name}:e:{i}" for i, _ in found]), self._t)
        return [(i, sim, p) for (i, sim), p in zip(found, payloads)]

    async def live(self, scope: str) -> bool:
        """Whether the scope holds an unexpired entry (with or without its vector)."""
        await self._sync()
        rows = self._scopes.get(scope)
        return rows is not None and bool(rows.live(int(time.time() * 1000)).any())

    async def pending(self, scope: str) -> list[tuple[str, bytes | None]]:
        """(id, payload) of the scope's unexpired entries that were stored without a vector."""
        rows = self._scopes.get(scope)
        if rows is None:
            return []
        todo = np.nonzero(rows.live(int(time.time() * 1000)) & ~rows.ready[: rows.n])[0]
        if not len(todo):
            return []
        ids = [rows.ids[i] for i in todo]
        payloads = await asyncio.wait_for(self._r.mget([f"{self._name}:e:{i}" for i in ids]), self._t)
        return list(zip(ids, payloads))

    def fill(self, scope: str, vecs: dict[str, np.ndarray]) -> None:
        """Set the vectors of entries stored without one (this replica's copy; the log is not rewritten)."""
        rows = self._scopes.get(scope)
        if rows is None:
            return
        for i, id_ in enumerate(rows.ids):
            if id_ in vecs:
                rows.vecs[i] = vecs[id_]
                rows.ready[i] = True

    async def add(self, scope: str, vec: np.ndarray | None, payload: bytes, ttl_s: int) -> None:
        """Store an entry; ``vec=None`` defers its embedding to the scope's next lookup (:attr:`lazy`)."""
        id_ = uuid.uuid4().hex
        exp = int(time.time() * 1000) + ttl_s * 1000
        pipe = self._r.pipeline(transaction=False)
        pipe.set(f"{self._name}:e:{id_}", payload, ex=ttl_s)
        raw = b"" if vec is None else vec.astype(np.float32).tobytes()
        pipe.xadd(self._log, {"scope": scope, "id": id_, "vec": raw, "exp": exp},
                  maxlen=self._max, approximate=True)
        await asyncio.wait_for(pipe.execute(), self._t)


class ValkeySearchIndex:
    """The ``valkey-search`` semantic index (see module docstring)."""

    kind = "valkey-search"
    lazy = False

    def __init__(self, redis, *, name: str, dim: int, timeout_s: float):
        self._r = redis
        self._name = name
        self._dim = dim
        self._t = timeout_s

    def create_command(self) -> list[object]:
        return ["FT.CREATE", self._name, "ON", "HASH", "PREFIX", "1", f"{self._name}:", "SCHEMA",
                "scope", "TAG", "vec", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", str(self._dim),
                "DISTANCE_METRIC", "COSINE"]

    def search_command(self, scope: str, vec: np.ndarray, k: int) -> list[object]:
        return ["FT.SEARCH", self._name, f"@scope:{{{scope}}}=>[KNN {k} @vec $B AS dist]",
                "PARAMS", "2", "B", vec.astype(np.float32).tobytes(), "RETURN", "2", "dist", "payload",
                "DIALECT", "2"]

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._r.execute_command(*self.create_command()), max(self._t, 5.0))
        except Exception as exc:
            if "already exists" not in str(exc).lower():
                raise

    async def live(self, scope: str) -> bool:
        """Whether the scope holds an entry (a count-only tag query: no vector is needed to ask)."""
        res = await asyncio.wait_for(self._r.execute_command(
            "FT.SEARCH", self._name, f"@scope:{{{scope}}}", "LIMIT", "0", "0", "DIALECT", "2"), self._t)
        return bool(res) and int(res[0]) > 0

    async def search(self, scope: str, vec: np.ndarray, k: int,
                     threshold: float) -> list[tuple[str, float, bytes | None]]:
        res = await asyncio.wait_for(self._r.execute_command(*self.search_command(scope, vec, k)), self._t)
        out: list[tuple[str, float, bytes | None]] = []
        for i in range(1, len(res), 2):
            key = res[i].decode() if isinstance(res[i], bytes) else str(res[i])
            fields = res[i + 1]
            d = {(fields[j].decode() if isinstance(fields[j], bytes) else fields[j]): fields[j + 1]
                 for j in range(0, len(fields), 2)}
            sim = 1.0 - float(d.get("dist", 2))
            if sim >= threshold:
                out.append((key, sim, d.get("payload")))
        return sorted(out, key=lambda x: -x[1])

    async def add(self, scope: str, vec: np.ndarray, payload: bytes, ttl_s: int) -> None:
        key = f"{self._name}:{scope}:{uuid.uuid4().hex}"
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(key, mapping={"scope": scope, "vec": vec.astype(np.float32).tobytes(), "payload": payload})
        pipe.expire(key, ttl_s)
        await asyncio.wait_for(pipe.execute(), self._t)


async def detect_index(redis, cfg: SemanticStoreConfig, dim: int):
    """Pick the index implementation (``auto``: valkey-search when the server knows FT._LIST)."""
    t = cfg.timeout_ms / 1000
    kind = cfg.index
    if kind == "auto":
        try:
            await asyncio.wait_for(redis.execute_command("FT._LIST"), max(t, 2.0))
            kind = "valkey-search"
        except Exception:
            kind = "shared-log"
    if kind == "valkey-search":
        return ValkeySearchIndex(redis, name=cfg.index_name, dim=dim, timeout_s=t)
    return SharedLogIndex(redis, name=cfg.index_name, dim=dim, max_entries=cfg.max_entries, timeout_s=t)


class SemanticCache:
    """Splits the prompt (context + question), embeds the question through the micro-batcher, searches the index
    within the scope (tenant, route, parameters, conversation and the exact context), and lets the decision procedure
    (:func:`serving.gateway.guard.decide`) judge each candidate. Embedder and store failures raise
    :class:`CacheUnavailable` (a miss for the caller)."""

    def __init__(self, index, embedder, *, candidates: int = 8, batcher: EmbedBatcher | None = None):
        self.index = index
        self.embedder = embedder
        self._k = candidates
        self.batcher = batcher or EmbedBatcher(embedder)
        self._started = False

    async def ensure_started(self) -> None:
        if not self._started:
            await self.index.start()
            self._started = True

    async def embed(self, text: str) -> np.ndarray:
        """The vector of the prompt's question part (micro-batched on the worker thread)."""
        try:
            return await self.batcher.embed(guard.split(text).question)
        except Exception as exc:
            raise CacheUnavailable(str(exc) or type(exc).__name__) from exc

    def usable(self, text: str) -> bool:
        """Prompts whose question part is empty or that the model would truncate are never looked up or stored
        (a prefix match is not a match); the context before the question may be of any length."""
        try:
            q = guard.split(text).question
            return bool(q.strip()) and not self.embedder.too_long(q)
        except Exception:
            return False

    @staticmethod
    def scope(base: str, text: str, use_guard: bool = True) -> str:
        """Entries are only compared within the same scope: ``base`` (tenant, route, parameters, conversation), the
        prompt's context before the question as its canonical word sequence (:func:`serving.gateway.guard.split`),
        which must match exactly, and, with the guard on, the question's anchors (numbers, negations, quantifiers),
        which the guard requires to be equal."""
        q = guard.split(text)
        anchors = guard.anchor_key(q.question) if use_guard else ""
        return digest("semantic/v3", base, guard.context_digest(q.context), anchors)

    async def find(self, scope: str, text: str, rule, use_guard: bool = True) -> tuple[SemanticHit | None,
                                                                                        np.ndarray | None]:
        """(hit, the question's vector): a scope without a live entry is a miss without an embedding (vector
        ``None``; :meth:`store` handles it)."""
        try:
            await self.ensure_started()
            live = await self.index.live(scope)
        except Exception as exc:
            raise CacheUnavailable(str(exc) or type(exc).__name__) from exc
        if not live:
            return None, None
        vec = await self.embed(text)
        return await self.lookup(scope, text, vec, rule, use_guard), vec

    async def _fill_pending(self, scope: str) -> None:
        pending = await self.index.pending(scope)
        texts: dict[str, str] = {}
        for id_, raw in pending:
            try:
                texts[id_] = orjson.loads(raw)["text"]
            except Exception:  # expired meanwhile, foreign or damaged: never a candidate
                continue
        if texts:
            vecs = await asyncio.gather(*(self.batcher.embed(t) for t in texts.values()))
            self.index.fill(scope, dict(zip(texts, vecs)))

    @staticmethod
    def policy(rule) -> guard.Policy:
        """The route's ``cache.semantic`` settings (or a bare threshold) as the decision procedure's policy."""
        if isinstance(rule, (int, float)):
            return guard.Policy(threshold=float(rule), threshold_reworded=max(float(rule), guard.Policy().
                                                                               threshold_reworded))
        return guard.Policy(threshold=rule.threshold, threshold_reworded=rule.threshold_reworded,
                            max_changed_words=rule.max_changed_words, threshold_strict=rule.threshold_strict)

    async def lookup(self, scope: str, text: str, vec: np.ndarray, rule, use_guard: bool = True) -> SemanticHit | None:
        policy = self.policy(rule)
        question = guard.split(text).question
        try:
            await self.ensure_started()
            if getattr(self.index, "lazy", False):
                await self._fill_pending(scope)
            found = await self.index.search(scope, vec, self._k, policy.threshold)
        except Exception as exc:
            raise CacheUnavailable(str(exc) or type(exc).__name__) from exc
        for _, sim, raw in found:
            if raw is None:
                continue
            try:
                entry = orjson.loads(raw)
                cached = entry["text"]
            except Exception:  # a foreign or damaged entry is not a hit
                continue
            if use_guard:
                hit, _ = guard.decide(cached, question, sim, policy)
            else:
                hit = sim >= policy.threshold
            if hit:
                return SemanticHit(entry["response"].encode() if isinstance(entry["response"], str)
                                   else orjson.dumps(entry["response"]), sim)
        return None

    async def store(self, scope: str, text: str, vec: np.ndarray | None, response: bytes, ttl_s: int) -> None:
        """Store an answer; without a vector (its scope was empty at lookup) the entry is stored for a later
        embedding on a lazy index, and embedded now on the others."""
        payload = orjson.dumps({"text": guard.split(text).question, "response": response.decode()})
        if vec is None and not getattr(self.index, "lazy", False):
            vec = await self.embed(text)
        try:
            await self.ensure_started()
            await self.index.add(scope, vec, payload, ttl_s)
        except Exception as exc:
            raise CacheUnavailable(str(exc) or type(exc).__name__) from exc
