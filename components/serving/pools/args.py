"""Typed arguments of a :class:`components.serving.pools.pool.ModelPool`, with every cross-field rule. Pure: no Pulumi.

A pool is a node group, a replica range, the models it may serve (base models, and LoRA adapters on a base model, each
with its weights under a prefix of the models bucket) and a policy (:mod:`components.serving.pools.strategy`).
:meth:`ModelPoolArgs.problems` lists every problem at once: the policy's text, the fit of each model with its KV cache
on its share of the GPU (:mod:`components.serving.vllm.fit`), adapter ranks against ``max_lora_rank`` (one of vLLM's
allowed values), the MIG configuration on the node group's GPU (:mod:`components.catalog.mig_profiles`) and on the
node group, time-slicing shares against the node group, the hot set against the GPU memory and, for level-1 sleep, the
sleeping engines' weights against the node's host RAM (:mod:`components.catalog.accelerators`).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from components import versions
from components.base import ArgsModel, PulumiInput
from components.catalog import mig_profiles
from components.catalog.mig_profiles import MigConfig
from components.catalog import models as model_catalog
from components.catalog.models import ModelFacts
from components.serving.pools.strategy import Policy, PolicyError, Workload, mismatch_warning, parse_policy
from components.serving.vllm.args import (PORT, AutoscalingSettings, Dtype, KvCacheDtype, MigStrategy,
                                          NodeGroupPlacement, Quantization, VllmModelSettings, VllmServiceArgs)
from components.serving.vllm.fit import FitInput, FitReport, check_fit, unit_name
from problems import Problem

MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""Values vLLM accepts for ``--max-lora-rank`` (``vllm.config.lora.MaxLoRARanks`` at the pinned version; a test checks
it against the installed vLLM)."""

HOST_RAM_USABLE_FRACTION = 0.75
"""Share of a node's RAM the pool's engines may fill with sleeping weights: the rest is for the kubelet, the node's
daemons and the engines' own processes (the same 75 % the dedicated services request of their node share)."""

ENGINE_PROCESS_RAM_GIB = 4
"""Host RAM one engine process needs besides sleeping weights (Python, CUDA host buffers, tokenizer): its memory
request. (inference) Order of magnitude of an idle vLLM API server's resident memory."""

_NAME = re.compile(r"^[a-z0-9]([a-z0-9.\-]{0,61}[a-z0-9])?$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,1000}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_MODEL_DEFAULTS = VllmModelSettings.model_fields
"""Engine defaults come from :class:`VllmModelSettings` (a default lives in one place)."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, use_attribute_docstrings=True)


class PoolAdapter(_Settings):
    """A LoRA adapter on a pool's base model, loaded at runtime by the gateway's pool controller."""

    weights_prefix: str = Field(min_length=1)
    """Prefix of the adapter's files (``adapter_config.json``, ``adapter_model.safetensors``) in the models bucket."""
    rank: int = Field(default=16, ge=1, le=512)
    """The adapter's LoRA rank ``r`` (its ``adapter_config.json``); must be <= the pool's ``max_lora_rank``.
    Default: 16."""


class PoolModel(_Settings):
    """A base model of a pool: one vLLM engine per replica (dynamic) or one Deployment (the other policies)."""

    model_id: str = Field(min_length=1)
    """Hugging Face model id, e.g. ``meta-llama/Llama-3.1-8B-Instruct``; in the model catalogue unless
    ``model_facts`` is given."""
    weights_prefix: str | None = None
    """Prefix of the weights in the models bucket. Default: the model id."""
    model_facts: ModelFacts | None = None
    """Architecture facts for a model outside the catalogue. Default: the catalogue's."""
    tensor_parallel_size: int = Field(default=_MODEL_DEFAULTS["tensor_parallel_size"].default, ge=1, le=64)
    """GPUs one engine shards the model over (``--tensor-parallel-size``); above 1 only with the dedicated policy
    (a single large model on several GPUs). Default: 1."""
    max_model_len: int = Field(default=_MODEL_DEFAULTS["max_model_len"].default, ge=128, le=1_048_576)
    """Longest prompt + output in tokens (``--max-model-len``). Default: as for dedicated services (4096)."""
    max_num_seqs: int = Field(default=_MODEL_DEFAULTS["max_num_seqs"].default, ge=1, le=4096)
    """Sequences batched at once per engine (``--max-num-seqs``). Default: as for dedicated services (16)."""
    kv_tokens_per_sequence: int | None = Field(default=None, ge=1)
    """KV-cache tokens the fit check reserves per sequence. Default: ``max_model_len``."""
    dtype: Dtype = "auto"
    """``--dtype``. Default: auto."""
    quantization: Quantization | None = None
    """``--quantization``. Default: none."""
    kv_cache_dtype: KvCacheDtype = "auto"
    """``--kv-cache-dtype``. Default: auto."""
    keep_hot: bool = False
    """Never put this model to sleep or evict it (it takes one of the hot slots). Default: off."""
    adapters: dict[str, PoolAdapter] = Field(default_factory=dict)
    """LoRA adapters on this model, by the name clients send as ``model``. Default: none."""


Eviction = Literal["lru", "lfu", "cost-aware"]
"""The gateway's eviction policies (serving/gateway/pool_policy.py ``POLICIES``; a test keeps them equal)."""


class ModelPoolArgs(ArgsModel):
    """Arguments of :class:`components.serving.pools.pool.ModelPool`."""

    models: dict[str, PoolModel] = Field(min_length=1)
    """Base models by the name clients send as ``model`` (engine order = this order: ports 8000, 8001, ...)."""
    placement: NodeGroupPlacement
    """The node group the pool runs on (:func:`components.serving.vllm.args.placement_from_node_group`)."""
    image: PulumiInput
    """vLLM container image (the NVIDIA :class:`components.serving.vllm.image.VllmImage` reference)."""
    policy: str = "dynamic"
    """How the pool divides its GPUs: ``dedicated``, ``mig:<config>``, ``time-slicing:<n>`` or ``dynamic``
    (see :mod:`components.serving.pools.pool`). Default: dynamic."""
    workload: Workload | None = None
    """The seed's workload this pool serves; the plan prints the recommended policy and warns when ``policy``
    differs. Default: none (no recommendation)."""
    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Replicas kept running (per model for the non-dynamic policies). Default: 1."""
    max_replicas: int = Field(default=2, ge=1, le=1000)
    """Upper bound of the replicas. Default: 2."""
    hot_engines_per_replica: int = Field(default=1, ge=1, le=64)
    """dynamic: engines awake at once in one replica; each gets ``gpu_memory_utilization / hot_engines_per_replica``
    of the GPU. Default: 1."""
    sleep_level: Literal[1, 2] = 1
    """dynamic: 1 offloads a sleeping engine's weights to host RAM (wakes in seconds), 2 discards them (wakes by
    reloading from disk). Default: 1."""
    max_loras: int = Field(default=4, ge=1, le=256)
    """Adapters one engine serves in a batch (``--max-loras``). Default: 4."""
    max_lora_rank: int = 16
    """Largest adapter rank (``--max-lora-rank``; one of 1, 8, 16, 32, 64, 128, 256, 320, 512). Default: 16."""
    max_cpu_loras: int | None = Field(default=None, ge=1, le=4096)
    """Adapters one engine caches in host RAM (``--max-cpu-loras``). Default: 4 x ``max_loras``."""
    hold_timeout_seconds: int = Field(default=60, ge=1, le=3600)
    """Gateway: how long a request for a cold model waits for it to wake or load. Default: 60."""
    load_timeout_seconds: int = Field(default=300, ge=10, le=7200)
    """Gateway: a wake or load that takes longer is failed. Default: 300."""
    eviction: Eviction = "lru"
    """Gateway: which hot model to put to sleep when the hot slots are full: lru, lfu (decayed request count) or
    cost-aware (the count weighed by the reload time). Default: lru, which bench/pools shows needs the fewest GPUs for
    the latency goal (docs/pools.md)."""
    gpu_memory_utilization: float = Field(default=_MODEL_DEFAULTS["gpu_memory_utilization"].default, gt=0, le=0.98)
    """Share of each GPU (or MIG slice) the pool's engines may use together; time-slicing and dynamic pools divide
    it among the engines sharing a GPU. Default: as for dedicated services (0.9)."""
    models_bucket: str | None = None
    """S3 bucket holding the weights (``weights_prefix`` of models and adapters). Default: none, which needs
    ``allow_hub_download``."""
    allow_hub_download: bool = False
    """Download base models from the Hugging Face hub when ``models_bucket`` is not set. Default: off."""
    namespace: str = "genai-serving"
    """Kubernetes namespace (must exist). Default: genai-serving."""
    engine_version: str = versions.VLLM.version
    """vLLM version inside ``image``. Default: the pinned NVIDIA engine."""
    mig_strategy: MigStrategy = "none"
    """The GPU operator's MIG strategy (``mig:`` policies need single or mixed; all-balanced needs mixed).
    Default: none."""
    api_key: bool = True
    """Require an API key on every engine (random, in a Secret, read by vLLM as ``VLLM_API_KEY``). Default: on."""
    gateway_namespaces: list[str] = Field(default_factory=lambda: ["genai-gateway"])
    """Namespaces of the gateway pods, the only clients of the engines (and of their admin endpoints).
    Default: genai-gateway."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus (allowed to scrape ``/metrics``). Default: monitoring."""
    autoscaling: AutoscalingSettings = Field(default_factory=AutoscalingSettings)
    """KEDA settings of the non-dynamic policies' Deployments and the dynamic pool's polling, cooldown and HPA
    behaviour (its replica bounds are ``min_replicas``/``max_replicas``). Default: as for dedicated services."""
    held_requests_per_replica: int = Field(default=4, ge=1, le=10_000)
    """dynamic: gateway requests held for a cold model (``gateway_pool_held_requests``) per replica before adding
    one. Default: 4."""
    keda: bool = True
    """Create the KEDA ScaledObject(s). Off: a fixed ``min_replicas``. Default: on."""
    prometheus_url: PulumiInput = None
    """Prometheus the KEDA triggers query. Default: none (required with ``keda``)."""
    startup_timeout_seconds: int = Field(default=1200, ge=60, le=7200)
    """Time the startup probe allows one engine (download, load, compile, CUDA graphs). Default: 1200."""
    pre_stop_seconds: int = Field(default=15, ge=0, le=300)
    """preStop delay so endpoints drop the pod before the engines stop. Default: 15."""
    oidc_provider_arn: PulumiInput = None
    """Cluster OIDC provider ARN for the weights role (IRSA). Required with ``models_bucket`` unless ``cluster``."""
    oidc_issuer: PulumiInput = None
    """Cluster OIDC issuer (host/path, no scheme). Required with ``models_bucket`` unless ``cluster``."""
    cluster: PulumiInput = None
    """The EksCluster: OIDC settings and the Kubernetes provider default from it. Default: none."""
    weights_kms_key_arn: str | None = None
    """KMS key of the models bucket when it uses SSE-KMS (adds ``kms:Decrypt``). Default: none."""
    compile_cache_claim: str | None = None
    """The shared compile-cache claim (ReadWriteMany PVC in ``namespace``), mounted as for a dedicated service
    (:attr:`VllmServiceArgs.compile_cache_claim`) in a sub-directory per pool (dynamic) or per model. Default: none
    (compile caches on the pod's emptyDir)."""
    after: list[Any] = Field(default_factory=list)
    """Resources the custom resources wait for (KEDA, Prometheus operator). Default: none."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for the AWS resources (the IRSA role and policy). Default: none."""

    # --- derived ---

    @property
    def parsed_policy(self) -> Policy:
        """The parsed ``policy`` (valid args only)."""
        return parse_policy(self.policy)

    @property
    def cpu_loras(self) -> int:
        """``--max-cpu-loras``: the set value, else 4 x ``max_loras``."""
        return self.max_cpu_loras or 4 * self.max_loras

    def engine_ports(self) -> dict[str, int]:
        """Port of each base model's engine in a dynamic replica: 8000 + its index in ``models``."""
        return {name: PORT + i for i, name in enumerate(self.models)}

    def weights_uri(self, prefix: str) -> str | None:
        """``s3://<models_bucket>/<prefix>/``, or None without a bucket."""
        return f"s3://{self.models_bucket}/{prefix.strip('/')}/" if self.models_bucket else None

    def model_weights_prefix(self, name: str) -> str:
        m = self.models[name]
        return m.weights_prefix or m.model_id

    def weights_prefixes(self) -> list[str]:
        """Every prefix the pool's pods read (base models and adapters), for the IRSA policy."""
        out = [self.model_weights_prefix(n) for n in self.models]
        out += [a.weights_prefix for m in self.models.values() for a in m.adapters.values()]
        return sorted({p.strip("/") for p in out})

    def engine_memory_utilization(self) -> float:
        """``--gpu-memory-utilization`` of each engine: the pool's share divided by the engines sharing one GPU
        (time-slicing: n; dynamic: the hot slots), rounded down to 3 decimals."""
        p = self.parsed_policy
        share = {"time-slicing": p.slices or 1, "dynamic": self.hot_engines_per_replica}.get(p.kind, 1)
        return math.floor(self.gpu_memory_utilization / share * 1000) / 1000

    def mig_config(self) -> MigConfig | None:
        """The policy's MIG configuration on the node group's GPU (``mig:`` policies)."""
        p = self.parsed_policy
        return mig_profiles.lookup(self.placement.accelerator, p.mig_profile or "") if p.kind == "mig" else None

    def mig_slice_for(self, name: str) -> str | None:
        """The MIG profile a model's engine runs on: the smallest slice of the configuration it fits."""
        config = self.mig_config()
        if config is None:
            return None
        for s in sorted(config.slices, key=lambda s: s.memory_gb):
            if not self._fit(name, "mig", s.profile).errors:
                return s.profile
        return max(config.slices, key=lambda s: s.memory_gb).profile

    def model_settings(self, name: str) -> VllmModelSettings:
        """The engine's vLLM settings (rendered by :func:`components.serving.vllm.args.render_args`)."""
        m = self.models[name]
        return VllmModelSettings(
            model_id=m.model_id, served_model_name=name, weights_uri=self.weights_uri(self.model_weights_prefix(name)),
            allow_hub_download=self.allow_hub_download or self.models_bucket is None, model_facts=m.model_facts,
            tensor_parallel_size=m.tensor_parallel_size, max_model_len=m.max_model_len, max_num_seqs=m.max_num_seqs,
            kv_tokens_per_sequence=m.kv_tokens_per_sequence, gpu_memory_utilization=self.engine_memory_utilization(), dtype=m.dtype, quantization=m.quantization,
            kv_cache_dtype=m.kv_cache_dtype)

    def service_args(self, name: str) -> VllmServiceArgs:
        """dedicated, mig and time-slicing pools: the :class:`VllmServiceArgs` of one model's Deployment."""
        p = self.parsed_policy
        sharing = {"mig": "mig", "time-slicing": "time-sliced"}.get(p.kind, "dedicated")
        return VllmServiceArgs(
            model=self.model_settings(name), placement=self.placement, image=self.image, namespace=self.namespace,
            engine_version=self.engine_version, gpu_sharing=sharing,  # type: ignore[arg-type]
            mig_profile=self.mig_slice_for(name) if p.kind == "mig" else None,
            mig_strategy=self.mig_strategy if p.kind == "mig" else "none",
            autoscaling=self.autoscaling.model_copy(update={"min_replicas": self.min_replicas,
                                                            "max_replicas": self.max_replicas}),
            keda=self.keda, prometheus_url=self.prometheus_url, pre_stop_seconds=self.pre_stop_seconds,
            startup_timeout_seconds=self.startup_timeout_seconds, api_key=self.api_key,
            client_namespaces=list(self.gateway_namespaces), monitoring_namespace=self.monitoring_namespace,
            gateway_upstream=f"vllm-{name}", oidc_provider_arn=self.oidc_provider_arn, oidc_issuer=self.oidc_issuer,
            cluster=self.cluster, weights_kms_key_arn=self.weights_kms_key_arn,
            compile_cache_claim=self.compile_cache_claim, after=list(self.after), tags=dict(self.tags))

    def fit(self, name: str) -> FitReport:
        """The fit check of one model on its share of the GPU under the pool's policy."""
        p = self.parsed_policy
        return self._fit(name, p.kind, self.mig_slice_for(name) if p.kind == "mig" else None)

    def _fit(self, name: str, kind: str, mig_profile: str | None) -> FitReport:
        m, spec = self.models[name], self.placement.accelerator
        facts = self.facts(name)
        assert facts is not None
        if kind == "mig":
            sl = next(s for s in (self.mig_config() or _NO_MIG).slices if s.profile == mig_profile)
            unit_gib, units, sharing = sl.memory_gib, 1, "mig"
        elif kind in ("time-slicing", "dynamic"):
            unit_gib, units, sharing = spec.memory_gib, 1, "time-sliced"
        else:
            unit_gib, units, sharing = spec.memory_gib, spec.count, "dedicated"
        return check_fit(FitInput(
            model=f"{name} ({m.model_id})", facts=facts, dtype=m.dtype, quantization=m.quantization,
            kv_cache_dtype=m.kv_cache_dtype, max_model_len=m.max_model_len, max_num_seqs=m.max_num_seqs,
            kv_tokens_per_sequence=m.kv_tokens_per_sequence, tensor_parallel_size=m.tensor_parallel_size,
            gpu_memory_utilization=self.engine_memory_utilization() if kind != "mig" else self.gpu_memory_utilization,
            unit_memory_gib=round(unit_gib, 2), units_per_node=units,
            unit_name=unit_name(spec.accelerator, spec.vendor_facts, sharing, mig_profile),
            instance_type=spec.instance_type))

    def facts(self, name: str) -> ModelFacts | None:
        """Architecture facts of a model: stated ones, else the catalogue's."""
        m = self.models[name]
        if m.model_facts is not None:
            return m.model_facts
        spec = model_catalog.lookup(m.model_id)
        return spec.facts if spec is not None else None

    def weights_gib(self, name: str) -> float:
        """The model's weights in GiB (what level-1 sleep moves to host RAM)."""
        return self.fit(name).weights_gib

    def warnings(self) -> list[str]:
        """Advice that does not stop the plan: the workload's recommendation when the policy differs."""
        if self.workload is None:
            return []
        w = mismatch_warning(self.workload, self.parsed_policy)
        return [w] if w else []

    # --- rules ---

    def problems(self) -> list[Problem]:
        try:
            policy = parse_policy(self.policy)
        except PolicyError as exc:
            return [exc.problem("policy"), *self._name_problems()]
        out = self._name_problems()
        if self.autoscaling.cron_floors:
            out.append(Problem("autoscaling.cron_floors", len(self.autoscaling.cron_floors),
                               "empty: a pool's ScaledObject renders no cron triggers (pre-scale a VllmService)"))
        out += self._replica_problems()
        out += self._lora_problems()
        out += self._policy_problems(policy)
        if any(p.path == "policy" or p.path.endswith(".model_id") for p in out):
            return out  # the fit rules below would judge unknown models or a policy the node group cannot run
        for name in self.models:
            out += [Problem(f"models.{name}", self.models[name].model_id, e,
                            ("policy", "gpu_memory_utilization", "hot_engines_per_replica"))
                    for e in self.fit(name).errors]
        if policy.kind == "dynamic":
            out += self._hot_set_problems()
            out += self._host_ram_problems()
        return out

    def _name_problems(self) -> list[Problem]:
        out: list[Problem] = []
        seen: dict[str, str] = {name: f"models.{name}" for name in self.models}
        for name, m in self.models.items():
            if not _NAME.match(name):
                out.append(Problem(f"models.{name}", name, "a model name of lowercase letters, digits, '-' and '.' "
                                   "(at most 63 characters, starting and ending with a letter or digit)"))
            if m.model_facts is None and self.facts(name) is None:
                out.append(Problem(f"models.{name}.model_id", m.model_id,
                                   "a model in the catalogue or model_facts stating its architecture"))
            if m.weights_prefix is not None and not _PREFIX.match(m.weights_prefix):
                out.append(Problem(f"models.{name}.weights_prefix", m.weights_prefix, "an S3 key prefix"))
            if m.kv_tokens_per_sequence and m.kv_tokens_per_sequence > m.max_model_len:
                out.append(Problem(f"models.{name}.kv_tokens_per_sequence", m.kv_tokens_per_sequence,
                                   f"<= max_model_len ({m.max_model_len})"))
            for adapter, a in m.adapters.items():
                path = f"models.{name}.adapters.{adapter}"
                if not _NAME.match(adapter):
                    out.append(Problem(path, adapter, "an adapter name of lowercase letters, digits, '-' and '.' "
                                       "(at most 63 characters, starting and ending with a letter or digit)"))
                if adapter in seen:
                    out.append(Problem(path, adapter, f"a name unique in the pool (already {seen[adapter]})"))
                else:
                    seen[adapter] = path
                if not _PREFIX.match(a.weights_prefix):
                    out.append(Problem(f"{path}.weights_prefix", a.weights_prefix, "an S3 key prefix"))
        if self.models_bucket is not None and not _BUCKET.match(self.models_bucket):
            out.append(Problem("models_bucket", self.models_bucket, "an S3 bucket name"))
        if self.models_bucket is None and not self.allow_hub_download:
            out.append(Problem("models_bucket", None, "required: the S3 bucket of the weights (or set "
                               "allow_hub_download to download base models from the Hugging Face hub)"))
        if self.models_bucket is None and any(m.adapters for m in self.models.values()):
            out.append(Problem("models_bucket", None, "required with adapters (they load from the models bucket)"))
        return out

    def _replica_problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.min_replicas > self.max_replicas:
            out.append(Problem("min_replicas", self.min_replicas, f"<= max_replicas ({self.max_replicas})",
                               ("max_replicas",)))
        if self.keda and self.prometheus_url is None:
            out.append(Problem("prometheus_url", None, "required with keda (the triggers query Prometheus)"))
        if not self.keda and self.min_replicas == 0:
            out.append(Problem("min_replicas", 0, ">= 1 without keda (nothing would ever start a replica)"))
        if self.models_bucket and self.cluster is None and (self.oidc_provider_arn is None or self.oidc_issuer is None):
            out.append(Problem("oidc_provider_arn", self.oidc_provider_arn,
                               "required with models_bucket (with oidc_issuer: the pods read S3 through IRSA; or pass "
                               "cluster=EksCluster)"))
        return out

    def _lora_problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.max_lora_rank not in MAX_LORA_RANKS:
            out.append(Problem("max_lora_rank", self.max_lora_rank,
                               f"one of vLLM's --max-lora-rank values ({', '.join(map(str, MAX_LORA_RANKS))})"))
        for name, m in self.models.items():
            for adapter, a in m.adapters.items():
                if a.rank > self.max_lora_rank:
                    out.append(Problem(f"models.{name}.adapters.{adapter}.rank", a.rank,
                                       f"<= max_lora_rank ({self.max_lora_rank}); raise max_lora_rank",
                                       ("max_lora_rank",)))
        if any(m.adapters for m in self.models.values()) and not self.policy.strip().startswith("dynamic"):
            named = [n for n, m in self.models.items() if m.adapters]
            out.append(Problem(f"models.{named[0]}.adapters", sorted(self.models[named[0]].adapters),
                               f"adapters only in a dynamic pool (the gateway's pool controller loads them); policy "
                               f"{self.policy} serves base models only", ("policy",)))
        if self.max_cpu_loras is not None and self.max_cpu_loras < self.max_loras:
            out.append(Problem("max_cpu_loras", self.max_cpu_loras, f">= max_loras ({self.max_loras}), as vLLM "
                               "requires", ("max_loras",)))
        return out

    def _policy_problems(self, policy: Policy) -> list[Problem]:
        out: list[Problem] = []
        pl, spec = self.placement, self.placement.accelerator
        vendor = spec.vendor_facts
        if policy.kind != "dedicated" and vendor.shards_over == "cores":
            out.append(Problem("policy", self.policy, f"dedicated on {vendor.display_name} node groups (GPU sharing "
                               "and sleep mode are NVIDIA features)"))
            return out
        if policy.kind == "mig":
            configs = mig_profiles.configs_for(spec)
            if not configs:
                out.append(Problem("policy", self.policy, f"a MIG-capable GPU (A100, H100, H200); node group "
                                   f"{pl.name!r} has {spec.accelerator} ({spec.instance_type})"))
            elif policy.mig_profile not in configs:
                out.append(Problem("policy", self.policy, f"a MIG configuration of the {spec.accelerator} "
                                   f"{spec.memory_gib:g} GiB: " + ", ".join(f"mig:{c}" for c in configs)))
            if pl.mig_config != policy.mig_profile:
                out.append(Problem("policy", self.policy, f"node group {pl.name!r} to carry migConfig "
                                   f"{policy.mig_profile} (it has {pl.mig_config or 'none'})"))
            if self.mig_strategy == "none":
                out.append(Problem("mig_strategy", "none", "single or mixed with a mig: policy (GPU operator)",
                                   ("policy",)))
            config = configs.get(policy.mig_profile or "")
            if config and len(config.slices) > 1 and self.mig_strategy == "single":
                out.append(Problem("mig_strategy", "single", f"mixed with {policy.mig_profile} (the single strategy "
                                   "needs one slice profile per GPU)", ("policy",)))
        if policy.kind != "dedicated":
            for name, m in self.models.items():
                if m.tensor_parallel_size != 1:
                    out.append(Problem(f"models.{name}.tensor_parallel_size", m.tensor_parallel_size,
                                       f"1 with policy {self.policy} (an engine gets one GPU, slice or share; shard a "
                                       "large model in a dedicated pool)", ("policy",)))
        if policy.kind == "time-slicing" and pl.time_slicing_replicas != policy.slices:
            out.append(Problem("policy", self.policy, f"node group {pl.name!r} to have timeSlicingReplicas "
                               f"{policy.slices} (it has {pl.time_slicing_replicas or 'none'})"))
        if policy.kind == "dynamic":
            engines = len(self.models)
            if spec.count != 1:
                out.append(Problem("policy", self.policy, f"a node group with one GPU per node (node group "
                                   f"{pl.name!r} has {spec.count} x {spec.accelerator} per {spec.instance_type}: the "
                                   "device plugin could give two replicas' engines shares of one GPU)"))
            if pl.time_slicing_replicas != engines:
                out.append(Problem("policy", self.policy, f"node group {pl.name!r} to have timeSlicingReplicas "
                                   f"{engines} (one share per engine of a replica; it has "
                                   f"{pl.time_slicing_replicas or 'none'})", ("models",)))
            if self.hot_engines_per_replica > engines:
                out.append(Problem("hot_engines_per_replica", self.hot_engines_per_replica,
                                   f"<= the {engines} base model(s) of the pool", ("models",)))
        return out

    def _hot_set_problems(self) -> list[Problem]:
        """dynamic: every keepHot model takes one of the hot slots. (That any ``hot_engines_per_replica`` engines fit
        the GPU together follows from each engine's fit at ``gpu_memory_utilization / hot_engines_per_replica``.)"""
        keep = [n for n, m in self.models.items() if m.keep_hot]
        if len(keep) <= self.hot_engines_per_replica:
            return []
        return [Problem("hot_engines_per_replica", self.hot_engines_per_replica,
                        f">= the {len(keep)} keepHot models ({', '.join(keep)}): each takes a hot slot",
                        tuple(f"models.{n}.keep_hot" for n in keep))]

    def _host_ram_problems(self) -> list[Problem]:
        """dynamic, level 1: the sleeping engines' weights (the largest ones, worst case) fit the node's RAM."""
        if self.sleep_level != 1:
            return []
        spec = self.placement.accelerator
        sleeping = len(self.models) - self.hot_engines_per_replica
        if sleeping <= 0 or not spec.memory_gib_host:
            return []
        weights = round(sum(sorted((self.weights_gib(n) for n in self.models), reverse=True)[:sleeping]), 1)
        need = weights + ENGINE_PROCESS_RAM_GIB * len(self.models)
        usable = spec.memory_gib_host * HOST_RAM_USABLE_FRACTION
        if need <= usable:
            return []
        return [Problem("sleep_level", 1,
                        f"sleeping weights that fit host RAM: {sleeping} sleeping engine(s) hold up to "
                        f"{weights:.1f} GiB + {ENGINE_PROCESS_RAM_GIB} GiB per engine process = {need:.1f} GiB > "
                        f"{usable:.1f} GiB ({HOST_RAM_USABLE_FRACTION:.0%} of the {spec.memory_gib_host:g} GiB of a "
                        f"{spec.instance_type}); use sleep_level 2, fewer models or a larger instance", ("models",))]


_NO_MIG = MigConfig("none", "", ())
