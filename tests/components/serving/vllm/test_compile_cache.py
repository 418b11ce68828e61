"""The shared compile-cache claim in the serving pods: mounted at /compile-cache in a sub-directory per service (or
pool), VLLM_CACHE_ROOT and the Neuron compiled artefacts there, downloads still on the /cache emptyDir; without a claim
the pods are exactly as before. Single-node services, multi-node groups (leader and workers) and model pools."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from components import versions
from components.errors import ArgsError
from components.serving.pools.manifests import render_pool
from components.serving.vllm.manifests import CACHE_DIR, COMPILE_CACHE_DIR, render_manifests
from components.serving.vllm.multinode import render_multinode_manifests
from tests.components.serving.pools.test_manifests import POLICIES, dynamic
from tests.components.serving.vllm.test_multinode import args as multinode_args
from tests.components.serving.vllm.test_service import args, model
from tests.infra.test_k8s_schema import SCHEMA_VERSION
from tests.kit.vllm import placement

CLAIM = "compile-cache"


def pod(manifests: dict, key: str = "Deployment") -> dict:
    return manifests[key]["spec"]["template"]["spec"]


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_without_a_claim_the_caches_stay_on_the_emptydir():
    p = pod(render_manifests("llama-8b", args()))
    c = p["containers"][0]
    assert env(c)["VLLM_CACHE_ROOT"] == f"{CACHE_DIR}/vllm"
    assert all("emptyDir" in v for v in p["volumes"])
    assert COMPILE_CACHE_DIR not in [m["mountPath"] for m in c["volumeMounts"]]


def test_with_a_claim_the_compile_cache_is_on_it_in_the_services_subdirectory():
    without = render_manifests("llama-8b", args())
    m = render_manifests("llama-8b", args(compile_cache_claim=CLAIM))
    p, c = pod(m), pod(m)["containers"][0]
    assert {"name": "compile-cache", "mountPath": "/compile-cache", "subPath": "llama-8b"} in c["volumeMounts"]
    assert {"name": "compile-cache", "persistentVolumeClaim": {"claimName": CLAIM}} in p["volumes"]
    e = env(c)
    assert e["VLLM_CACHE_ROOT"] == "/compile-cache/vllm"
    assert e["HF_HOME"] == f"{CACHE_DIR}/huggingface" and e["HOME"] == CACHE_DIR  # downloads stay node-local
    # the emptyDirs are unchanged; only the claim's volume and mount are added
    before = pod(without)
    assert [v for v in p["volumes"] if "emptyDir" in v] == before["volumes"]
    assert c["volumeMounts"][:-1] == before["containers"][0]["volumeMounts"]
    kubernetes_validate.validate(m["Deployment"], SCHEMA_VERSION, strict=True)


def test_neuron_compiled_artifacts_follow_the_compile_cache():
    neuron = dict(placement=placement("inf2", "inf2.48xlarge"), model=model(tensor_parallel_size=4),
                  engine_version=versions.VLLM_NEURON_ENGINE_VERSION, warm_pool_placeholders=0,
                  neuron_scheduler="my-scheduler")
    on_claim = env(pod(render_manifests("llama-8b-inf2", args(**neuron, compile_cache_claim=CLAIM)))["containers"][0])
    local = env(pod(render_manifests("llama-8b-inf2", args(**neuron)))["containers"][0])
    assert on_claim["NEURON_COMPILED_ARTIFACTS"] == "/compile-cache/neuron-compiled"
    assert local["NEURON_COMPILED_ARTIFACTS"] == f"{CACHE_DIR}/neuron-compiled"


def test_the_claim_name_must_be_a_kubernetes_name():
    with pytest.raises(ArgsError) as exc:
        args(compile_cache_claim="Compile_Cache")
    assert "compile_cache_claim = 'Compile_Cache'" in str(exc.value)


def test_multi_node_leader_and_workers_mount_the_claim():
    m = render_multinode_manifests("llama-405b", multinode_args(compile_cache_claim=CLAIM))
    lwt = m["LeaderWorkerSet"]["spec"]["leaderWorkerTemplate"]
    for tpl in (lwt["leaderTemplate"], lwt["workerTemplate"]):
        c = tpl["spec"]["containers"][0]
        assert {"name": "compile-cache", "mountPath": "/compile-cache", "subPath": "llama-405b"} in c["volumeMounts"]
        assert env(c)["VLLM_CACHE_ROOT"] == "/compile-cache/vllm"
        assert {"name": "compile-cache", "persistentVolumeClaim": {"claimName": CLAIM}} in tpl["spec"]["volumes"]
    plain = render_multinode_manifests("llama-405b", multinode_args())
    assert "compile-cache" not in str(plain["LeaderWorkerSet"]["spec"]["leaderWorkerTemplate"]["workerTemplate"])


def test_dynamic_pool_engines_share_the_pools_subdirectory():
    m = render_pool("shared-l40s", dynamic(compile_cache_claim=CLAIM))
    p = pod(m, "Deployment/shared-l40s")
    assert {"name": "compile-cache", "persistentVolumeClaim": {"claimName": CLAIM}} in p["volumes"]
    engines = [c for c in p["containers"] if "VLLM_CACHE_ROOT" in env(c)]
    assert len(engines) == 2
    for c in engines:
        assert {"name": "compile-cache", "mountPath": "/compile-cache", "subPath": "shared-l40s"} in c["volumeMounts"]
        assert env(c)["VLLM_CACHE_ROOT"] == "/compile-cache/vllm"
    plain = pod(render_pool("shared-l40s", dynamic()), "Deployment/shared-l40s")
    assert all("emptyDir" in v for v in plain["volumes"])


def test_dedicated_pool_models_mount_it_as_services():
    base = POLICIES["dedicated"]()
    m = render_pool("pool", base.model_copy(update={"compile_cache_claim": CLAIM}))
    deployments = {k: v for k, v in m.items() if k.startswith("Deployment/")}
    assert deployments
    for key, body in deployments.items():
        c = body["spec"]["template"]["spec"]["containers"][0]
        mount = next(v for v in c["volumeMounts"] if v["name"] == "compile-cache")
        assert mount["subPath"] == key.split("/", 1)[1]
        kubernetes_validate.validate(copy.deepcopy(body), SCHEMA_VERSION, strict=True)
