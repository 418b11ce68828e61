"""Cold-start phase figures: how long a new vLLM replica takes from a pending pod to a ready model, phase by phase.

Data with sources, no measurements of our own. bench/coldstart/model.py prints the per-tier table from these figures,
and the pre-scaling schedule (:func:`components.capacity.schedule.lead_minutes`) opens a cron floor this long before
the hour the demand rises. Sources (anchors-next §1 "vs cluster-autoscaler" and §6 "Cold start", checked 2026-12):

- **node**: a pending pod to a Ready GPU node. Managed node group + cluster autoscaler 3-5 min (240 s, the middle),
  Karpenter under 60 s (60 s): third-party blogs only, no AWS benchmark (uncertain;
  https://zop.dev/resources/blogs/kubernetes-cluster-autoscaler-vs-karpenter-production/ and
  https://rajatarya.github.io/kubernetes-first-principles/32-node-scaling.html). Seed 003 §4.2: 2-10 min for GPU nodes.
- **image**: a 15-20 GB image takes 4-6 min with a standard pull (300 s, the middle; AWS containers blog
  https://aws.amazon.com/blogs/containers/introducing-seekable-oci-parallel-pull-mode-for-amazon-eks/ and the AWS ML
  blog on SOCI with the DLAMI/DLC). SOCI parallel pull: 14-50 % faster for un-indexed images (32 %, the middle;
  uncertain).
- **weights**: Llama-3-8B on g5.12xlarge from GP3: 47.99 s with vLLM's default safetensors loader, 14.34 s with the
  Run:ai Model Streamer (NVIDIA blog summary of Run:ai's benchmark,
  https://hyper.ai/en/headlines/62da06ca86a30dbdb45cccbf439905fa; the S3 figure was not captured, so S3 streaming is
  taken equal to GP3: uncertain). Downloading the weights to the pod first: 61 s for Llama-3.1-8B (tensorfuse,
  https://tensorfuse.io/docs/blogs/reducing_gpu_cold_start, download phase). Both scale with the bytes one node holds
  (parameters / nodes; an assumption: per-node bandwidth is the limit).
- **compile**: dynamo + inductor compile + CUDA-graph capture + engine init, Llama-3.1-8B on L40S: 10 + 42 + 54 + 94 =
  200 s cold, 10 + 13 + 7 + 34 = 64 s with warm caches (https://tensorfuse.io/docs/blogs/reducing_gpu_cold_start).
  Taken the same for every model size (an assumption).
"""

from __future__ import annotations

from typing import Literal

Provisioner = Literal["managed-node-groups", "karpenter"]

NODE_SECONDS: dict[str, float] = {"managed-node-groups": 240.0, "karpenter": 60.0}
"""Pending pod to a Ready GPU node, per node provisioner (see the module docstring)."""
IMAGE_STANDARD_SECONDS = 300.0
"""Standard pull and unpack of a 15-20 GB vLLM image."""
VLLM_IMAGE_SIZE_CLASS = ("large: about 12-13 GB to pull and 25-29 GB unpacked (CUDA, PyTorch, FlashInfer, vLLM), the "
                         "15-20 GB+ class AWS times at 4-6 min per standard pull")
"""The NVIDIA vLLM image (``vllm/vllm-openai``, the base of genai-scale's build): 12.64 GB reported for the pulled
image (https://discuss.vllm.ai/t/current-vllm-docker-image-size-is-12-64gb-how-to-reduce-it/1204, 2025; "around
12 GB" in https://github.com/vllm-project/vllm/issues/27154, 2025-10-18), 28.6 GB for ``vllm-openai:latest`` on disk
(https://github.com/vllm-project/vllm/pull/22377, updated 2025-12-10), up to 25 GB filling 50 GB node disks
(https://github.com/vllm-project/vllm/issues/17163, 2025-04-25). Read 2026-12-06; not measured here."""
SOCI_PARALLEL_SAVING = 0.32
"""Share of the pull SOCI parallel pull saves (14-50 %, the middle; uncertain)."""
WEIGHTS_8B_DEFAULT_LOAD = 47.99
"""Llama-3-8B weights into GPU memory with the default safetensors loader, seconds."""
WEIGHTS_8B_STREAMER = 14.34
"""Llama-3-8B weights into GPU memory with the Run:ai Model Streamer, seconds."""
WEIGHTS_8B_DOWNLOAD = 61.0
"""Llama-3.1-8B weights downloaded to the pod before loading, seconds."""
REFERENCE_PARAMS_B = 8.03
"""Parameters (billions) of the model the weight figures were taken with (Llama 3.1 8B model card)."""
COMPILE_COLD = 10 + 42 + 54 + 94
"""Dynamo + inductor compile + CUDA-graph capture + engine init with cold caches, seconds."""
COMPILE_WARM = 10 + 13 + 7 + 34
"""The same with warm compile caches, seconds."""


def phase_seconds(params_billion: float, *, nodes: int = 1, provisioner: Provisioner = "managed-node-groups",
                  new_node: bool = True, soci: bool = False, streamer: bool = False, warm_compile: bool = False,
                  weights_on_disk: bool = False) -> dict[str, float]:
    """Seconds per phase (``node``, ``image``, ``weights``, ``compile``) for a replica of ``params_billion`` spread
    over ``nodes`` nodes. ``new_node`` False: the pod lands on a node that is already up with the image (no node, no
    pull). ``weights_on_disk``: the pod's volume still holds the weights (no download)."""
    scale = params_billion / nodes / REFERENCE_PARAMS_B
    image = IMAGE_STANDARD_SECONDS * ((1 - SOCI_PARALLEL_SAVING) if soci else 1)
    download = 0.0 if weights_on_disk else WEIGHTS_8B_DOWNLOAD
    weights = WEIGHTS_8B_STREAMER if streamer else download + WEIGHTS_8B_DEFAULT_LOAD
    return {"node": NODE_SECONDS[provisioner] if new_node else 0.0,
            "image": round(image, 1) if new_node else 0.0,
            "weights": round(weights * scale, 1),
            "compile": float(COMPILE_WARM if warm_compile else COMPILE_COLD)}
