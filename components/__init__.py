"""genai-scale components: ``from components import GpuNodeGroup, GpuNodeGroupArgs, ...``.

Names load lazily (each component module pulls in the pulumi_aws / pulumi_kubernetes modules it needs only when used).
"""

from __future__ import annotations

from components._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # public name -> the module that defines it (imported on first use)
    # foundation
    "Network": "components.foundation.network", "NetworkArgs": "components.foundation.network", "ExistingVpc": "components.foundation.network",
    "EksCluster": "components.foundation.eks_cluster", "EksClusterArgs": "components.foundation.eks_cluster",
    "GpuNodeGroup": "components.foundation.gpu_node_group", "GpuNodeGroupArgs": "components.foundation.gpu_node_group", "AcceleratorFacts": "components.catalog.accelerators", "NodeTaint": "components.foundation.gpu_node_group",
    "GpuOperator": "components.foundation.gpu_operator", "GpuOperatorArgs": "components.foundation.gpu_operator",
    "NeuronDevicePlugin": "components.foundation.neuron_device_plugin", "NeuronDevicePluginArgs": "components.foundation.neuron_device_plugin",
    "EfaDevicePlugin": "components.foundation.efa_device_plugin", "EfaDevicePluginArgs": "components.foundation.efa_device_plugin",
    "ClusterAutoscaler": "components.foundation.cluster_autoscaler", "ClusterAutoscalerArgs": "components.foundation.cluster_autoscaler",
    "Karpenter": "components.foundation.karpenter", "KarpenterArgs": "components.foundation.karpenter",
    "KarpenterNodePools": "components.foundation.node_pools", "KarpenterNodePoolsArgs": "components.foundation.node_pools",
    "NodePoolSpec": "components.foundation.node_pools", "serving_pod_disruption": "components.foundation.node_pools",
    "SharedCacheFileSystem": "components.foundation.shared_cache", "SharedCacheFileSystemArgs": "components.foundation.shared_cache",
    # edge and managed inference
    "Alb": "components.edge.alb", "AlbArgs": "components.edge.alb", "AlbTargetArgs": "components.edge.alb", "LbController": "components.edge.lb_controller", "LbControllerArgs": "components.edge.lb_controller",
    "SemanticCache": "components.edge.semantic_cache", "SemanticCacheArgs": "components.edge.semantic_cache",
    "BedrockProvisionedThroughput": "components.managed.bedrock_throughput",
    "BedrockProvisionedThroughputArgs": "components.managed.bedrock_throughput",
    "SageMakerLmiEndpoint": "components.managed.sagemaker_endpoint", "SageMakerLmiEndpointArgs": "components.managed.sagemaker_endpoint",
    # serving
    "VllmImage": "components.serving.vllm.image", "VllmImageArgs": "components.serving.vllm.image",
    "base_image": "components.serving.vllm.image",
    "VllmService": "components.serving.vllm.service", "VllmServiceArgs": "components.serving.vllm.args",
    "VllmModelSettings": "components.serving.vllm.args", "ModelFacts": "components.catalog.models",
    "AutoscalingSettings": "components.serving.vllm.args", "NodeGroupPlacement": "components.serving.vllm.args",
    "placement_from_node_group": "components.serving.vllm.args", "AcceleratorSpec": "components.catalog.accelerators",
    "ModelPool": "components.serving.pools.pool", "ModelPoolArgs": "components.serving.pools.args",
    "PoolModel": "components.serving.pools.args", "PoolAdapter": "components.serving.pools.args",
    "MultiNodeVllmService": "components.serving.vllm.multinode_service",
    "MultiNodeVllmServiceArgs": "components.serving.vllm.multinode", "planned_layout": "components.serving.vllm.multinode",
    "Layout": "components.serving.vllm.fit",
    "CronFloor": "components.capacity.schedule", "TrafficProfile": "components.capacity.schedule",
    "LeaderWorkerSetController": "components.serving.lws", "LeaderWorkerSetControllerArgs": "components.serving.lws",
    "Keda": "components.serving.keda", "KedaArgs": "components.serving.keda", "Monitoring": "components.serving.monitoring", "MonitoringArgs": "components.serving.monitoring",
    "BatchInference": "components.batch.batch_inference", "BatchInferenceArgs": "components.batch.batch_inference",
    "BedrockBatchServiceRole": "components.batch.bedrock_batch", "BedrockBatchServiceRoleArgs": "components.batch.bedrock_batch",
    "VectorStore": "components.rag.vector_store", "VectorStoreArgs": "components.rag.vector_store",
    "VectorWorkload": "components.rag.vector_store", "AuroraVectorSettings": "components.rag.vector_store",
    "QdrantSettings": "components.rag.vector_store",
    "EmbeddingService": "components.rag.embedding_service", "EmbeddingServiceArgs": "components.rag.embedding_service",
    "EmbeddingAutoscaling": "components.rag.embedding_service",
    "Ingestion": "components.rag.ingestion", "IngestionArgs": "components.rag.ingestion",
    "Gateway": "components.gateway.gateway", "GatewayArgs": "components.gateway.gateway", "TenantSpec": "components.gateway.gateway",
    # shared
    "ArgsError": "components.errors", "Problem": "problems",
    "aws_name": "components.naming", "name_problems": "components.naming", "NameRule": "components.naming",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
