"""Typed model settings -> `vllm serve` arguments. Pure: no Pulumi, no vLLM import.

The rendered list is what the vLLM container receives as its args (the image's entrypoint runs ``vllm serve`` with
them after fetching the weights). tests/serving parse every rendered list with vLLM's own serve parser at the pinned
version, so a flag vLLM removed or renamed fails in the tests, not at pod start.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from components import versions
from components._base import ArgsModel
from components._errors import Problem
from components.catalog import models as model_catalog

Dtype = Literal["auto", "bfloat16", "float16"]
Quantization = Literal["fp8", "awq", "awq_marlin", "gptq", "gptq_marlin", "moe_wna16", "mxfp4", "modelopt_fp4",
                       "experts_int8"]
KvCacheDtype = Literal["auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2"]

PORT = 8000
QUIET_ENDPOINTS = "/health,/metrics,/ping"
"""Probe and scrape paths kept out of the access log."""

FLAG_MIN_VERSION: dict[str, tuple[int, ...]] = {
    "--disable-access-log-for-endpoints": (0, 18, 0),  # (uncertain) older than 0.18; rendered from 0.18 only
}
"""Flags newer than some engines we run (the Neuron DLC ships vLLM 0.13): rendered only for engines at or above."""

ENGINE_DRAIN_MIN_VERSION = (0, 18, 0)
"""``--shutdown-timeout`` (drain on SIGTERM) arrived in vLLM 0.18 (PRs #34730 / #36666). It is always rendered; for
older engines the image's entrypoint takes it off the command line and drains in-flight requests itself."""

RENDERED_FLAGS = (
    "--served-model-name", "--host", "--port", "--tensor-parallel-size", "--max-model-len", "--max-num-seqs",
    "--gpu-memory-utilization", "--dtype", "--quantization", "--kv-cache-dtype", "--enable-prefix-caching",
    "--no-enable-prefix-caching", "--shutdown-timeout", "--disable-access-log-for-endpoints", "--api-key",
    "--model",
)
"""Flags set from typed settings; ``extra_args`` may not repeat them (the typed field is the one place to set each)."""

_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\s]*)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,127}$")


class ModelFacts(BaseModel):
    """Architecture facts for a model outside the catalogue (its config.json and model card)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    parameters_billion: float = Field(gt=0, le=5000)
    """Total parameters in billions."""
    layers: int = Field(ge=1)
    """``num_hidden_layers``."""
    attention_heads: int = Field(ge=1)
    """``num_attention_heads``."""
    kv_heads: int = Field(ge=1)
    """``num_key_value_heads``."""
    head_dim: int = Field(ge=1)
    """Dimension of one attention head."""
    max_context: int = Field(ge=1)
    """``max_position_embeddings``."""


class VllmModelSettings(ArgsModel):
    """What one vLLM server serves and how: rendered into `vllm serve` arguments."""

    model_id: str = Field(min_length=1)
    """Hugging Face model id, e.g. ``meta-llama/Llama-3.1-8B-Instruct``. Must be in the model catalogue
    (components/catalog/models.py) unless ``model_facts`` is given."""
    served_model_name: str | None = None
    """Name clients send as ``model`` (and the ``model_name`` label on every vLLM metric). Default: the service name."""
    weights_uri: str | None = None
    """``s3://bucket/prefix/`` holding the weights (safetensors, config, tokenizer); fetched at pod start, never baked
    into the image. Default: none, which needs ``allow_hub_download`` (vLLM then downloads from the Hugging Face hub)."""
    allow_hub_download: bool = False
    """Let the pod download the weights from the Hugging Face hub when ``weights_uri`` is not set. Default: off
    (weights come from your S3 bucket, reachable through the VPC's S3 gateway endpoint)."""
    model_facts: ModelFacts | None = None
    """Architecture facts for a model outside the catalogue. Default: taken from the catalogue."""
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    """GPUs (or NeuronCores) one replica shards the model over (``--tensor-parallel-size``). Default: 1."""
    max_model_len: int = Field(default=4096, ge=128, le=1_048_576)
    """Longest prompt + output in tokens (``--max-model-len``). Default: 4096."""
    max_num_seqs: int = Field(default=16, ge=1, le=4096)
    """Sequences batched at once per replica (``--max-num-seqs``). Default: 16."""
    kv_tokens_per_sequence: int | None = Field(default=None, ge=1)
    """KV-cache tokens the fit check reserves per concurrent sequence. Default: ``max_model_len`` (every sequence at
    full length, no preemption); set the typical prompt + output length to accept preemption on long-context bursts."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=0.98)
    """Share of each accelerator's memory vLLM may use for weights, activations and KV cache
    (``--gpu-memory-utilization``). Default: 0.9."""
    dtype: Dtype = "auto"
    """Weight/activation dtype (``--dtype``). Default: auto (the checkpoint's, bf16 for current models)."""
    quantization: Quantization | None = None
    """Weight quantization method (``--quantization``), matching the checkpoint (AWQ/GPTQ checkpoints) or online
    (fp8). Default: none."""
    kv_cache_dtype: KvCacheDtype = "auto"
    """KV-cache element type (``--kv-cache-dtype``); fp8 halves KV memory. Default: auto (the model dtype)."""
    enable_prefix_caching: bool = True
    """Reuse KV cache across requests sharing a prefix (``--enable-prefix-caching``). Default: on."""
    shutdown_timeout_seconds: int = Field(default=60, ge=0, le=3600)
    """On SIGTERM, stop taking requests and let in-flight ones finish for up to this long (``--shutdown-timeout``,
    vLLM >= 0.18; the pod's grace period is sized from it). Default: 60."""
    extra_args: list[str] = Field(default_factory=list)
    """More `vllm serve` flags, verbatim (escape hatch; parsed by vLLM's parser in the tests). Default: none."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.model_facts is None and model_catalog.lookup(self.model_id) is None:
            out.append(Problem("model_id", self.model_id,
                               "a model in the catalogue (" + ", ".join(sorted(model_catalog.CATALOG)) +
                               ") or model_facts stating its parameters, layers, heads, head_dim and max_context"))
        if self.weights_uri is not None and not _S3_URI.match(self.weights_uri):
            out.append(Problem("weights_uri", self.weights_uri, "an S3 URI such as s3://my-models/llama-3.1-8b/"))
        if self.weights_uri is None and not self.allow_hub_download:
            out.append(Problem("weights_uri", None, "required: s3://bucket/prefix of the weights (or set "
                               "allow_hub_download to download from the Hugging Face hub)"))
        if self.served_model_name is not None and not _NAME.match(self.served_model_name):
            out.append(Problem("served_model_name", self.served_model_name,
                               "letters, digits, '.', '_', '-', '/' (at most 128 characters)"))
        facts = self.facts()
        if facts is not None and self.max_model_len > facts.max_context:
            out.append(Problem("max_model_len", self.max_model_len,
                               f"<= the model's context ({facts.max_context} tokens)"))
        if self.kv_tokens_per_sequence and self.kv_tokens_per_sequence > self.max_model_len:
            out.append(Problem("kv_tokens_per_sequence", self.kv_tokens_per_sequence,
                               f"<= max_model_len ({self.max_model_len})"))
        for i, arg in enumerate(self.extra_args):
            flag = arg.split("=", 1)[0].replace("_", "-")
            if flag in RENDERED_FLAGS:
                out.append(Problem(f"extra_args[{i}]", arg, f"{flag} is set from a typed setting; use that instead"))
        if self.extra_args and not self.extra_args[0].startswith("--"):
            out.append(Problem("extra_args[0]", self.extra_args[0], "a flag starting with --"))
        return out

    def facts(self) -> ModelFacts | None:
        """Architecture facts: stated ones, else the catalogue's."""
        if self.model_facts is not None:
            return self.model_facts
        spec = model_catalog.lookup(self.model_id)
        if spec is None:
            return None
        return ModelFacts(parameters_billion=spec.parameters_billion, layers=spec.layers,
                          attention_heads=spec.attention_heads, kv_heads=spec.kv_heads, head_dim=spec.head_dim,
                          max_context=spec.max_context)


def parse_version(version: str) -> tuple[int, ...]:
    """``"v0.31.0"`` / ``"0.13.0"`` -> (0, 31, 0)."""
    return tuple(int(p) for p in re.findall(r"\d+", version.lstrip("v"))[:3])


def supports(flag: str, engine_version: str) -> bool:
    """Whether the engine at ``engine_version`` knows ``flag`` (per :data:`FLAG_MIN_VERSION`)."""
    need = FLAG_MIN_VERSION.get(flag)
    return need is None or parse_version(engine_version) >= need


def engine_drains(engine_version: str) -> bool:
    """Whether vLLM itself honours ``--shutdown-timeout`` at this version."""
    return parse_version(engine_version) >= ENGINE_DRAIN_MIN_VERSION


def render_args(s: VllmModelSettings, *, served_model_name: str, model_path: str,
                engine_version: str = versions.VLLM.version, port: int = PORT) -> list[str]:
    """`vllm serve` arguments (without ``vllm serve``) for one server.

    ``model_path`` is the positional model: the local directory the entrypoint fills from ``weights_uri``, or the hub
    id. The API key is not an argument (vLLM reads ``VLLM_API_KEY`` from the environment, set from a Secret), so it
    never shows in the Deployment or in ``ps``.
    """
    args = [
        model_path,
        "--served-model-name", s.served_model_name or served_model_name,
        "--host", "0.0.0.0",
        "--port", str(port),
        "--tensor-parallel-size", str(s.tensor_parallel_size),
        "--max-model-len", str(s.max_model_len),
        "--max-num-seqs", str(s.max_num_seqs),
        "--gpu-memory-utilization", f"{s.gpu_memory_utilization:g}",
        "--dtype", s.dtype,
    ]
    if s.quantization:
        args += ["--quantization", s.quantization]
    if s.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", s.kv_cache_dtype]
    args.append("--enable-prefix-caching" if s.enable_prefix_caching else "--no-enable-prefix-caching")
    args += ["--shutdown-timeout", str(s.shutdown_timeout_seconds)]
    if supports("--disable-access-log-for-endpoints", engine_version):
        args += ["--disable-access-log-for-endpoints", QUIET_ENDPOINTS]
    return args + list(s.extra_args)
