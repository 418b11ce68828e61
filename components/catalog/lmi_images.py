"""SageMaker serving images: LMI (DJL Serving + vLLM) for NVIDIA GPUs, Hugging Face vLLM Neuron for ``ml.inf2``.

Sources (checked 2026-11):
- LMI tags: aws/deep-learning-containers ``docs/src/data/djl-inference/*.yml`` (``0.36-lmi28.0.0-gpu.yml`` from PR
  #6471, merged 2026-07-31; ``0.38-lmi29.0.0-gpu.yml`` from PR #6774, which says the image was published to 33/33
  Regions on 2026-09-21) and deepjavalibrary/djl-serving ``serving/docs/lmi/release_notes.md``. The DJL prefix is not
  the LMI version (v18-v28 all start ``0.36.0``), so the table is keyed on the LMI number.
- Registry account per Region: aws/sagemaker-python-sdk ``src/sagemaker/image_uri_config/djl-lmi.json``.
- Host AMI per CUDA line: botocore 1.44.5 ``sagemaker`` model, ``ProductionVariant.InferenceAmiVersion`` docs
  (gpu-3-1: driver 550 / CUDA 12.4; al2023 gpu-4-1: driver 580 / CUDA 13.0). Pairing a CUDA 12.6-13.0 image with
  gpu-4-1 is our reading (newer driver runs older CUDA user space), not an AWS statement.
- Neuron: djl-serving removed Neuron support on 2025-11-03 (commit 1132e3ab), so ``ml.inf2`` uses the Hugging Face
  vLLM Neuron DLC: repository ``huggingface-vllm-inference-neuronx`` and its Regions from sagemaker-python-sdk
  ``image_uri_config/huggingface-vllm-neuronx.json``; tag ``0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04``
  as published in the AWS Neuron DLC tables (several public deployment guides quote the same URI). Its entrypoint
  reads ``SM_ON_*`` variables: ``SM_ON_MODEL``, ``SM_ON_TENSOR_PARALLEL_SIZE``, ``SM_ON_BATCH_SIZE`` (vLLM
  ``--max-num-seqs``) and ``SM_ON_SEQUENCE_LENGTH`` (vLLM ``--max-model-len``): huggingface/optimum-neuron v0.4.5
  ``docker/vllm/Dockerfile`` (``SM_ON_<X>`` -> ``--<x>``) and ``optimum/commands/neuron/serve.py``, checked
  2026-12-05 (see ``components.managed._sagemaker.NEURON_MANAGED_ENV``).
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("aws/deep-learning-containers docs/src/data/djl-inference; deepjavalibrary/djl-serving release notes; "
          "aws/sagemaker-python-sdk image_uri_config/{djl-lmi,huggingface-vllm-neuronx}.json; botocore 1.44.5")
CHECKED = "2026-11"

LMI_REPOSITORY = "djl-inference"
NEURON_REPOSITORY = "huggingface-vllm-inference-neuronx"


@dataclass(frozen=True)
class LmiImage:
    """One LMI release for NVIDIA GPUs."""

    lmi: int
    tag: str
    cuda: str
    """CUDA line of the image, e.g. ``13.0``."""
    vllm: str | None
    inference_ami_version: str
    """SageMaker host AMI whose driver runs this CUDA line."""


_GPU_3_1 = "al2-ami-sagemaker-inference-gpu-3-1"
_GPU_4_1 = "al2023-ami-sagemaker-inference-gpu-4-1"

LMI_IMAGES: dict[int, LmiImage] = {i.lmi: i for i in (
    LmiImage(13, "0.31.0-lmi13.0.0-cu124", "12.4", None, _GPU_3_1),
    LmiImage(14, "0.32.0-lmi14.0.0-cu126", "12.6", None, _GPU_4_1),
    LmiImage(15, "0.33.0-lmi15.0.0-cu128", "12.8", None, _GPU_4_1),
    LmiImage(17, "0.35.0-lmi17.0.0-cu128", "12.8", "0.11.1", _GPU_4_1),
    LmiImage(18, "0.36.0-lmi18.0.0-cu128", "12.8", "0.12.0", _GPU_4_1),
    LmiImage(22, "0.36.0-lmi22.0.0-cu129", "12.9", "0.17.0", _GPU_4_1),
    LmiImage(27, "0.36.0-lmi27.0.0-cu130", "13.0", "0.23.1", _GPU_4_1),
    LmiImage(28, "0.36.0-lmi28.0.0-cu130", "13.0", "0.26.0", _GPU_4_1),
    LmiImage(29, "0.38.0-lmi29.0.0-cu130", "13.0", "0.28.0", _GPU_4_1),
)}

_DLC_ACCOUNT = "763104351884"

# djl-lmi.json registries: the shared DLC account in most commercial Regions, its own account elsewhere.
LMI_REGISTRIES: dict[str, str] = {
    **{r: _DLC_ACCOUNT for r in (
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-central-1", "eu-north-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "ap-northeast-1", "ap-northeast-2", "ap-south-1",
        "ap-southeast-1", "ap-southeast-2", "sa-east-1")},
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896",
    "eu-south-1": "692866216735",
    "me-south-1": "217643126080",
    "me-central-1": "914824155844",
    "il-central-1": "780543022126",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}

NEURON_VLLM_TAG = "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04"
NEURON_REGISTRIES: dict[str, str] = {r: _DLC_ACCOUNT for r in (
    "ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "eu-central-1", "eu-west-1", "eu-west-3",
    "sa-east-1", "us-east-1", "us-east-2", "us-west-2")}


def ecr_domain(region: str) -> str:
    """ECR registry domain suffix for a Region (China Regions use amazonaws.com.cn)."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def lmi_image_uri(lmi: int, region: str) -> str:
    """Full LMI image URI; KeyError if the release or the Region is unknown (callers validate first)."""
    image = LMI_IMAGES[lmi]
    account = LMI_REGISTRIES[region]
    return f"{account}.dkr.ecr.{region}.{ecr_domain(region)}/{LMI_REPOSITORY}:{image.tag}"


def neuron_image_uri(region: str, tag: str = NEURON_VLLM_TAG) -> str:
    """Hugging Face vLLM Neuron image URI; KeyError if the Region does not host it."""
    account = NEURON_REGISTRIES[region]
    return f"{account}.dkr.ecr.{region}.{ecr_domain(region)}/{NEURON_REPOSITORY}:{tag}"
