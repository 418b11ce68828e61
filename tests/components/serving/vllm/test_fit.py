"""The model fit check: errors name the model, the need and the capacity; warnings flag far too much hardware."""

from __future__ import annotations

import pytest

from components.serving.vllm.fit import (FitInput, check_fit, fit_input_from_manifest, fit_problems_from_manifest,
                                         fit_warnings_from_manifest, kv_cache_bytes_per_token, mig_memory_gib,
                                         sizing_advice, unit_name)
from components.catalog import models

LLAMA8 = models.lookup("meta-llama/Llama-3.1-8B-Instruct")
LLAMA70 = models.lookup("meta-llama/Llama-3.1-70B-Instruct")


def fit(spec, **kw) -> FitInput:
    return FitInput(**{"model": spec.model_id, "facts": spec.facts, **kw})


def test_kv_cache_per_token_of_llama_8b():
    # 2 (K,V) x 32 layers x 8 KV heads x 128 x 2 bytes = 128 KiB per token
    assert kv_cache_bytes_per_token(fit(LLAMA8)) == 131072
    assert kv_cache_bytes_per_token(fit(LLAMA8, kv_cache_dtype="fp8")) == 65536


def test_8b_fits_one_a10g_at_moderate_concurrency():
    r = check_fit(fit(LLAMA8, max_model_len=4096, max_num_seqs=16, kv_tokens_per_sequence=1024,
                      unit_memory_gib=22.35, units_per_node=1, unit_name="A10G GPU", instance_type="g5.xlarge"))
    assert r.errors == [] and r.warnings == []
    assert r.weights_gib == pytest.approx(14.96, abs=0.01)
    assert r.kv_cache_gib == pytest.approx(2.0, abs=0.01)
    assert r.capacity_gib == pytest.approx(20.12, abs=0.01)


def test_70b_on_one_a10g_is_an_error_naming_model_need_and_capacity():
    r = check_fit(fit(LLAMA70, max_model_len=4096, max_num_seqs=8, unit_memory_gib=22.35, units_per_node=1,
                      unit_name="A10G GPU", instance_type="g5.2xlarge"))
    assert len(r.errors) == 1
    msg = r.errors[0]
    assert msg.startswith("meta-llama/Llama-3.1-70B-Instruct does not fit: weights 131.5 GiB")
    assert "= 134.3 GiB, capacity 20.1 GiB (1 x A10G GPU of the 1 on one g5.2xlarge, 22.4 GiB each x gpu_memory_utilization 0.9)" in msg
    assert "seeds' sizing: 70-180B" in msg


def test_too_many_full_length_sequences_is_an_error_with_what_fits():
    r = check_fit(fit(LLAMA8, max_model_len=8192, max_num_seqs=8, unit_memory_gib=22.35, units_per_node=1,
                      unit_name="A10G GPU", instance_type="g5.xlarge"))
    assert r.errors == [
        "meta-llama/Llama-3.1-8B-Instruct does not fit at max_num_seqs 8: weights 15.0 GiB + KV cache 8.0 GiB "
        "(8 x 8192 tokens) + runtime 1.5 GiB = 24.5 GiB, capacity 20.1 GiB (1 x A10G GPU of the 1 on one g5.xlarge, 22.4 GiB "
        "each x gpu_memory_utilization 0.9); at most 3 sequences of 8192 tokens fit (lower max_num_seqs, set "
        "kv_tokens_per_sequence to the typical length, or use more memory)"]


def test_8b_on_8_h100_is_a_warning():
    r = check_fit(fit(LLAMA8, max_model_len=8192, max_num_seqs=8, tensor_parallel_size=8, unit_memory_gib=80,
                      units_per_node=8, unit_name="H100 GPU", instance_type="p5.48xlarge"))
    assert r.errors == []
    assert len(r.warnings) == 1
    assert r.warnings[0].startswith("meta-llama/Llama-3.1-8B-Instruct uses 35.0 GiB of 576.0 GiB (8 x H100 GPU of "
                                    "the 8 on one p5.48xlarge")
    assert "far more accelerator memory than it needs" in r.warnings[0]
    assert "seeds' sizing: 7-13B: one A10G" in r.warnings[0]


def test_70b_on_8_h100_fits_without_warning():
    r = check_fit(fit(LLAMA70, max_model_len=16384, max_num_seqs=64, kv_tokens_per_sequence=4096,
                      tensor_parallel_size=8, unit_memory_gib=80, units_per_node=8, unit_name="H100 GPU"))
    assert r.errors == [] and r.warnings == []


def test_quantization_shrinks_the_weights():
    bf16 = check_fit(fit(LLAMA70, tensor_parallel_size=4, unit_memory_gib=22.35, units_per_node=4))
    awq = check_fit(fit(LLAMA70, quantization="awq", tensor_parallel_size=4, unit_memory_gib=22.35, units_per_node=4))
    fp8 = check_fit(fit(LLAMA70, quantization="fp8", tensor_parallel_size=4, unit_memory_gib=22.35, units_per_node=4))
    assert awq.weights_gib < fp8.weights_gib < bf16.weights_gib
    assert fp8.weights_gib == pytest.approx(bf16.weights_gib / 2, rel=0.01)


def test_tensor_parallel_must_divide_heads_and_fit_on_a_node():
    r = check_fit(fit(models.lookup("meta-llama/Llama-3.2-3B-Instruct"), tensor_parallel_size=16,
                      unit_memory_gib=80, units_per_node=8, unit_name="H100 GPU", instance_type="p5.48xlarge"))
    assert ("meta-llama/Llama-3.2-3B-Instruct: tensor_parallel_size 16 must divide the 24 attention heads "
            "(sizes that do, up to the 8 per node: 1, 2, 3, 4, 6, 8)") in r.errors
    assert "meta-llama/Llama-3.2-3B-Instruct: tensor_parallel_size 16 exceeds the 8 H100 GPU(s) of one p5.48xlarge" \
        in r.errors


def test_tensor_parallel_and_kv_heads():
    qwen = models.lookup("Qwen/Qwen2.5-7B-Instruct")  # 28 heads, 4 KV heads
    r = check_fit(fit(qwen, tensor_parallel_size=7, unit_memory_gib=80, units_per_node=8))
    assert "tensor_parallel_size 7 must divide the 4 KV heads or be a multiple of them" in r.errors[0]


def test_time_sliced_replicas_may_not_claim_more_than_the_gpu():
    r = check_fit(fit(models.lookup("Qwen/Qwen2.5-0.5B-Instruct"), gpu_memory_utilization=0.5,
                      time_slicing_replicas=4, unit_memory_gib=22.35))
    assert r.errors == ["Qwen/Qwen2.5-0.5B-Instruct: gpu_memory_utilization 0.5 x 4 time-sliced replicas > 1.0; "
                        "time-slicing has no memory isolation, so each replica may claim at most 0.25 of the GPU"]


def test_context_beyond_the_model_is_an_error():
    r = check_fit(fit(models.lookup("mistralai/Mistral-7B-Instruct-v0.3"), max_model_len=65536,
                      max_num_seqs=1, unit_memory_gib=80))
    assert "mistralai/Mistral-7B-Instruct-v0.3: max_model_len 65536 exceeds the model's context of 32768 tokens" \
        in r.errors


@pytest.mark.parametrize("billions,advice", [
    (3, "< 7B: one T4/L4-class GPU, with quantization"),
    (8, "7-13B: one A10G (24 GB) or A100-40GB"),
    (32, "30-70B: 2-4 x 80 GB GPUs with tensor parallelism"),
    (70.6, "70-180B: 4-8 x A100/H100 with tensor (and pipeline) parallelism"),
    (405, "180B+: 8+ H100s across nodes"),
])
def test_sizing_table_from_the_seeds(billions, advice):
    assert sizing_advice(billions) == advice


def test_mig_profile_memory():
    assert mig_memory_gib("3g.40gb") == pytest.approx(37.25, abs=0.01)
    assert mig_memory_gib("1g.10gb") == pytest.approx(9.31, abs=0.01)
    assert mig_memory_gib("big") is None


ANNOTATIONS = {
    "genai-scale/model": "meta-llama/Llama-3.1-8B-Instruct", "genai-scale/model-parameters-billion": "8.03",
    "genai-scale/model-layers": "32", "genai-scale/model-attention-heads": "32", "genai-scale/model-kv-heads": "8",
    "genai-scale/model-head-dim": "128", "genai-scale/model-max-context": "131072",
    "genai-scale/instance-type": "g5.xlarge", "genai-scale/accelerator": "A10G",
    "genai-scale/accelerator-count": "1", "genai-scale/accelerator-memory-gib": "22.35",
}


def test_manifest_check_passes_a_fitting_deployment():
    args = ["/models/weights", "--max-model-len", "4096", "--max-num-seqs=16", "--tensor-parallel-size", "1"]
    assert fit_problems_from_manifest(args, {**ANNOTATIONS, "genai-scale/kv-tokens-per-sequence": "1024"}) == []


def test_manifest_check_reports_a_model_that_does_not_fit():
    args = ["/models/weights", "--max-model-len", "8192", "--max-num-seqs", "64"]
    problems = fit_problems_from_manifest(args, ANNOTATIONS)
    assert len(problems) == 1 and "does not fit at max_num_seqs 64" in problems[0]


def test_manifest_check_uses_vllm_defaults_for_unset_flags():
    # no --max-num-seqs: vLLM's default 256 sequences x 4096 tokens cannot fit one A10G
    problems = fit_problems_from_manifest(["/m", "--max-model-len", "4096"], ANNOTATIONS)
    assert "does not fit at max_num_seqs 256" in problems[0]


def test_manifest_check_says_what_is_missing():
    assert fit_problems_from_manifest(["/m"], {"genai-scale/model": "x"}) == [
        "cannot check the model's fit: missing genai-scale/model-parameters-billion, genai-scale/model-layers, "
        "genai-scale/model-attention-heads, genai-scale/model-kv-heads, genai-scale/model-head-dim, "
        "genai-scale/model-max-context, genai-scale/accelerator-count, genai-scale/accelerator-memory-gib, "
        "--max-model-len (container args)"]
    bad = fit_problems_from_manifest(["/m", "--max-model-len", "4096", "--dtype", "int3"], ANNOTATIONS)
    assert bad == ["cannot check the model's fit: unknown --dtype 'int3', --quantization None or --kv-cache-dtype "
                   "'auto'"]


def test_manifest_warnings():
    ann = {**ANNOTATIONS, "genai-scale/accelerator-count": "8", "genai-scale/accelerator-memory-gib": "80",
           "genai-scale/accelerator": "H100", "genai-scale/instance-type": "p5.48xlarge"}
    args = ["/m", "--max-model-len", "4096", "--max-num-seqs", "8", "--tensor-parallel-size", "8"]
    assert fit_problems_from_manifest(args, ann) == []
    assert "far more accelerator memory" in fit_warnings_from_manifest(args, ann)[0]


def test_fit_errors_point_at_the_setting_they_are_about():
    from components.errors import ArgsError

    from tests.kit.vllm import placement
    from tests.components.serving.vllm.test_service import args as service_args, model

    with pytest.raises(ArgsError) as exc:  # Llama 3.1 8B has 32 heads; 3 does not divide them (g5.12xlarge: 4 GPUs)
        service_args(model=model(tensor_parallel_size=3), placement=placement("a10g", "g5.12xlarge"))
    paths = [p.path for p in exc.value.problems]
    assert "model.tensor_parallel_size" in paths and "model" not in paths


def test_manifest_check_rejects_model_facts_out_of_range():
    ann = {**ANNOTATIONS, "genai-scale/model-layers": "0", "genai-scale/model-kv-heads": "0"}
    assert fit_problems_from_manifest(["/m", "--max-model-len", "4096"], ann) == [
        "cannot check the model's fit: genai-scale/model-layers input should be greater than or equal to 1; "
        "genai-scale/model-kv-heads input should be greater than or equal to 1"]
    ann = {**ANNOTATIONS, "genai-scale/model-layers": "many"}
    assert fit_problems_from_manifest(["/m", "--max-model-len", "4096"], ann)[0].startswith(
        "cannot check the model's fit: unreadable value (")


@pytest.mark.parametrize("instance_type,accelerator,unit", [
    ("inf2.xlarge", "Inferentia2", "NeuronCore"),      # catalogue row
    ("trn2.48xlarge", "Trainium2", "NeuronCore"),      # not in the catalogue: by the vendor's instance families
    ("", "Trainium", "NeuronCore"),                    # no instance type: by the catalogue's accelerator names
    ("g5.xlarge", "A10G", "A10G GPU"),
    ("", "RTX PRO 6000", "RTX PRO 6000 GPU"),          # unknown: a GPU, as before
])
def test_manifest_check_names_the_unit_by_the_vendor(instance_type, accelerator, unit):
    ann = {**ANNOTATIONS, "genai-scale/instance-type": instance_type, "genai-scale/accelerator": accelerator}
    fi, _ = fit_input_from_manifest(["/m", "--max-model-len", "4096"], ann)
    assert fi.unit_name == unit


def test_unit_names_for_every_sharing_mode():
    from components.catalog.vendors import NEURON, NVIDIA

    assert unit_name("H100", NVIDIA, "mig", "3g.40gb") == "H100 MIG 3g.40gb slice"
    assert unit_name("L4", NVIDIA, "time-sliced") == "L4 GPU (time-sliced)"
    assert unit_name("Inferentia2", NEURON, "dedicated") == "NeuronCore"


def test_fit_input_holds_the_catalogues_model_facts():
    assert fit(LLAMA8).facts == models.ModelFacts(parameters_billion=8.03, layers=32, attention_heads=32, kv_heads=8,
                                                  head_dim=128, max_context=131072)
