"""Gateway: API keys of upstreams (vLLM services that require one) reach the pods from their own Secret."""

import pytest

from components.errors import ArgsError
from components.gateway.gateway import Gateway, GatewayArgs, TenantSpec, container_spec
from infra.plan import jsonable, run_program

CONFIG = {"upstreams": {"vllm-a": {"kind": "openai", "baseUrl": "http://a:8000/v1", "model": "a",
                                   "apiKeyEnv": "VLLM_A_API_KEY"}},
          "routes": {"a": {"targets": [{"upstream": "vllm-a"}]}}}


def args(**kw):
    return GatewayArgs(config=CONFIG, tenants={"t": TenantSpec()}, image="registry/gateway:1", **kw)


def test_upstream_keys_become_a_secret_and_env_refs():
    r = run_program(lambda: Gateway("gateway", args(upstream_api_keys={"VLLM_A_API_KEY": "k-123"})))
    secret = r.one("kubernetes:core/v1:Secret", "gateway-upstream-keys")
    assert jsonable(secret.inputs)["stringData"] == "[secret]"  # stored as a Pulumi secret
    assert jsonable(secret.inputs, reveal_secrets=True)["stringData"] == {"VLLM_A_API_KEY": "k-123"}
    env = {e["name"]: e for e in container_spec(args(upstream_api_keys={"VLLM_A_API_KEY": "x"}), "img")["env"]}
    assert env["VLLM_A_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "gateway-upstream-keys",
                                                                  "key": "VLLM_A_API_KEY"}


def test_no_upstream_keys_no_secret():
    r = run_program(lambda: Gateway("gateway", args()))
    assert [x for x in r.by_type("kubernetes:core/v1:Secret") if x.name == "gateway-upstream-keys"] == []


def test_bad_env_name_is_rejected():
    with pytest.raises(ArgsError, match=r"upstream_api_keys.1BAD = '1BAD': an environment variable name"):
        args(upstream_api_keys={"1BAD": "x"})


def test_default_image_is_built_from_this_repository_and_pushed():
    from components.gateway.gateway import image_tag

    r = run_program(lambda: Gateway("gateway", GatewayArgs(config=CONFIG, tenants={"t": TenantSpec()})))
    repo = r.one("aws:ecr/repository:Repository", "gateway-repo")
    build = r.one("docker-build:index:Image", "gateway-image")
    assert build.inputs["dockerfile"]["location"].endswith("serving/gateway/Dockerfile")
    assert build.inputs["push"] is True and build.inputs["buildOnPreview"] is False
    assert build.inputs["tags"] == [f"{repo.outputs['repositoryUrl']}:{image_tag()}"]
    assert r.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "gateway-lifecycle")
    deployment = r.one("kubernetes:apps/v1:Deployment", "gateway-deployment")
    assert deployment.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == build.outputs["ref"]


def test_image_tag_changes_with_the_sources(tmp_path):
    from components.gateway.gateway import IMAGE_SOURCES, image_tag

    for rel in IMAGE_SOURCES:
        (tmp_path / rel).mkdir(parents=True, exist_ok=True) if "." not in rel else (tmp_path / rel).write_text("x")
    (tmp_path / "serving" / "app.py").write_text("a = 1\n")
    before = image_tag(tmp_path)
    (tmp_path / "serving" / "app.py").write_text("a = 2\n")
    assert image_tag(tmp_path) != before and image_tag(tmp_path).startswith("0.1.0-")


def test_service_monitor_scrapes_the_metrics_port():
    r = run_program(lambda: Gateway("gateway", args(service_monitor=True)))
    sm = r.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert sm.inputs["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm.inputs["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/instance": "gateway"}
    service = r.one("kubernetes:core/v1:Service", "gateway-service")
    assert {"name": "metrics", "port": 9090, "targetPort": "metrics"} in service.inputs["spec"]["ports"]
    assert run_program(lambda: Gateway("gateway", args())).by_type(
        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor") == []
