"""A GPU node group with one vLLM service on an EKS cluster, composed from genai-scale components.

Plan it offline with ``genai-scale plan --program examples/gpu-vllm`` (and ``genai-scale policy --program
examples/gpu-vllm``). Config (``pulumi config set <key> <value>``, all optional):

- ``team``: the cost-allocation team tag. Default: ml-platform.
- ``instanceType``: the GPU instance type of the node group. Default: g5.xlarge (1 x A10G, 24 GiB).
- ``modelId``: the Hugging Face model vLLM serves (one in components/catalog/models.py). Default:
  Qwen/Qwen2.5-7B-Instruct.
- ``maxNodes``: the node group's upper bound. Default: 2.
- ``peakRequestsPerSecond``: the demand the service must carry at its daily peak (off-peak a quarter of it), planned
  with the capacity planner; its ScaledObject carries the result (``genai-scale capacity --program
  examples/gpu-vllm`` and the policy pack judge it). Default: 1.

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
from components.capacity import Demand, Slo, TargetSpec, plan_target
from components.capacity.facts import capacity_facts
from components.catalog import models

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
model_id = config.get("modelId") or "Qwen/Qwen2.5-7B-Instruct"
peak = config.get_float("peakRequestsPerSecond") or 1.0
# what one replica carries at the SLO, and how many the peak needs (pure: components.capacity, docs/capacity.md)
row = models.lookup(model_id)
capacity = plan_target(
    TargetSpec(name="llm", kind="vllm", model=model_id, params_billion=row.parameters_billion if row else None,
               accelerator=placement.accelerator.accelerator, instance_type=placement.accelerator.instance_type,
               min_replicas=0, max_replicas=2, max_concurrency=16, region=region),
    Demand(peak_requests_per_second=peak, off_peak_requests_per_second=peak / 4, prompt_tokens=1000,
           output_tokens=200, slo=Slo(ttft_p95_ms=2000, itl_p95_ms=150)))
llm = VllmService("llm", VllmServiceArgs(
    cluster=eks, placement=placement, image=base_image(placement.accelerator.vendor),
    model=VllmModelSettings(model_id=model_id, max_model_len=4096, max_num_seqs=16, allow_hub_download=True),
    autoscaling=AutoscalingSettings(min_replicas=0, max_replicas=2), prometheus_url=monitoring.prometheus_url,
    capacity=capacity_facts(capacity) if capacity.demand else None,
    after=[keda.release, monitoring.release], tags=tags), opts=pulumi.ResourceOptions(depends_on=[namespace]))

pulumi.export("clusterName", eks.cluster_name)
pulumi.export("kubeconfig", pulumi.Output.secret(eks.kubeconfig))
pulumi.export("serviceUrl", llm.service_url)
pulumi.export("servedModelName", llm.served_model_name)
