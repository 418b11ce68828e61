"""genai-scale components: ``from components import GpuNodeGroup, GpuNodeGroupArgs, ...``.

Names load lazily (each component module pulls in the pulumi_aws / pulumi_kubernetes modules it needs only when used).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # foundation
    "Network": "foundation.network", "NetworkArgs": "foundation.network", "ExistingVpc": "foundation.network",
    "EksCluster": "foundation.eks_cluster", "EksClusterArgs": "foundation.eks_cluster",
    "GpuNodeGroup": "foundation.gpu_node_group", "GpuNodeGroupArgs": "foundation.gpu_node_group", "AcceleratorFacts": "foundation.gpu_node_group",
    "GpuOperator": "foundation.gpu_operator", "GpuOperatorArgs": "foundation.gpu_operator",
    "NeuronDevicePlugin": "foundation.neuron_device_plugin", "NeuronDevicePluginArgs": "foundation.neuron_device_plugin",
    "ClusterAutoscaler": "foundation.cluster_autoscaler", "ClusterAutoscalerArgs": "foundation.cluster_autoscaler",
    # edge and managed inference
    "Alb": "edge.alb", "AlbArgs": "edge.alb", "AlbTargetArgs": "edge.alb", "LbController": "edge.lb_controller", "LbControllerArgs": "edge.lb_controller",
    "SemanticCache": "edge.semantic_cache", "SemanticCacheArgs": "edge.semantic_cache",
    "BedrockProvisionedThroughput": "managed.bedrock_throughput",
    "BedrockProvisionedThroughputArgs": "managed.bedrock_throughput",
    "SageMakerLmiEndpoint": "managed.sagemaker_endpoint", "SageMakerLmiEndpointArgs": "managed.sagemaker_endpoint",
    # serving
    "VllmImage": "serving.vllm.image", "VllmImageArgs": "serving.vllm.image",
    "VllmService": "serving.vllm.service", "VllmServiceArgs": "serving.vllm.args",
    "VllmModelSettings": "serving.vllm.args", "ModelFacts": "serving.vllm.args",
    "AutoscalingSettings": "serving.vllm.args", "NodeGroupPlacement": "serving.vllm.args",
    "placement_from_node_group": "serving.vllm.args", "AcceleratorSpec": "catalog.accelerators",
    "Keda": "serving.keda", "KedaArgs": "serving.keda", "Monitoring": "serving.monitoring", "MonitoringArgs": "serving.monitoring",
    "Gateway": "gateway.gateway", "GatewayArgs": "gateway.gateway", "TenantSpec": "gateway.gateway",
    # shared
    "ArgsError": "errors", "Problem": "errors",
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
