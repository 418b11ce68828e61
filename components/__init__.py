"""genai-scale components: ``from components import GpuNodeGroup, GpuNodeGroupArgs, ...``.

Names load lazily (each component module pulls in the pulumi_aws / pulumi_kubernetes modules it needs only when used).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # foundation
    "Network": "network", "NetworkArgs": "network", "ExistingVpc": "network",
    "EksCluster": "eks_cluster", "EksClusterArgs": "eks_cluster",
    "GpuNodeGroup": "gpu_node_group", "GpuNodeGroupArgs": "gpu_node_group", "AcceleratorFacts": "gpu_node_group",
    "GpuOperator": "gpu_operator", "GpuOperatorArgs": "gpu_operator",
    "NeuronDevicePlugin": "neuron_device_plugin", "NeuronDevicePluginArgs": "neuron_device_plugin",
    "ClusterAutoscaler": "cluster_autoscaler", "ClusterAutoscalerArgs": "cluster_autoscaler",
    # edge and managed inference
    "Alb": "alb", "AlbArgs": "alb", "AlbTargetArgs": "alb", "LbController": "lb_controller", "LbControllerArgs": "lb_controller",
    "SemanticCache": "semantic_cache", "SemanticCacheArgs": "semantic_cache",
    "BedrockProvisionedThroughput": "bedrock_throughput",
    "BedrockProvisionedThroughputArgs": "bedrock_throughput",
    "SageMakerLmiEndpoint": "sagemaker_endpoint", "SageMakerLmiEndpointArgs": "sagemaker_endpoint",
    # serving
    "VllmImage": "vllm_image", "VllmImageArgs": "vllm_image",
    "VllmService": "vllm_service", "VllmServiceArgs": "vllm_service",
    "Keda": "keda", "KedaArgs": "keda", "Monitoring": "monitoring", "MonitoringArgs": "monitoring",
    "Gateway": "gateway", "GatewayArgs": "gateway", "TenantSpec": "gateway",
    # shared
    "ArgsError": "_errors", "Problem": "_errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
