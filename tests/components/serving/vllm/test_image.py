"""VllmImage: ECR repository posture, lifecycle, and the image build as a Pulumi resource."""

from __future__ import annotations

import json
from pathlib import Path

from components import versions
from components.catalog.vendors import VENDORS
from components.serving.vllm.image import (CONTEXT_DIR, VllmImage, VllmImageArgs, base_image, context_digest, dockerfile,
                                           engine_version, image_tag, lifecycle_policy)
from infra.plan import run_program


def test_repository_is_scanned_immutable_and_kms_encrypted():
    result = run_program(lambda: VllmImage("vllm-nvidia", VllmImageArgs(vendor="nvidia", tags={"team": "ml"})))
    repo = result.one("aws:ecr/repository:Repository", "vllm-nvidia-repo")
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo.get("encryptionConfigurations.0.encryptionType") == "KMS"
    key = result.one("aws:kms/key:Key", "vllm-nvidia-key")
    assert key.inputs["enableKeyRotation"] is True
    assert repo.get("encryptionConfigurations.0.kmsKey") == key.outputs["arn"]
    assert repo.inputs["tags"] == {"team": "ml"}
    lc = result.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "vllm-nvidia-lifecycle")
    assert json.loads(lc.inputs["policy"]) == lifecycle_policy(10, 7)


def test_image_build_and_push_inputs():
    result = run_program(lambda: VllmImage("vllm-neuron", VllmImageArgs(vendor="neuron")))
    img = result.one("docker-build:index:Image", "vllm-neuron-image")
    assert img.inputs["push"] is True
    assert img.inputs["buildOnPreview"] is False
    assert img.inputs["platforms"] == ["linux/amd64"]
    assert img.inputs["buildArgs"] == {"BASE_IMAGE": base_image("neuron")}
    assert base_image("neuron") == f"public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:{versions.VLLM_NEURON_DLC.version}"
    assert img.inputs["dockerfile"]["location"].endswith("serving/vllm/Dockerfile.neuron")
    assert not img.inputs["context"]["location"].startswith("/")  # relative to the project, no machine paths
    tag = img.inputs["tags"][0]
    assert tag.endswith(f"/genai-scale/{result.stack}/vllm-neuron:{image_tag('neuron')}")
    assert "[secret]" in json.dumps(img.inputs["registries"]) or "value" in img.inputs["registries"]


def test_tag_follows_the_build_context(tmp_path):
    (tmp_path / "Dockerfile.nvidia").write_text("FROM x\n")
    first = context_digest(tmp_path)
    (tmp_path / "entrypoint.py").write_text("print(1)\n")
    assert context_digest(tmp_path) != first
    assert image_tag("nvidia", tmp_path).startswith(f"{versions.VLLM.version}-")


def test_dockerfiles_pin_the_base_run_non_root_and_bake_no_weights():
    nvidia = (CONTEXT_DIR / "Dockerfile.nvidia").read_text()
    neuron = (CONTEXT_DIR / "Dockerfile.neuron").read_text()
    assert f"ARG BASE_IMAGE={base_image('nvidia')}" in nvidia
    assert f"ARG BASE_IMAGE={base_image('neuron')}" in neuron
    for text in (nvidia, neuron):
        assert "USER ${UID}" in text and "ARG UID=10001" in text
        assert 'ENTRYPOINT ["/usr/local/bin/genai-scale-vllm"]' in text
        assert ":latest" not in text
        assert not any(w in text.lower() for w in (".safetensors", "huggingface-cli download", "hf download"))
    files = sorted(p.name for p in CONTEXT_DIR.iterdir() if p.is_file())
    assert files == ["Dockerfile.neuron", "Dockerfile.nvidia", "__init__.py", "entrypoint.py", "pool_gate.py"]
    assert "COPY --chmod=0755 pool_gate.py /usr/local/bin/genai-scale-pool-gate" in nvidia
    assert Path(CONTEXT_DIR / "entrypoint.py").stat().st_mode & 0o111


def test_image_family_comes_from_the_vendor_registry():
    # each vendor's record names its base image and engine pins and its Dockerfile; the image follows them
    assert base_image("nvidia") == f"docker.io/vllm/vllm-openai:v{versions.VLLM.version}"
    assert (engine_version("nvidia"), engine_version("neuron")) == (versions.VLLM.version,
                                                                    versions.VLLM_NEURON_ENGINE_VERSION)
    for name in VENDORS:
        assert (CONTEXT_DIR / dockerfile(name)).is_file(), name
        assert image_tag(name).startswith(f"{engine_version(name)}-")
    result = run_program(lambda: VllmImage("vllm-nvidia", VllmImageArgs(vendor="nvidia")))
    img = result.one("docker-build:index:Image", "vllm-nvidia-image")
    assert img.inputs["dockerfile"]["location"].endswith("serving/vllm/Dockerfile.nvidia")
    assert img.inputs["buildArgs"] == {"BASE_IMAGE": base_image("nvidia")}
