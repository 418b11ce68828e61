"""Cross-section wiring in the real stacks: what one section produces, the next one consumes correctly."""

import pytest
import yaml

from infra.plan import jsonable
from tests.stack_plans import planned
from serving.gateway.metrics import Metrics

def plan(stack):
    return planned(stack)[0]


def gateway_config(result):
    return yaml.safe_load(result.one("kubernetes:core/v1:ConfigMap", "gateway-config").inputs["data"]["gateway.yaml"])


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_gateway_authenticates_to_every_vllm_service_with_its_key(stack):
    result = plan(stack)
    cfg = gateway_config(result)
    secrets = {r.name: jsonable(r.inputs, reveal_secrets=True) for r in result.by_type("kubernetes:core/v1:Secret")}
    upstream_keys = secrets["gateway-upstream-keys"]["stringData"]
    env = result.one("kubernetes:apps/v1:Deployment", "gateway-deployment").inputs["spec"]["template"]["spec"][
        "containers"][0]["env"]
    env_refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    vllm_upstreams = {k: v for k, v in cfg["upstreams"].items() if k.startswith("vllm-")}
    assert vllm_upstreams, "every tier serves at least one vLLM model"
    for upstream, spec in vllm_upstreams.items():
        service = upstream[len("vllm-"):]
        var = spec["apiKeyEnv"]
        assert env_refs[var] == {"name": "gateway-upstream-keys", "key": var}
        # the very key the vLLM server requires (its own Secret, read as VLLM_API_KEY)
        assert upstream_keys[var] == secrets[f"{service}-api-key"]["stringData"]["api-key"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_scale_from_zero_trigger_counts_the_gateways_upstream_by_its_name(stack):
    result = plan(stack)
    upstreams = set(gateway_config(result)["upstreams"])
    labels = Metrics().upstream_requests._labelnames
    assert "upstream" in labels
    queries = [t["metadata"]["query"] for so in result.by_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
               for t in so.inputs["spec"]["triggers"] if "gateway_upstream_requests_total" in t["metadata"].get("query", "")]
    if stack == "dev":  # prototype services scale to zero and wake on gateway demand; prod keeps warm replicas
        assert queries
    for q in queries:
        name = q.split('upstream="')[1].split('"')[0]
        assert name in upstreams


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_prometheus_scrapes_the_gateway_and_gets_its_volume(stack):
    result = plan(stack)
    monitoring = result.one("genai-scale:index:Monitoring")
    release = next(r for r in result.by_type("kubernetes:helm.sh/v3:Release") if r.parent == monitoring.urn)
    sm = result.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "gateway-metrics")
    assert release.urn in sm.dependencies  # the CRD exists before the ServiceMonitor
    assert result.one("kubernetes:storage.k8s.io/v1:StorageClass", "eks-gp3").urn in monitoring.dependencies
