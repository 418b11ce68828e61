"""The gateway routes each vLLM service's requests by prefix affinity over the service's headless ``-replicas``
Service in every shipped stack (issue 17, cache-aware routing); ``gateway.prefixAffinity: false`` goes back to least
outstanding requests over the ClusterIP Service."""

from __future__ import annotations

import pytest
import yaml

from infra import program
from infra.config import ROOT, build_settings, read_stack_file
from infra.plan import run_program
from serving.gateway.config import parse_config
from tests.stack_plans import planned


def gateway_config(result) -> dict:
    return yaml.safe_load(result.named("gateway-config").inputs["data"]["gateway.yaml"])


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_vllm_routes_use_prefix_affinity_over_the_headless_service(stack):
    result, _ = planned(stack)
    cfg = gateway_config(result)
    headless = {f"{r.get('metadata.name')}.{r.get('metadata.namespace')}.svc.cluster.local"
                for r in result.by_type("kubernetes:core/v1:Service") if r.get("spec.clusterIP") == "None"}
    vllm = {name: up for name, up in cfg["upstreams"].items() if name.startswith("vllm-")}
    assert vllm, "every shipped stack serves at least one vLLM model"
    for name, up in vllm.items():
        assert up["replicas"]["dns"] in headless, (name, up["replicas"])
        assert up["replicas"]["port"] == 8000
        assert cfg["routes"][name.removeprefix("vllm-")]["routing"] == {"strategy": "prefix-affinity"}
    parse_config(cfg)  # the gateway accepts what the infra renders


def test_prefix_affinity_can_be_turned_off():
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.dev.yaml")
    raw["genai-scale:gateway"] = {**(raw.get("genai-scale:gateway") or {}), "prefixAffinity": False}
    cfg = build_settings(raw, source="dev")
    result = run_program(lambda: program.build_stack(cfg, "dev"), stack="dev", config=raw)
    gw = gateway_config(result)
    assert all("replicas" not in up for name, up in gw["upstreams"].items() if name.startswith("vllm-"))
    assert all("routing" not in r for r in gw["routes"].values())
