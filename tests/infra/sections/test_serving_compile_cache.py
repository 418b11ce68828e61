"""serving.compileCache: on in the growth and scale tiers (staging, prod: the EFS file system, a mount target per private
subnet, the EFS CSI add-on, the StorageClass and one claim that every vLLM pod mounts), off in prototype (dev: none of
it); bad settings reported at their config keys."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from infra.sections.serving import COMPILE_CACHE_CLAIM, compile_cache_subnets
from tests.infra.sections.test_serving import problems_of, stack_config
from tests.stack_plans import planned

FS = "aws:efs/fileSystem:FileSystem"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
ADDON = "aws:eks/addon:Addon"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
SERVING_KINDS = ("kubernetes:apps/v1:Deployment", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_growth_and_scale_share_one_compile_cache(stack):
    result, cfg = planned(stack)
    assert cfg.serving.compile_cache.enabled
    assert [r.name for r in result.by_type(FS)] == ["compile-cache"]
    assert sorted(r.name for r in result.by_type(MOUNT_TARGET)) == [
        f"compile-cache-private-{i}" for i in range(cfg.network.az_count)]
    assert result.one(ADDON, "compile-cache-aws-efs-csi-driver").inputs["addonName"] == "aws-efs-csi-driver"
    sc = result.one(STORAGE_CLASS, "compile-cache").inputs
    assert sc["provisioner"] == "efs.csi.aws.com" and sc["parameters"]["fileSystemId"] == \
        result.one(FS).outputs["id"]
    claim = result.one(PVC, "compile-cache").inputs
    assert claim["metadata"] == {**claim["metadata"], "name": COMPILE_CACHE_CLAIM, "namespace": cfg.serving.namespace}
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == sc["metadata"]["name"]
    # every vLLM pod (services, pool engines, multi-node leaders and workers) mounts it
    templates = []
    for r in result.resources:
        if r.type == "kubernetes:apps/v1:Deployment" and r.inputs["metadata"].get("labels", {}).get(
                "app.kubernetes.io/name") in ("vllm", "vllm-pool"):
            templates.append((r.name, r.inputs["spec"]["template"]))
        elif r.type.endswith(":LeaderWorkerSet"):
            lwt = r.inputs["spec"]["leaderWorkerTemplate"]
            templates += [(r.name, lwt["workerTemplate"]), (r.name, lwt.get("leaderTemplate", lwt["workerTemplate"]))]
    engines = [(n, c) for n, t in templates for c in t["spec"]["containers"]
               if any(e["name"] == "VLLM_CACHE_ROOT" for e in c.get("env", []))]
    assert engines
    for name, c in engines:
        assert any(m["name"] == "compile-cache" and m["mountPath"] == "/compile-cache" for m in c["volumeMounts"]), name
        assert {"name": "VLLM_CACHE_ROOT", "value": "/compile-cache/vllm"} in c["env"], name


def test_prototype_stays_lean():
    result, cfg = planned("dev")
    assert not cfg.serving.compile_cache.enabled
    assert not [r for r in result.resources if r.type.startswith("aws:efs/") or r.type in (STORAGE_CLASS, PVC)
                and r.name == "compile-cache"]
    assert "compile-cache" not in str([d.inputs for d in result.by_type("kubernetes:apps/v1:Deployment")])


def with_cache(cache: dict, cluster: dict | None = None) -> dict:
    raw = stack_config("staging")
    raw["genai-scale:serving"] = {**raw.get("genai-scale:serving", {}), "compileCache": cache}
    if cluster is not None:
        raw["genai-scale:cluster"] = {**raw.get("genai-scale:cluster", {}), **cluster}
    return raw


def test_bad_settings_are_named_at_their_keys():
    text = problems_of(with_cache({"enabled": True, "transitionToIaDays": 45, "throughputMode": "provisioned",
                                   "kmsKeyArn": "my-key"}))
    assert ("genai-scale:serving.compileCache.transitionToIaDays = 45: one of 1, 7, 14, 30, 60, 90, 180, 270, 365 "
            "(or none: stay in Standard)") in text
    assert "genai-scale:serving.compileCache.throughputMode = 'provisioned'" in text
    assert "genai-scale:serving.compileCache.kmsKeyArn = 'my-key'" in text
    assert "genai-scale:serving.compileCache.unknownKey" not in text
    text = problems_of(with_cache({"enabled": True, "claimSizeGib": 0, "storageClassName": "Bad_Name"}))
    assert "genai-scale:serving.compileCache.claimSizeGib = 0" in text
    assert "genai-scale:serving.compileCache.storageClassName = 'Bad_Name'" in text


def test_an_unpinned_kubernetes_version_points_at_the_add_on_override():
    text = problems_of(with_cache({"enabled": True}, cluster={"version": "1.33", "addonVersions": {
        a: "v1" for a in ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver",
                          "metrics-server")}}))
    assert ("genai-scale:cluster.version = '1.33': no pinned aws-efs-csi-driver version for Kubernetes 1.33; pinned: "
            "1.34, 1.35 (or set addonVersion)") in text


def test_unknown_key_is_reported():
    text = problems_of(with_cache({"enabled": True, "throughput": "elastic"}))
    assert "serving.compileCache.throughput" in text and "unknown key" in text


def test_mount_targets_keyed_by_subnet_for_an_adopted_vpc():
    cfg = SimpleNamespace(network=SimpleNamespace(existing=SimpleNamespace(private_subnet_ids=["subnet-0a", "subnet-0b"]),
                                                  az_count=3))
    assert compile_cache_subnets(SimpleNamespace(network=None), cfg) == {"subnet-0a": "subnet-0a",
                                                                          "subnet-0b": "subnet-0b"}
