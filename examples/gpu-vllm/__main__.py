"""A GPU node group with one vLLM service on an EKS cluster, composed from genai-scale components.

Plan it offline with ``genai-scale plan --program examples/gpu-vllm`` (and ``genai-scale policy --program
examples/gpu-vllm``). Config (``pulumi config set <key> <value>``, all optional):

- ``team``: the cost-allocation team tag. Default: ml-platform.
- ``instanceType``: the GPU instance type of the node group. Default: g5.xlarge (1 x A10G, 24 GiB).
- ``modelId``: the Hugging Face model vLLM serves (one in components/catalog/models.py). Default:
  Qwen/Qwen2.5-7B-Instruct.
- ``maxNodes``: the node group's upper bound. Default: 2.

The GPU group and the model scale to zero when idle: KEDA starts a replica when requests wait, the cluster autoscaler
then adds a GPU node. The weights are downloaded from the Hugging Face Hub at start (set ``weights_uri`` to an S3
prefix in production).
"""

import pulumi
import pulumi_kubernetes as k8s

from components import (AutoscalingSettings, ClusterAutoscaler, ClusterAutoscalerArgs, EksCluster, EksClusterArgs,
                        GpuNodeGroup, GpuNodeGroupArgs, GpuOperator, GpuOperatorArgs, Keda, KedaArgs, Monitoring,
                        MonitoringArgs, Network, NetworkArgs, VllmModelSettings, VllmService, VllmServiceArgs,
                        base_image, placement_from_node_group)

config = pulumi.Config()
tags = {"team": config.get("team") or "ml-platform", "environment": pulumi.get_stack(), "tier": "prototype"}
region = pulumi.Config("aws").get("region") or "us-east-1"

net = Network("net", NetworkArgs(az_count=2, nat_gateways="single", tags=tags))
eks = EksCluster("eks", EksClusterArgs(vpc_id=net.vpc_id, subnet_ids=net.private_subnet_ids, system_min_size=1,
                                       system_max_size=3, tags=tags))
gpu = GpuNodeGroup("gpu", GpuNodeGroupArgs(cluster=eks, instance_type=config.get("instanceType") or "g5.xlarge",
                                           min_size=0, max_size=config.get_int("maxNodes") or 2, tags=tags),
                   opts=pulumi.ResourceOptions(depends_on=[eks]))

k8s_opts = pulumi.ResourceOptions(provider=eks.k8s_provider)
GpuOperator("gpu-operator", GpuOperatorArgs(), opts=k8s_opts)
ClusterAutoscaler("cluster-autoscaler", ClusterAutoscalerArgs(cluster=eks, region=region, tags=tags), opts=k8s_opts)
keda = Keda("keda", KedaArgs(), opts=k8s_opts)
monitoring = Monitoring("monitoring", MonitoringArgs(retention_days=7), opts=k8s_opts)

namespace = k8s.core.v1.Namespace("serving", metadata={
    "name": "genai-serving", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}, opts=k8s_opts)
placement = placement_from_node_group(gpu)
llm = VllmService("llm", VllmServiceArgs(
    cluster=eks, placement=placement, image=base_image(placement.accelerator.vendor),
    model=VllmModelSettings(model_id=config.get("modelId") or "Qwen/Qwen2.5-7B-Instruct", max_model_len=4096,
                            max_num_seqs=16, allow_hub_download=True),
    autoscaling=AutoscalingSettings(min_replicas=0, max_replicas=2), prometheus_url=monitoring.prometheus_url,
    after=[keda.release, monitoring.release], tags=tags), opts=pulumi.ResourceOptions(depends_on=[namespace]))

pulumi.export("clusterName", eks.cluster_name)
pulumi.export("kubeconfig", pulumi.Output.secret(eks.kubeconfig))
pulumi.export("serviceUrl", llm.service_url)
pulumi.export("servedModelName", llm.served_model_name)
