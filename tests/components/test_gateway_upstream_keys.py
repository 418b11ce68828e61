"""Gateway: API keys of upstreams (vLLM services that require one) reach the pods from their own Secret."""

import pytest

from components._errors import ArgsError
from components.gateway import Gateway, GatewayArgs, TenantSpec, container_spec
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
