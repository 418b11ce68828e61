"""ModelPoolArgs: derived engine settings and every validation rule (each message), all problems at once."""

from __future__ import annotations

import typing

import pytest

from components.errors import ArgsError
from components.serving.pools.args import (MAX_LORA_RANKS, ModelPoolArgs, PoolAdapter, PoolModel)
from tests.kit.vllm import placement

LLAMA, QWEN, SMALL = "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"


def models(**extra) -> dict[str, PoolModel]:
    return {"llama-8b": PoolModel(model_id=LLAMA, max_model_len=8192,
                                  adapters={"support-en": PoolAdapter(weights_prefix="adapters/support-en")}),
            "qwen-7b": PoolModel(model_id=QWEN, max_model_len=8192), **extra}


def pool(**kw) -> ModelPoolArgs:
    base = dict(models=models(), placement=placement("l40s", "g6e.2xlarge", time_slicing_replicas=2), image="img",
                models_bucket="my-models", prometheus_url="http://prometheus:9090", oidc_provider_arn="arn:oidc",
                oidc_issuer="oidc.example/id")
    return ModelPoolArgs(**{**base, **kw})


def problems(**kw) -> str:
    with pytest.raises(ArgsError) as exc:
        pool(**kw)
    return str(exc.value)


# --- derived settings ---

def test_defaults_and_derived_engine_settings():
    a = pool()
    assert (a.policy, a.hot_engines_per_replica, a.sleep_level, a.max_loras, a.max_lora_rank) == ("dynamic", 1, 1, 4, 16)
    assert (a.cpu_loras, a.hold_timeout_seconds, a.eviction, a.gpu_memory_utilization) == (16, 60, "lru", 0.9)
    assert a.engine_ports() == {"llama-8b": 8000, "qwen-7b": 8001}
    assert a.engine_memory_utilization() == 0.9
    assert pool(hot_engines_per_replica=2, models={"a": PoolModel(model_id=SMALL), "b": PoolModel(model_id=SMALL)}
                ).engine_memory_utilization() == 0.45
    assert a.weights_uri("meta-llama/x/") == "s3://my-models/meta-llama/x/"
    assert a.weights_prefixes() == ["Qwen/Qwen2.5-7B-Instruct", "adapters/support-en", LLAMA]
    s = a.model_settings("llama-8b")
    assert (s.served_model_name, s.weights_uri, s.max_model_len) == ("llama-8b", f"s3://my-models/{LLAMA}/", 8192)


def test_time_slicing_divides_the_gpu_by_the_shares():
    a = pool(policy="time-slicing:4", placement=placement("l40s", "g6e.2xlarge", time_slicing_replicas=4),
             models={"s": PoolModel(model_id=SMALL)})
    assert a.engine_memory_utilization() == 0.225
    svc = a.service_args("s")
    assert (svc.gpu_sharing, svc.model.gpu_memory_utilization, svc.model.served_model_name) == ("time-sliced", 0.225, "s")


def test_mig_puts_each_model_on_the_smallest_slice_it_fits():
    a = pool(policy="mig:all-balanced", mig_strategy="mixed",
             placement=placement("h100", "p5.48xlarge", mig_config="all-balanced"),
             models={"small": PoolModel(model_id=SMALL), "llama": PoolModel(model_id=LLAMA, max_model_len=8192)})
    assert a.mig_slice_for("small") == "1g.10gb"
    assert a.mig_slice_for("llama") == "3g.40gb"
    svc = a.service_args("llama")
    assert (svc.gpu_sharing, svc.mig_profile, svc.mig_strategy) == ("mig", "3g.40gb", "mixed")


def test_lora_ranks_match_vllm(vllm_parser):  # the fixture imports vLLM for the CPU target first
    from vllm.config.lora import MaxLoRARanks
    assert MAX_LORA_RANKS == typing.get_args(MaxLoRARanks)


def test_workload_warning_when_policy_differs():
    assert pool(workload="variable-traffic").warnings() == []
    [warning] = pool(workload="latency-critical").warnings()
    assert warning.startswith("policy dynamic differs from the recommendation for workload latency-critical")


# --- one test per rule ---

def test_bad_policy_text():
    assert "policy = 'gpu-share': one of dedicated, mig:<profile>" in problems(policy="gpu-share")


def test_model_and_adapter_names():
    text = problems(models={"Llama_8B": PoolModel(model_id=LLAMA, adapters={
        "qwen-7b": PoolAdapter(weights_prefix="a")}), "qwen-7b": PoolModel(model_id=QWEN)})
    assert "models.Llama_8B = 'Llama_8B': a model name of lowercase letters, digits, '-' and '.'" in text
    text = problems(models={"a": PoolModel(model_id=SMALL, adapters={"Bad_Name": PoolAdapter(weights_prefix="x")}),
                            "b": PoolModel(model_id=SMALL)})
    assert "models.a.adapters.Bad_Name = 'Bad_Name': an adapter name of lowercase letters, digits, '-' and '.'" in text


def test_adapter_names_unique_in_the_pool():
    text = problems(models={"a": PoolModel(model_id=SMALL, adapters={"b": PoolAdapter(weights_prefix="x")}),
                            "b": PoolModel(model_id=SMALL)})
    assert "models.a.adapters.b = 'b': a name unique in the pool (already models.b)" in text
    text = problems(models={"a": PoolModel(model_id=SMALL, adapters={"a": PoolAdapter(weights_prefix="x")}),
                            "b": PoolModel(model_id=SMALL)})
    assert "models.a.adapters.a = 'a': a name unique in the pool (already models.a)" in text


def test_unknown_model_needs_facts():
    text = problems(models={"x": PoolModel(model_id="acme/unknown"), "y": PoolModel(model_id=SMALL)})
    assert "models.x.model_id = 'acme/unknown': a model in the catalogue or model_facts" in text


def test_weights_prefix_and_bucket_shapes():
    text = problems(models_bucket="Bad_Bucket", models={"a": PoolModel(model_id=SMALL, weights_prefix=" x"),
                                                        "b": PoolModel(model_id=SMALL)})
    assert "models_bucket = 'Bad_Bucket': an S3 bucket name" in text
    assert "models.a.weights_prefix = ' x': an S3 key prefix" in text


def test_bucket_required_unless_hub_download_and_always_with_adapters():
    assert "models_bucket = None: required: the S3 bucket of the weights" in problems(models_bucket=None)
    text = problems(models_bucket=None, allow_hub_download=True)
    assert "models_bucket = None: required with adapters (they load from the models bucket)" in text
    pool(models_bucket=None, allow_hub_download=True, models={"a": PoolModel(model_id=SMALL),
                                                              "b": PoolModel(model_id=SMALL)})


def test_kv_tokens_per_sequence_within_the_context():
    text = problems(models={"a": PoolModel(model_id=SMALL, kv_tokens_per_sequence=9000), "b": PoolModel(model_id=SMALL)})
    assert "models.a.kv_tokens_per_sequence = 9000: <= max_model_len (4096)" in text


def test_replica_bounds():
    assert "min_replicas = 3: <= max_replicas (2)" in problems(min_replicas=3)


def test_keda_needs_prometheus_and_no_keda_needs_a_replica():
    assert "prometheus_url = None: required with keda" in problems(prometheus_url=None)
    assert "min_replicas = 0: >= 1 without keda" in problems(keda=False, min_replicas=0)


def test_bucket_needs_irsa():
    assert "oidc_provider_arn = None: required with models_bucket" in problems(oidc_provider_arn=None)


def test_max_lora_rank_is_one_of_vllms_values():
    assert ("max_lora_rank = 24: one of vLLM's --max-lora-rank values (1, 8, 16, 32, 64, 128, 256, 320, 512)"
            in problems(max_lora_rank=24))


def test_adapter_rank_within_max_lora_rank():
    text = problems(models=models(**{"llama-8b": PoolModel(model_id=LLAMA, adapters={
        "big": PoolAdapter(weights_prefix="adapters/big", rank=64)})}))
    assert "models.llama-8b.adapters.big.rank = 64: <= max_lora_rank (16); raise max_lora_rank" in text


def test_max_cpu_loras_at_least_max_loras():
    assert "max_cpu_loras = 2: >= max_loras (4), as vLLM requires" in problems(max_cpu_loras=2)


def test_mig_needs_a_mig_gpu():
    text = problems(policy="mig:all-1g.10gb", mig_strategy="mixed")
    assert "policy = 'mig:all-1g.10gb': a MIG-capable GPU (A100, H100, H200); node group 'l40s' has L40S" in text


def test_mig_configuration_must_exist_for_the_gpu():
    text = problems(policy="mig:all-1g.18gb", mig_strategy="mixed",
                    placement=placement("h100", "p5.48xlarge", mig_config="all-1g.18gb"))
    assert ("policy = 'mig:all-1g.18gb': a MIG configuration of the H100 80 GiB: mig:all-1g.10gb, mig:all-1g.20gb, "
            "mig:all-2g.20gb, mig:all-3g.40gb, mig:all-4g.40gb, mig:all-7g.80gb, mig:all-balanced") in text


def test_mig_node_group_must_carry_the_configuration():
    text = problems(policy="mig:all-1g.10gb", mig_strategy="mixed",
                    placement=placement("h100", "p5.48xlarge", mig_config="all-3g.40gb"))
    assert "policy = 'mig:all-1g.10gb': node group 'h100' to carry migConfig all-1g.10gb (it has all-3g.40gb)" in text


def test_mig_strategy_required_and_mixed_for_balanced():
    h100 = placement("h100", "p5.48xlarge", mig_config="all-balanced")
    assert "mig_strategy = 'none': single or mixed with a mig: policy" in problems(policy="mig:all-balanced",
                                                                                  placement=h100)
    assert ("mig_strategy = 'single': mixed with all-balanced (the single strategy needs one slice profile per GPU)"
            in problems(policy="mig:all-balanced", placement=h100, mig_strategy="single"))


def test_time_slicing_shares_match_the_node_group():
    text = problems(policy="time-slicing:4")
    assert "policy = 'time-slicing:4': node group 'l40s' to have timeSlicingReplicas 4 (it has 2)" in text


def test_sharing_policies_need_nvidia():
    text = problems(policy="time-slicing:2", placement=placement("inf2", "inf2.xlarge"),
                    models={"s": PoolModel(model_id=SMALL)})
    assert ("policy = 'time-slicing:2': dedicated on Neuron node groups (GPU sharing and sleep mode are NVIDIA "
            "features)") in text


def test_dynamic_needs_one_gpu_per_node():
    text = problems(placement=placement("l40s4", "g6e.12xlarge", time_slicing_replicas=2))
    assert ("policy = 'dynamic': a node group with one GPU per node (node group 'l40s4' has 4 x L40S per "
            "g6e.12xlarge") in text


def test_dynamic_needs_one_share_per_engine():
    text = problems(placement=placement("l40s", "g6e.2xlarge", time_slicing_replicas=3))
    assert ("policy = 'dynamic': node group 'l40s' to have timeSlicingReplicas 2 (one share per engine of a "
            "replica; it has 3)") in text


def test_hot_engines_at_most_the_models():
    text = problems(hot_engines_per_replica=3)
    assert "hot_engines_per_replica = 3: <= the 2 base model(s) of the pool" in text


def test_keep_hot_models_take_hot_slots():
    text = problems(models={"a": PoolModel(model_id=SMALL, keep_hot=True), "b": PoolModel(model_id=SMALL,
                                                                                         keep_hot=True)})
    assert "hot_engines_per_replica = 1: >= the 2 keepHot models (a, b): each takes a hot slot" in text


def test_each_model_fits_its_share_with_kv_cache():
    text = problems(hot_engines_per_replica=2)  # two 8k-context 7-8B engines at 0.45 of an L40S each
    assert "models.llama-8b = 'meta-llama/Llama-3.1-8B-Instruct': llama-8b (meta-llama/Llama-3.1-8B-Instruct) " \
           "does not fit at max_num_seqs 16" in text
    assert "gpu_memory_utilization 0.45" in text


def test_mig_fit_on_the_largest_slice():
    text = problems(policy="mig:all-1g.10gb", mig_strategy="mixed",
                    placement=placement("h100", "p5.48xlarge", mig_config="all-1g.10gb"))
    assert "llama-8b (meta-llama/Llama-3.1-8B-Instruct) does not fit" in text
    assert "H100 MIG 1g.10gb slice" in text


def test_level_one_sleep_weights_fit_host_ram():
    three = models(mistral=PoolModel(model_id="mistralai/Mistral-7B-Instruct-v0.3"))
    text = problems(models=three, placement=placement("l40s", "g6e.xlarge", time_slicing_replicas=3))
    assert ("sleep_level = 1: sleeping weights that fit host RAM: 2 sleeping engine(s) hold up to 29.1 GiB + 4 GiB "
            "per engine process = 41.1 GiB > 24.0 GiB (75% of the 32 GiB of a g6e.xlarge); use sleep_level 2") in text
    pool(models=three, placement=placement("l40s", "g6e.xlarge", time_slicing_replicas=3), sleep_level=2)
    pool(models=three, placement=placement("l40s", "g6e.2xlarge", time_slicing_replicas=3))


def test_every_problem_at_once():
    text = problems(min_replicas=5, max_lora_rank=24, max_cpu_loras=2, prometheus_url=None, hot_engines_per_replica=3,
                    placement=placement("l40s", "g6e.2xlarge", time_slicing_replicas=3))
    for expected in ("min_replicas = 5: <= max_replicas (2)",
                     "max_lora_rank = 24: one of vLLM's --max-lora-rank values",
                     "max_cpu_loras = 2: >= max_loras (4)",
                     "prometheus_url = None: required with keda",
                     "hot_engines_per_replica = 3: <= the 2 base model(s)",
                     "node group 'l40s' to have timeSlicingReplicas 2"):
        assert expected in text


def test_eviction_policies_and_default_are_the_gateways():
    from components.serving.pools.args import Eviction
    from serving.gateway.pool_policy import DEFAULT_POLICY, POLICIES
    assert set(typing.get_args(Eviction)) == set(POLICIES)
    assert ModelPoolArgs.model_fields["eviction"].default == DEFAULT_POLICY


def test_adapters_only_in_a_dynamic_pool():
    text = problems(policy="time-slicing:2")
    assert ("models.llama-8b.adapters = ['support-en']: adapters only in a dynamic pool (the gateway's pool controller "
            "loads them); policy time-slicing:2 serves base models only") in text


def test_tensor_parallel_only_in_a_dedicated_pool():
    big = {"llama-70b": PoolModel(model_id="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=4)}
    text = problems(models=big)
    assert ("models.llama-70b.tensor_parallel_size = 4: 1 with policy dynamic (an engine gets one GPU, slice or share; "
            "shard a large model in a dedicated pool)") in text
    a = pool(policy="dedicated", models=big, placement=placement("l40s4", "g6e.12xlarge"))
    assert a.service_args("llama-70b").model.tensor_parallel_size == 4
    assert a.fit("llama-70b").errors == []


def test_cron_floors_are_refused_on_a_pool():  # its ScaledObject renders no cron trigger: floors would be dropped
    from components.capacity.schedule import CronFloor
    from components.serving.vllm.args import AutoscalingSettings

    floor = CronFloor(timezone="UTC", start="0 8 * * 1-5", end="0 18 * * 1-5", desired_replicas=2)
    text = problems(autoscaling=AutoscalingSettings(min_replicas=1, max_replicas=4, cron_floors=(floor,)))
    assert ("autoscaling.cron_floors = 1: empty: a pool's ScaledObject renders no cron triggers (pre-scale a "
            "VllmService)") in text
