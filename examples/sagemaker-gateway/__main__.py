"""A SageMaker real-time endpoint behind the OpenAI-compatible gateway, composed from genai-scale components.

Plan it offline with ``genai-scale plan --program examples/sagemaker-gateway`` (and ``genai-scale policy --program
examples/sagemaker-gateway --tier growth``). Config (``pulumi config set <key> <value>``, all optional):

- ``team``: the cost-allocation team tag. Default: ml-platform.
- ``instanceType``: the endpoint's SageMaker instance type. Default: ml.g6.2xlarge (1 x L4, 24 GiB).
- ``model``: the Hugging Face model the LMI container serves. Default: Qwen/Qwen2.5-7B-Instruct.
- ``maxInstances``: the endpoint's autoscaling ceiling. Default: 2.

The gateway runs in the cluster (two replicas on the system nodes) and calls the endpoint with its IRSA role; clients
reach it inside the cluster at ``genai-gateway/gateway:8080`` with the API key of the ``default`` tenant. The endpoint
keeps at least one GPU instance running: it bills around the clock.
"""

import pulumi

from components import (EksCluster, EksClusterArgs, Gateway, GatewayArgs, Network, NetworkArgs,
                        SageMakerLmiEndpoint, SageMakerLmiEndpointArgs, TenantSpec)

config = pulumi.Config()
region = pulumi.Config("aws").get("region") or "us-east-1"
tags = {"team": config.get("team") or "ml-platform", "environment": pulumi.get_stack(), "tier": "growth"}

net = Network("net", NetworkArgs(az_count=2, nat_gateways="single", tags=tags))
eks = EksCluster("eks", EksClusterArgs(vpc_id=net.vpc_id, subnet_ids=net.private_subnet_ids, tags=tags))

endpoint = SageMakerLmiEndpoint("qwen", SageMakerLmiEndpointArgs(
    instance_type=config.get("instanceType") or "ml.g6.2xlarge",
    model=config.get("model") or "Qwen/Qwen2.5-7B-Instruct", region=region, max_model_len=8192, max_batch_size=32,
    min_instances=1, max_instances=config.get_int("maxInstances") or 2, vpc_id=net.vpc_id,
    subnet_ids=net.private_subnet_ids, tags=tags))

# The gateway's config (serving/gateway schema): one SageMaker upstream and one route to it. No shared cache here,
# so the token/request limiter is off (it needs Redis to count across replicas).
gateway_config = {
    "upstreams": {"sagemaker-qwen": {"kind": "sagemaker", "endpointName": endpoint.endpoint_name, "region": region}},
    "routes": {"qwen": {"targets": [{"upstream": "sagemaker-qwen"}], "maxTokens": 2048}},
    "limiter": {"enabled": False},
}
gateway = Gateway("gateway", GatewayArgs(
    cluster=eks, config=gateway_config, tenants={"default": TenantSpec()},
    invoke_policy_arns={"sagemaker-qwen": endpoint.invoke_policy_arn}, tags=tags))

pulumi.export("clusterName", eks.cluster_name)
pulumi.export("kubeconfig", pulumi.Output.secret(eks.kubeconfig))
pulumi.export("endpointName", endpoint.endpoint_name)
pulumi.export("gatewayService", f"{gateway.namespace}/{gateway.service_name}:8080")
pulumi.export("gatewayApiKeys", pulumi.Output.secret(pulumi.Output.all(**gateway.api_keys)))
