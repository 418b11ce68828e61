"""Typed model settings -> `vllm serve` arguments, parsed by vLLM's own parser at the pinned version."""

from __future__ import annotations

import importlib.metadata

import pytest

from components import versions
from components.errors import ArgsError
from components.serving.vllm.args import (QUIET_ENDPOINTS, VllmModelSettings, engine_drains, parse_version, render_args,
                                   supports)

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def settings(**kw) -> VllmModelSettings:
    return VllmModelSettings(**{"model_id": LLAMA, "weights_uri": "s3://models-bucket/llama-8b/", **kw})


def test_installed_vllm_is_the_pinned_version():
    # the parser the tests use and the image tag come from the same pin
    assert importlib.metadata.version("vllm") == versions.VLLM.version
    assert versions.VLLM_OPENAI_IMAGE.version == f"v{versions.VLLM.version}"


def test_rendered_arguments_snapshot_and_meaning(vllm_parser):
    argv = render_args(settings(quantization="fp8", kv_cache_dtype="fp8", max_model_len=8192, max_num_seqs=32,
                                tensor_parallel_size=2, gpu_memory_utilization=0.85, shutdown_timeout_seconds=45),
                       served_model_name="llama-8b", model_path="/models/weights")
    assert argv == [
        "/models/weights", "--served-model-name", "llama-8b", "--host", "0.0.0.0", "--port", "8000",
        "--tensor-parallel-size", "2", "--max-model-len", "8192", "--max-num-seqs", "32",
        "--gpu-memory-utilization", "0.85", "--dtype", "auto", "--quantization", "fp8", "--kv-cache-dtype", "fp8",
        "--enable-prefix-caching", "--shutdown-timeout", "45", "--disable-access-log-for-endpoints", QUIET_ENDPOINTS,
    ]
    ns = vllm_parser.parse(argv)
    assert ns.model_tag == "/models/weights"
    assert ns.served_model_name == ["llama-8b"]
    assert ns.tensor_parallel_size == 2
    assert ns.max_model_len == 8192
    assert ns.max_num_seqs == 32
    assert ns.gpu_memory_utilization == 0.85
    assert ns.quantization == "fp8"
    assert ns.kv_cache_dtype == "fp8"
    assert ns.enable_prefix_caching is True
    assert ns.shutdown_timeout == 45
    assert ns.api_key is None  # the key comes from VLLM_API_KEY, never the command line


@pytest.mark.parametrize("field,value,flag,attr,expected", [
    ("enable_prefix_caching", False, "--no-enable-prefix-caching", "enable_prefix_caching", False),
    ("dtype", "bfloat16", "bfloat16", "dtype", "bfloat16"),
    ("quantization", "awq_marlin", "awq_marlin", "quantization", "awq_marlin"),
    ("quantization", "gptq", "gptq", "quantization", "gptq"),
    ("kv_cache_dtype", "fp8_e5m2", "fp8_e5m2", "kv_cache_dtype", "fp8_e5m2"),
])
def test_each_typed_setting_reaches_vllm(vllm_parser, field, value, flag, attr, expected):
    argv = render_args(settings(**{field: value}), served_model_name="m", model_path="/models/weights")
    assert flag in argv
    assert getattr(vllm_parser.parse(argv), attr) == expected


def test_every_allowed_quantization_and_kv_dtype_is_a_choice_of_vllm(vllm_parser):
    from typing import get_args

    from components.serving.vllm.args import KvCacheDtype, Quantization
    for q in get_args(Quantization):
        vllm_parser.parse(["m", "--quantization", q])
    for k in get_args(KvCacheDtype):
        vllm_parser.parse(["m", "--kv-cache-dtype", k])


def test_misspelled_flag_fails_in_vllms_parser(vllm_parser):
    argv = render_args(settings(extra_args=["--max-model-length", "4096"]), served_model_name="m",
                       model_path="/models/weights")
    with pytest.raises(ValueError, match="unrecognized arguments: --max-model-length"):
        vllm_parser.parse(argv)


def test_removed_flag_fails_in_vllms_parser(vllm_parser):
    # --disable-log-requests was removed upstream; KServe, Triton and Dynamo broke on it
    with pytest.raises(ValueError, match="unrecognized arguments: --disable-log-requests"):
        vllm_parser.parse(["m", "--disable-log-requests"])


def test_extra_args_pass_through_to_vllm(vllm_parser):
    argv = render_args(settings(extra_args=["--max-num-batched-tokens", "4096", "--enable-chunked-prefill"]),
                       served_model_name="m", model_path="/models/weights")
    ns = vllm_parser.parse(argv)
    assert ns.max_num_batched_tokens == 4096
    assert ns.enable_chunked_prefill is True


def test_older_engine_gets_only_flags_it_knows():
    argv = render_args(settings(), served_model_name="m", model_path="/models/weights",
                       engine_version=versions.VLLM_NEURON_ENGINE_VERSION)
    assert "--disable-access-log-for-endpoints" not in argv
    assert "--shutdown-timeout" in argv  # the entrypoint drains for engines that predate it
    assert not engine_drains(versions.VLLM_NEURON_ENGINE_VERSION)
    assert engine_drains(versions.VLLM.version)
    assert parse_version("v0.31.0") == (0, 31, 0)
    assert supports("--served-model-name", "0.1.0")


def test_hub_model_is_the_positional_model(vllm_parser):
    s = VllmModelSettings(model_id=LLAMA, allow_hub_download=True)
    ns = vllm_parser.parse(render_args(s, served_model_name="x", model_path=LLAMA))
    assert ns.model_tag == LLAMA


def test_validation_lists_every_problem_with_paths_and_values():
    with pytest.raises(ArgsError) as exc:
        VllmModelSettings(model_id="acme/unknown-13b", weights_uri="https://example.com/w", max_model_len=64,
                          gpu_memory_utilization=1.2, served_model_name="bad name!",
                          extra_args=["--tensor-parallel-size", "4", "--port=9000"])
    text = str(exc.value)
    assert "invalid VllmModelSettings" in text
    assert "max_model_len = 64: expected a number >= 128" in text
    assert "gpu_memory_utilization = 1.2: expected a number <= 0.98" in text
    # cross-field rules run once the fields are valid
    with pytest.raises(ArgsError) as exc:
        VllmModelSettings(model_id="acme/unknown-13b", weights_uri="https://example.com/w",
                          served_model_name="bad name!", extra_args=["--tensor-parallel-size", "4", "--port=9000"])
    text = str(exc.value)
    assert "5 problems" in text
    assert "model_id = 'acme/unknown-13b': a model in the catalogue" in text
    assert "weights_uri = 'https://example.com/w': an S3 URI such as s3://" in text
    assert "served_model_name = 'bad name!'" in text
    assert "extra_args[0] = '--tensor-parallel-size': --tensor-parallel-size is set from a typed setting" in text
    assert "extra_args[2] = '--port=9000': --port is set from a typed setting" in text


def test_weights_required_unless_hub_download_allowed():
    with pytest.raises(ArgsError, match=r"weights_uri = None: required: s3://bucket/prefix"):
        VllmModelSettings(model_id=LLAMA)


def test_context_longer_than_the_model_is_rejected():
    with pytest.raises(ArgsError, match=r"max_model_len = 200000: <= the model's context \(131072 tokens\)"):
        settings(max_model_len=200000)


def test_unknown_model_with_facts_is_accepted():
    s = VllmModelSettings(model_id="acme/custom-3b", weights_uri="s3://models-bucket/custom/",
                          model_facts={"parameters_billion": 3, "layers": 28, "attention_heads": 24, "kv_heads": 8,
                                       "head_dim": 128, "max_context": 8192})
    assert s.facts().layers == 28
