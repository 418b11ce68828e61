"""Model fit check: does a model, at its settings, fit the accelerators of the node group chosen for it?

Pure functions, no Pulumi. Memory model (per replica, all tensor-parallel shards together):

- weights = parameters x bytes per parameter (dtype, or the quantization's width);
- KV cache = 2 (K and V) x layers x KV heads x head dim x bytes per KV element, per token, for ``max_num_seqs``
  sequences of ``kv_tokens_per_sequence`` tokens (default ``max_model_len``: every sequence at full length, so the
  scheduler never has to preempt); one full-length sequence must always fit, or vLLM refuses to start;
- runtime overhead per accelerator (CUDA context, CUDA graphs, activations): :data:`RUNTIME_OVERHEAD_GIB`.

Capacity = memory per accelerator unit x ``gpu_memory_utilization`` x tensor parallel size. A unit is a GPU, a MIG
slice, or a NeuronCore (Inferentia2: 32 GiB per chip, 2 NeuronCores per chip). The model's facts are
:class:`components.catalog.models.ModelFacts`; the only imports besides the standard library are the catalogues.

Errors (the model cannot run as configured) and warnings (it runs, but the hardware is far too big) are returned as
sentences that name the model, the need in GiB and the capacity. :func:`fit_problems_from_manifest` runs the same
check from a rendered Deployment or LeaderWorkerSet member (container args, with ``--pipeline-parallel-size`` and
``--nnodes``, and the ``genai-scale/*`` annotations) for the policy pack.

Multi-node: a layout of ``nodes`` x ``tensor_parallel_size`` x ``pipeline_parallel_size`` is checked per accelerator
(:func:`check_layout`), and :func:`plan_layout` picks the fewest nodes that fit (TP = units per node, PP = nodes, the
vLLM docs' rule) for a model that does not fit one node; models that fit one node keep the single-node check.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import ValidationError

from components.catalog import accelerators
from components.catalog.models import ModelFacts
from components.catalog.vendors import VendorFacts, for_family

GIB = 1024 ** 3

RUNTIME_OVERHEAD_GIB = 1.5
"""Non-KV, non-weight memory per accelerator: CUDA context (~0.5 GiB) plus CUDA-graph and activation buffers.
(inference) Order of magnitude from vLLM startup logs ("Graph capturing finished ... took 0.5-1.5 GiB")."""

FAR_TOO_SMALL_FRACTION = 0.25
"""Warn when the need is below this share of the capacity (e.g. an 8B model on 8 x H100)."""

BYTES_PER_PARAMETER: dict[str, float] = {
    # unquantized weights by --dtype ("auto" loads the checkpoint's bf16/fp16)
    "auto": 2.0, "bfloat16": 2.0, "float16": 2.0, "half": 2.0, "float32": 4.0, "float": 4.0,
}
QUANTIZED_BYTES_PER_PARAMETER: dict[str, float] = {
    # 8-bit weights
    "fp8": 1.0, "fbgemm_fp8": 1.0, "experts_int8": 1.0, "fp8_per_tensor": 1.0, "fp8_per_block": 1.0,
    "fp8_per_channel": 1.0, "int8_per_channel_weight_only": 1.0, "mxfp8": 1.0, "modelopt_mxfp8": 1.0,
    # 4-bit weights plus per-group scales/zeros (group size 128: ~0.5 extra bits per weight)
    "awq": 0.5625, "awq_marlin": 0.5625, "auto_awq": 0.5625, "gptq": 0.5625, "gptq_marlin": 0.5625,
    "auto_gptq": 0.5625, "moe_wna16": 0.5625, "mxfp4": 0.5625, "modelopt_fp4": 0.5625,
}
"""Bytes per weight for the quantization methods this check knows; others are rejected by the settings model."""

KV_BYTES: dict[str, float | None] = {
    "auto": None,  # same as the weights' activation dtype (2 bytes for bf16/fp16 models)
    "float16": 2.0, "bfloat16": 2.0, "fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0,
}

# Seeds' sizing table (scalability guide, section 4.2 "decision framework"), as (upper bound in B params, advice).
SIZING_TABLE: tuple[tuple[float, str], ...] = (
    (7, "< 7B: one T4/L4-class GPU, with quantization"),
    (13, "7-13B: one A10G (24 GB) or A100-40GB"),
    (30, "13-30B: one A100-80GB or 2 x A10G with tensor parallelism"),
    (70, "30-70B: 2-4 x 80 GB GPUs with tensor parallelism"),
    (180, "70-180B: 4-8 x A100/H100 with tensor (and pipeline) parallelism"),
    (math.inf, "180B+: 8+ H100s across nodes"),
)

Severity = Literal["error", "warning"]


def sizing_advice(parameters_billion: float) -> str:
    """The seeds' recommendation for a model of this size."""
    return next(advice for bound, advice in SIZING_TABLE if parameters_billion < bound or bound == math.inf)


def bytes_per_parameter(dtype: str, quantization: str | None) -> float:
    if quantization:
        return QUANTIZED_BYTES_PER_PARAMETER[quantization]
    return BYTES_PER_PARAMETER[dtype]


def kv_bytes_per_element(kv_cache_dtype: str, dtype: str) -> float:
    explicit = KV_BYTES[kv_cache_dtype]
    if explicit is not None:
        return explicit
    return 4.0 if dtype in ("float32", "float") else 2.0


@dataclass(frozen=True)
class FitInput:
    """Everything the check needs: the model's facts, its vLLM settings and the accelerator unit it shards over."""

    model: str
    """Model id, as messages name it."""
    facts: ModelFacts
    """Architecture facts (catalogue or stated)."""
    dtype: str = "auto"
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    max_model_len: int = 4096
    max_num_seqs: int = 16
    kv_tokens_per_sequence: int | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    unit_memory_gib: float = 24.0
    """Memory of one accelerator unit (GPU, MIG slice or NeuronCore)."""
    units_per_node: int = 1
    """Units one pod can span on a node (GPUs, or NeuronCores)."""
    unit_name: str = "GPU"
    """What a unit is called in messages: "A10G GPU", "MIG 3g.40gb slice", "NeuronCore"."""
    instance_type: str = ""
    time_slicing_replicas: int | None = None
    pipeline_parallel_size: int = 1
    """Pipeline stages (vLLM ``--pipeline-parallel-size``); more than 1 with ``nodes`` > 1 is a multi-node layout."""
    nodes: int = 1
    """Nodes one replica spans (``tensor_parallel_size`` x ``pipeline_parallel_size`` units over this many nodes)."""

    @property
    def layout(self) -> Layout:
        return Layout(self.nodes, self.tensor_parallel_size, self.pipeline_parallel_size)


@dataclass
class FitReport:
    """The computed need and capacity, with every error and warning found."""

    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float
    need_gib: float
    min_need_gib: float
    capacity_gib: float
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pipeline_errors: list[int] = field(default_factory=list)
    """Indexes in ``errors`` of the errors about ``pipeline_parallel_size`` (multi-node layouts), so callers can
    point them at that setting."""


MAX_NODES = 8
"""Largest group :func:`plan_layout` tries (16 nodes x 8 GPUs would be a 128-GPU replica; 8 covers 405B-685B
models in BF16 on H100-class nodes with room to spare)."""


@dataclass(frozen=True)
class Layout:
    """How one replica spreads over accelerators: ``nodes`` nodes, ``tensor_parallel_size`` shards per pipeline stage
    and ``pipeline_parallel_size`` stages. The vLLM docs' rule across nodes: TP = GPUs per node, PP = nodes
    (``docs/serving/parallelism_scaling.md``)."""

    nodes: int = 1
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1

    @property
    def units(self) -> int:
        """Accelerator units the replica uses (TP x PP)."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def multi_node(self) -> bool:
        return self.nodes > 1


def kv_cache_bytes_per_token(f: FitInput) -> float:
    m = f.facts
    return 2 * m.layers * m.kv_heads * m.head_dim * kv_bytes_per_element(f.kv_cache_dtype, f.dtype)


def check_fit(f: FitInput) -> FitReport:
    """Weights plus KV cache against accelerator memory x utilization x tensor parallel size (a single-node replica),
    or per accelerator for a multi-node or pipeline-parallel layout (:func:`check_layout`)."""
    if f.nodes > 1 or f.pipeline_parallel_size > 1:
        return check_layout(f)
    tp, m = f.tensor_parallel_size, f.facts
    weights = m.parameters_billion * 1e9 * bytes_per_parameter(f.dtype, f.quantization) / GIB
    per_token = kv_cache_bytes_per_token(f)
    tokens_per_seq = f.kv_tokens_per_sequence or f.max_model_len
    kv = per_token * tokens_per_seq * f.max_num_seqs / GIB
    kv_one = per_token * f.max_model_len / GIB
    overhead = RUNTIME_OVERHEAD_GIB * tp
    need = weights + kv + overhead
    min_need = weights + kv_one + overhead
    capacity = f.unit_memory_gib * f.gpu_memory_utilization * tp
    report = FitReport(round(weights, 2), round(kv, 2), round(overhead, 2), round(need, 2), round(min_need, 2),
                       round(capacity, 2))
    where = f"{tp} x {f.unit_name}" + (f" of the {f.units_per_node} on one {f.instance_type}" if f.instance_type else "")
    cap = (f"{capacity:.1f} GiB ({where}, {f.unit_memory_gib:.1f} GiB each x gpu_memory_utilization "
           f"{f.gpu_memory_utilization:g})")
    advice = f"seeds' sizing: {sizing_advice(m.parameters_billion)}"

    if f.max_model_len > m.max_context:
        report.errors.append(f"{f.model}: max_model_len {f.max_model_len} exceeds the model's context of "
                             f"{m.max_context} tokens")
    if m.attention_heads % tp:
        report.errors.append(f"{f.model}: tensor_parallel_size {tp} must divide the {m.attention_heads} attention "
                             f"heads (sizes that do, up to the {f.units_per_node} per node: "
                             f"{_divisors(m.attention_heads, f.units_per_node)})")
    elif m.kv_heads % tp and tp % m.kv_heads:
        report.errors.append(f"{f.model}: tensor_parallel_size {tp} must divide the {m.kv_heads} KV heads or be a "
                             f"multiple of them")
    if tp > f.units_per_node:
        report.errors.append(f"{f.model}: tensor_parallel_size {tp} exceeds the {f.units_per_node} "
                             f"{f.unit_name}(s) of one {f.instance_type or 'node'}")
    if f.time_slicing_replicas and f.gpu_memory_utilization * f.time_slicing_replicas > 1.0:
        report.errors.append(
            f"{f.model}: gpu_memory_utilization {f.gpu_memory_utilization:g} x {f.time_slicing_replicas} "
            f"time-sliced replicas > 1.0; time-slicing has no memory isolation, so each replica may claim at most "
            f"{1 / f.time_slicing_replicas:.2f} of the GPU")

    if min_need > capacity:
        report.errors.append(
            f"{f.model} does not fit: weights {weights:.1f} GiB + KV cache for one {f.max_model_len}-token sequence "
            f"{kv_one:.1f} GiB + runtime {overhead:.1f} GiB = {min_need:.1f} GiB, capacity {cap}; use quantization, "
            f"a shorter max_model_len or more/larger accelerators ({advice})")
    elif need > capacity:
        fits = int((capacity - weights - overhead) // (per_token * tokens_per_seq / GIB)) if per_token else 0
        report.errors.append(
            f"{f.model} does not fit at max_num_seqs {f.max_num_seqs}: weights {weights:.1f} GiB + KV cache "
            f"{kv:.1f} GiB ({f.max_num_seqs} x {tokens_per_seq} tokens) + runtime {overhead:.1f} GiB = {need:.1f} GiB, "
            f"capacity {cap}; at most {max(fits, 1)} sequences of {tokens_per_seq} tokens fit (lower max_num_seqs, "
            f"set kv_tokens_per_sequence to the typical length, or use more memory)")
    elif need < FAR_TOO_SMALL_FRACTION * capacity:
        report.warnings.append(
            f"{f.model} uses {need:.1f} GiB of {cap} ({need / capacity:.0%}): far more accelerator memory than it "
            f"needs; a smaller instance or a lower tensor_parallel_size would cost less ({advice})")
    return report


def check_layout(f: FitInput) -> FitReport:
    """The fit of a layout of ``tensor_parallel_size`` x ``pipeline_parallel_size`` units over ``nodes`` nodes, per
    accelerator unit: TP splits every layer (and the KV heads, replicated when TP exceeds them), PP splits the layers.
    Rejects a layout whose TP x PP does not fill ``nodes`` x units per node, TP beyond one node (TP across nodes runs
    over the network: use PP across nodes), TP not dividing the attention heads and PP not dividing the layers."""
    tp, pp, nodes, m = f.tensor_parallel_size, f.pipeline_parallel_size, f.nodes, f.facts
    units = tp * pp
    weights = m.parameters_billion * 1e9 * bytes_per_parameter(f.dtype, f.quantization) / GIB
    per_token = kv_cache_bytes_per_token(f)
    tokens_per_seq = f.kv_tokens_per_sequence or f.max_model_len
    kv = per_token * tokens_per_seq * f.max_num_seqs / GIB
    kv_one = per_token * f.max_model_len / GIB
    kv_shards = min(tp, m.kv_heads) * pp  # KV heads are replicated, not split, beyond tp = kv_heads
    unit_cap = f.unit_memory_gib * f.gpu_memory_utilization
    w_u, kv_u, kv_one_u = weights / units, kv / kv_shards, kv_one / kv_shards
    need_u, min_need_u = w_u + kv_u + RUNTIME_OVERHEAD_GIB, w_u + kv_one_u + RUNTIME_OVERHEAD_GIB
    report = FitReport(round(weights, 2), round(kv, 2), round(RUNTIME_OVERHEAD_GIB * units, 2),
                       round(need_u * units, 2), round(min_need_u * units, 2), round(unit_cap * units, 2))
    shape = (f"TP {tp} x PP {pp} over {nodes} x {f.instance_type or 'node'} ({f.units_per_node} {f.unit_name}(s) "
             f"each)")
    cap = (f"{unit_cap:.1f} GiB per {f.unit_name} ({f.unit_memory_gib:.1f} GiB x gpu_memory_utilization "
           f"{f.gpu_memory_utilization:g})")
    e = report.errors
    if f.max_model_len > m.max_context:
        e.append(f"{f.model}: max_model_len {f.max_model_len} exceeds the model's context of {m.max_context} tokens")
    if units != nodes * f.units_per_node:
        report.pipeline_errors.append(len(e))
        e.append(f"{f.model}: layout {shape} uses {units} {f.unit_name}(s) but {nodes} nodes hold "
                 f"{nodes * f.units_per_node}; tensor_parallel_size x pipeline_parallel_size must equal nodes x "
                 f"{f.unit_name}s per node (the vLLM docs' rule: TP = {f.unit_name}s per node, PP = nodes)")
    if tp > f.units_per_node:
        e.append(f"{f.model}: tensor_parallel_size {tp} exceeds the {f.units_per_node} {f.unit_name}(s) of one "
                 f"{f.instance_type or 'node'}; across nodes use pipeline parallelism (TP = {f.unit_name}s per node, "
                 f"PP = nodes)")
    if m.attention_heads % tp:
        e.append(f"{f.model}: tensor_parallel_size {tp} must divide the {m.attention_heads} attention heads (sizes "
                 f"that do, up to the {f.units_per_node} per node: {_divisors(m.attention_heads, f.units_per_node)})")
    elif m.kv_heads % tp and tp % m.kv_heads:
        e.append(f"{f.model}: tensor_parallel_size {tp} must divide the {m.kv_heads} KV heads or be a multiple of them")
    if m.layers % pp:
        report.pipeline_errors.append(len(e))
        e.append(f"{f.model}: pipeline_parallel_size {pp} must divide the model's {m.layers} layers (sizes that do, "
                 f"up to {MAX_NODES}: {_divisors(m.layers, MAX_NODES)})")
    if min_need_u > unit_cap:
        e.append(f"{f.model} does not fit {shape}: per {f.unit_name} weights {w_u:.1f} GiB ({weights:.1f} / {units}) "
                 f"+ KV cache for one {f.max_model_len}-token sequence {kv_one_u:.1f} GiB + runtime "
                 f"{RUNTIME_OVERHEAD_GIB:.1f} GiB = {min_need_u:.1f} GiB, capacity {cap}; use more nodes, "
                 f"quantization or a shorter max_model_len")
    elif need_u > unit_cap:
        e.append(f"{f.model} does not fit {shape} at max_num_seqs {f.max_num_seqs}: per {f.unit_name} weights "
                 f"{w_u:.1f} GiB + KV cache {kv_u:.1f} GiB ({f.max_num_seqs} x {tokens_per_seq} tokens / "
                 f"{kv_shards}) + runtime {RUNTIME_OVERHEAD_GIB:.1f} GiB = {need_u:.1f} GiB, capacity {cap}; lower "
                 f"max_num_seqs, set kv_tokens_per_sequence to the typical length, or use more nodes")
    return report


def plan_layout(f: FitInput, *, max_nodes: int = MAX_NODES) -> tuple[FitInput, FitReport]:
    """The layout to serve with: ``f`` itself when it fits one node (its report unchanged) or when more nodes cannot
    help (an error other than memory); else the fewest nodes, 2 to ``max_nodes``, with TP = units per node and
    PP = nodes that fit. When none does, ``f``'s report with one more error naming the largest layout tried.
    Returns the chosen input (``.layout`` gives nodes, TP, PP) and its report."""
    report = check_fit(f)
    if not report.errors or f.nodes > 1 or f.pipeline_parallel_size > 1:
        return f, report
    if any("does not fit" not in e for e in report.errors):
        return f, report
    last = None
    for nodes in range(2, max_nodes + 1):
        candidate = replace(f, nodes=nodes, tensor_parallel_size=f.units_per_node, pipeline_parallel_size=nodes)
        last = check_fit(candidate)
        if not last.errors:
            return candidate, last
    if last is not None:
        report.errors.append(f"{f.model}: no multi-node layout of up to {max_nodes} nodes fits either: "
                             + "; ".join(last.errors))
    return f, report


def _divisors(heads: int, limit: int) -> str:
    return ", ".join(str(d) for d in range(1, max(limit, 1) + 1) if heads % d == 0)


# --- from a rendered manifest (policy pack) ---

ANNOTATION_PREFIX = "genai-scale/"
ANNOTATIONS = (
    "model", "model-parameters-billion", "model-layers", "model-attention-heads", "model-kv-heads", "model-head-dim",
    "model-max-context", "instance-type", "accelerator", "accelerator-count", "accelerator-memory-gib",
    "gpu-sharing", "time-slicing-replicas", "kv-tokens-per-sequence",
)
"""Annotation names (after ``genai-scale/``) a vLLM Deployment carries so its fit can be checked from the manifest."""

_FLAG_DEFAULTS = {
    # vLLM defaults for flags the check reads, used when the manifest does not set them
    "--tensor-parallel-size": "1", "--gpu-memory-utilization": "0.9", "--dtype": "auto", "--kv-cache-dtype": "auto",
    "--max-num-seqs": "256", "--quantization": "", "--pipeline-parallel-size": "1", "--nnodes": "1",
}


def _flag_values(args: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if "=" in a:
                k, v = a.split("=", 1)
                out[k.replace("_", "-")] = v
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                out[a.replace("_", "-")] = args[i + 1]
                i += 1
            else:
                out[a.replace("_", "-")] = "true"
        i += 1
    return out


def fit_input_from_manifest(container_args: list[str], annotations: dict[str, str]) -> tuple[FitInput | None,
                                                                                                list[str]]:
    """Rebuild the check's input from container args and ``genai-scale/*`` annotations, or say what is missing."""
    ann = {k[len(ANNOTATION_PREFIX):]: v for k, v in (annotations or {}).items() if k.startswith(ANNOTATION_PREFIX)}
    required = ("model-parameters-billion", "model-layers", "model-attention-heads", "model-kv-heads",
                "model-head-dim", "model-max-context", "accelerator-count", "accelerator-memory-gib")
    missing = [f"{ANNOTATION_PREFIX}{k}" for k in required if k not in ann]
    flags = {**_FLAG_DEFAULTS, **_flag_values(list(container_args or []))}
    if "--max-model-len" not in flags:
        missing.append("--max-model-len (container args)")
    if missing:
        return None, [f"cannot check the model's fit: missing {', '.join(missing)}"]
    try:
        sharing = ann.get("gpu-sharing", "dedicated")
        facts = ModelFacts(
            parameters_billion=float(ann["model-parameters-billion"]),
            layers=int(ann["model-layers"]), attention_heads=int(ann["model-attention-heads"]),
            kv_heads=int(ann["model-kv-heads"]), head_dim=int(ann["model-head-dim"]),
            max_context=int(ann["model-max-context"]))
        fi = FitInput(
            model=ann.get("model", "model"), facts=facts,
            dtype=flags["--dtype"], quantization=flags["--quantization"] or None,
            kv_cache_dtype=flags["--kv-cache-dtype"], max_model_len=int(flags["--max-model-len"]),
            max_num_seqs=int(flags["--max-num-seqs"]),
            kv_tokens_per_sequence=int(ann["kv-tokens-per-sequence"]) if ann.get("kv-tokens-per-sequence") else None,
            tensor_parallel_size=int(flags["--tensor-parallel-size"]),
            gpu_memory_utilization=float(flags["--gpu-memory-utilization"]),
            unit_memory_gib=float(ann["accelerator-memory-gib"]), units_per_node=int(ann["accelerator-count"]),
            unit_name=_unit_name(ann.get("accelerator", "accelerator"), sharing, ann.get("instance-type", "")),
            instance_type=ann.get("instance-type", ""),
            time_slicing_replicas=int(ann["time-slicing-replicas"]) if sharing == "time-sliced" and
            ann.get("time-slicing-replicas") else None,
            pipeline_parallel_size=int(flags["--pipeline-parallel-size"]), nodes=int(flags["--nnodes"]),
        )
    except ValidationError as exc:  # a model fact out of range (0 layers, ...)
        shown = "; ".join(f"{ANNOTATION_PREFIX}model-{str(e['loc'][0]).replace('_', '-')} {e['msg'].lower()}"
                          for e in exc.errors())
        return None, [f"cannot check the model's fit: {shown}"]
    except (ValueError, KeyError) as exc:
        return None, [f"cannot check the model's fit: unreadable value ({exc})"]
    if fi.dtype not in BYTES_PER_PARAMETER or (fi.quantization and fi.quantization not in
                                                 QUANTIZED_BYTES_PER_PARAMETER) or fi.kv_cache_dtype not in KV_BYTES:
        return None, [f"cannot check the model's fit: unknown --dtype {fi.dtype!r}, --quantization "
                      f"{fi.quantization!r} or --kv-cache-dtype {fi.kv_cache_dtype!r}"]
    return fi, []


def _vendor(accelerator: str, instance_type: str) -> VendorFacts | None:
    """The vendor of the annotated accelerator: by instance type (catalogue, else its family), else by model name."""
    spec = accelerators.lookup(instance_type) if instance_type else None
    if spec is not None:
        return spec.vendor_facts
    found = for_family(instance_type.split(".", 1)[0]) if instance_type else None
    if found is not None:
        return found
    known = {s.accelerator.lower(): s for s in accelerators.CATALOG.values()}
    return known[accelerator.lower()].vendor_facts if accelerator.lower() in known else None


def unit_name(accelerator: str, vendor: VendorFacts | None, sharing: str = "dedicated",
              mig_profile: str | None = None) -> str:
    """What one tensor-parallel shard runs on, in messages: "A10G GPU", "NeuronCore", "H100 MIG 3g.40gb slice"."""
    if vendor is not None and vendor.shards_over == "cores":
        return vendor.unit_name
    if sharing.startswith("mig"):
        return f"{accelerator} MIG {mig_profile} slice" if mig_profile else f"{accelerator} MIG slice"
    device = f"{accelerator} {vendor.unit_name if vendor else 'GPU'}"
    return f"{device} (time-sliced)" if sharing == "time-sliced" else device


def _unit_name(accelerator: str, sharing: str, instance_type: str = "") -> str:
    return unit_name(accelerator, _vendor(accelerator, instance_type), "mig" if sharing.startswith("mig") else "dedicated")


def fit_problems_from_manifest(container_args: list[str], annotations: dict[str, str]) -> list[str]:
    """Errors of the fit check for a rendered vLLM Deployment; empty when the model fits.

    ``container_args`` are the vLLM container's args (``vllm serve`` arguments); ``annotations`` the Deployment's
    metadata annotations (``genai-scale/model-parameters-billion``, ``genai-scale/accelerator-memory-gib``, ...).
    """
    fi, problems = fit_input_from_manifest(container_args, annotations)
    if fi is None:
        return problems
    return check_fit(fi).errors


def fit_warnings_from_manifest(container_args: list[str], annotations: dict[str, str]) -> list[str]:
    """Warnings of the fit check (far too much hardware) for a rendered vLLM Deployment."""
    fi, _ = fit_input_from_manifest(container_args, annotations)
    return check_fit(fi).warnings if fi else []


_MIG_MEMORY = re.compile(r"^\d+g\.(\d+)gb$")


def mig_memory_gib(profile: str) -> float | None:
    """Memory of a MIG profile such as ``3g.40gb`` in GiB (NVIDIA names it in GB: 40 GB = 37.25 GiB)."""
    m = _MIG_MEMORY.match(profile)
    return round(int(m.group(1)) * 1e9 / GIB, 2) if m else None
