"""Weights streamed from S3 with the Run:ai Model Streamer: rendered flags (parsed by vLLM's own parser), no download
step, concurrency from the node size, and every validation message."""

from __future__ import annotations

import json

import pytest

from components.errors import ArgsError
from components.serving.vllm.args import (STREAMER_CONCURRENCY_MAX, STREAMER_CONCURRENCY_MIN, VllmModelSettings,
                                          VllmServiceArgs, streamer_concurrency)
from components.serving.vllm.manifests import render_manifests
from tests.kit.vllm import placement

LLAMA8, LLAMA70 = "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"
URI = "s3://genai-models/llama-8b/"
WIRING = dict(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/genai-scale/vllm-nvidia:0.31.0-abc@sha256:00",
              prometheus_url="http://prometheus.monitoring.svc:9090",
              oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
              oidc_issuer="oidc.eks.us-east-1.amazonaws.com/id/X")


def service(instance_type="g5.12xlarge", model_id=LLAMA8, tp=1, **model_kw) -> VllmServiceArgs:
    m = VllmModelSettings(model_id=model_id, weights_uri=URI, max_model_len=4096, max_num_seqs=8,
                          kv_tokens_per_sequence=1024, tensor_parallel_size=tp, **model_kw)
    return VllmServiceArgs(model=m, placement=placement("g", instance_type), **WIRING)


def container(args: VllmServiceArgs) -> dict:
    return render_manifests("llama", args)["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_streamer_renders_the_s3_model_and_loader_config_that_vllm_accepts(vllm_parser):
    argv = container(service(load_format="runai_streamer"))["args"]
    assert argv[0] == URI  # the model is the S3 URI itself
    ns = vllm_parser.parse(argv)
    assert ns.load_format == "runai_streamer"
    assert ns.model_loader_extra_config == {"concurrency": 16}


def test_streamer_has_no_download_step_and_no_weights_volume():
    c = container(service(load_format="runai_streamer"))
    env = {e["name"] for e in c["env"]}
    assert "MODEL_SOURCE" not in env and "HF_HUB_OFFLINE" not in env
    assert "/models" not in {m["mountPath"] for m in c["volumeMounts"]}
    default = container(service())
    assert {"name": "MODEL_SOURCE", "value": URI} in default["env"]
    assert default["args"][0] == "/models/weights" and "--load-format" not in default["args"]


@pytest.mark.parametrize("instance_type, model_id, tp, expected", [
    ("g5.12xlarge", LLAMA8, 1, STREAMER_CONCURRENCY_MIN),   # 48 vCPUs / 4 GPUs = 12 -> at least 16
    ("g6e.48xlarge", LLAMA8, 4, 96),                       # 192 / 8 * 4 = 96 -> capped
    ("g5.48xlarge", LLAMA8, 2, 48),                        # 192 / 8 * 2
    ("p5.48xlarge", LLAMA70, 8, STREAMER_CONCURRENCY_MAX),  # 192 vCPUs -> capped at 64
])
def test_concurrency_follows_the_replicas_share_of_the_node(instance_type, model_id, tp, expected):
    a = service(instance_type, model_id, tp, load_format="runai_streamer")
    assert streamer_concurrency(a) == min(expected, STREAMER_CONCURRENCY_MAX)
    flag = container(a)["args"].index("--model-loader-extra-config")
    assert json.loads(container(a)["args"][flag + 1]) == {"concurrency": min(expected, STREAMER_CONCURRENCY_MAX)}


def test_explicit_concurrency_wins():
    a = service(load_format="runai_streamer", streamer_concurrency=32)
    assert streamer_concurrency(a) == 32
    assert '{"concurrency":32}' in container(a)["args"]


def test_streamer_needs_weights_uri():
    with pytest.raises(ArgsError) as exc:
        VllmModelSettings(model_id=LLAMA8, allow_hub_download=True, load_format="runai_streamer")
    assert "load_format = 'runai_streamer': auto without weights_uri (the streamer reads the weights from S3" \
        in str(exc.value)


def test_concurrency_only_with_the_streamer():
    with pytest.raises(ArgsError) as exc:
        VllmModelSettings(model_id=LLAMA8, weights_uri=URI, streamer_concurrency=8)
    assert "streamer_concurrency = 8: only with load_format runai_streamer" in str(exc.value)


def test_load_format_flags_are_typed_settings():
    with pytest.raises(ArgsError) as exc:
        VllmModelSettings(model_id=LLAMA8, weights_uri=URI, extra_args=["--load-format", "runai_streamer"])
    assert "--load-format is set from a typed setting" in str(exc.value)


def test_streamer_is_refused_on_neuron_node_groups():
    with pytest.raises(ArgsError) as exc:
        service("inf2.48xlarge", tp=2, load_format="runai_streamer")
    assert "model.load_format = 'runai_streamer': auto on" in str(exc.value)
    assert "(genai-scale adds and checks the streamer in the NVIDIA image only)" in str(exc.value)


def test_nvidia_image_carries_a_streamer_version_the_pinned_vllm_accepts():
    import importlib.metadata
    import re

    from packaging.requirements import Requirement

    from components.serving.vllm.image import CONTEXT_DIR

    text = (CONTEXT_DIR / "Dockerfile.nvidia").read_text()
    pinned = re.search(r"^ARG RUNAI_STREAMER_VERSION=(\S+)$", text, re.M)
    assert pinned and '"runai-model-streamer[s3]==${RUNAI_STREAMER_VERSION}"' in text
    assert 'python3 -c "import runai_model_streamer"' in text  # the build fails if the streamer is missing
    runai = [Requirement(r) for r in importlib.metadata.requires("vllm") or [] if 'extra == "runai"' in r]
    assert runai and all(pinned.group(1) in r.specifier for r in runai if r.name == "runai-model-streamer")
