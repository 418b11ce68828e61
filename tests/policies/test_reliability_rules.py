"""Reliability rules: passing and failing cases from minimal resource inputs (camelCase wire names)."""

import pytest

from tests.policies.kit import found, res, run, violations, with_

SUBNET = "aws:ec2/subnet:Subnet"
EKS = "aws:eks/cluster:Cluster"
NG = "aws:eks/nodeGroup:NodeGroup"
RG = "aws:elasticache/replicationGroup:ReplicationGroup"


def subnets(*zones):
    return [res(SUBNET, f"private-{i}", {"vpcId": "vpc-1", "availabilityZone": z}) for i, z in enumerate(zones)]


class TestMultiAz:
    def test_cluster_in_two_zones_passes(self):
        sn = subnets("us-east-1a", "us-east-1b")
        cluster = res(EKS, "eks", {"vpcConfig": {"subnetIds": ["s0", "s1"]}}, deps=sn)
        assert violations([*sn, cluster], "eks-multi-az", tier="growth") == []

    def test_cluster_in_one_zone_fails_in_growth_and_scale_only(self):
        sn = subnets("us-east-1a", "us-east-1a")
        cluster = res(EKS, "eks", {"vpcConfig": {"subnetIds": ["s0", "s1"]}}, deps=sn)
        assert violations([*sn, cluster], "eks-multi-az", tier="scale") == [
            "eks: cluster subnets span AZs ['us-east-1a']; need >= 2 AZs"]
        assert violations([*sn, cluster], "eks-multi-az", tier="prototype") == []

    def test_cpu_node_group_in_one_zone_fails_but_accelerator_group_may(self):
        sn = subnets("us-east-1a")
        system = res(NG, "system", {"instanceTypes": ["m7i.large"], "subnetIds": ["s0"]}, deps=sn)
        h100 = res(NG, "h100", {"instanceTypes": ["p5.48xlarge"], "subnetIds": ["s0"]}, deps=sn)
        assert violations([*sn, system, h100], "eks-multi-az", tier="growth") == [
            "system: CPU node group subnets span AZs ['us-east-1a']; need >= 2 so CoreDNS and the operators survive "
            "an AZ outage"]

    def test_cache_replica_in_another_zone(self):
        sn = subnets("us-east-1a", "us-east-1b")
        group = res("aws:elasticache/subnetGroup:SubnetGroup", "cache-subnets", {"subnetIds": ["s0", "s1"]}, deps=sn)
        ok = res(RG, "cache", {"numCacheClusters": 2}, deps=[group])
        assert violations([*sn, group, ok], "cache-multi-az", tier="growth") == []
        single = res(RG, "cache", {"numCacheClusters": 1}, deps=[group])
        assert violations([*sn, group, single], "cache-multi-az", tier="growth") == [
            "cache: 1 cache node(s): one AZ or node failure loses the cache"]
        assert violations([*sn, group, single], "cache-multi-az", tier="prototype") == []
        one_zone = subnets("us-east-1a", "us-east-1a")
        group1 = res("aws:elasticache/subnetGroup:SubnetGroup", "cache-subnets", {"subnetIds": ["s0", "s1"]},
                     deps=one_zone)
        replicas = res(RG, "cache", {"replicasPerNodeGroup": 1}, deps=[group1])
        assert violations([*one_zone, group1, replicas], "cache-multi-az", tier="scale") == [
            "cache: subnet group cache-subnets spans only AZs ['us-east-1a']"]

    def test_cache_failover_in_scale(self):
        ok = {"numCacheClusters": 2, "automaticFailoverEnabled": True, "multiAzEnabled": True}
        assert violations([res(RG, "c", ok)], "cache-automatic-failover", tier="scale") == []
        assert violations([res(RG, "c", with_(ok, "multiAzEnabled", False))], "cache-automatic-failover",
                          tier="scale") == ["multiAzEnabled not true: a primary failure means minutes of cache outage"]
        assert violations([res(RG, "c", {})], "cache-automatic-failover", tier="growth") == []

    def test_tier_from_tags_when_not_configured(self):
        bad = res(RG, "c", {"tags": {"tier": "scale"}})
        assert len(violations([bad], "cache-automatic-failover", tier=None)) == 1
        # growth does not require failover: the facts the pack ships for it replace the strict default
        assert violations([res(RG, "c", {"tags": {"tier": "growth"}})], "cache-automatic-failover", tier=None) == []
        # no tier known (or a tag naming no tier the pack knows): the strict default, failover required
        report = run([res(RG, "c", {"tags": {"tier": "frontend"}})], tier=None)
        assert found(report, "cache-automatic-failover") == [
            "automaticFailoverEnabled and multiAzEnabled not true: a primary failure means minutes of cache outage"]
        assert report.not_applicable == {}


DEPLOY = "kubernetes:apps/v1:Deployment"


def vllm_deployment(*, args=None, grace=90, pre_stop=10, startup=True, readiness=True, gpus=1, ports=True,
                    labels=None):
    c = {"name": "vllm", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm:0.11.0",
         "args": args if args is not None else ["--model", "m", "--shutdown-timeout", "60"],
         "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
    if ports:
        c["ports"] = [{"containerPort": 8000, "name": "http"}]
    if readiness:
        c["readinessProbe"] = {"httpGet": {"path": "/health", "port": 8000}}
    if startup:
        c["startupProbe"] = {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10, "failureThreshold": 60}
    if pre_stop is not None:
        c["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop}}}
    spec = {"containers": [c], "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    labels = labels or {"app.kubernetes.io/name": "llama"}
    return {"metadata": {"name": "llama", "namespace": "serving"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


class TestServingProbes:
    def test_readiness(self):
        assert violations([res(DEPLOY, "llama", vllm_deployment())], "serving-readiness-probe") == []
        assert violations([res(DEPLOY, "llama", vllm_deployment(readiness=False))], "serving-readiness-probe") == [
            "container vllm exposes a port but has no readinessProbe"]
        # a placeholder pod (no port) is not a serving workload
        assert violations([res(DEPLOY, "p", vllm_deployment(readiness=False, ports=False))],
                          "serving-readiness-probe") == []

    def test_startup(self):
        assert violations([res(DEPLOY, "llama", vllm_deployment())], "serving-startup-probe") == []
        assert violations([res(DEPLOY, "llama", vllm_deployment(startup=False))], "serving-startup-probe") == [
            "container vllm loads a model but has no startupProbe"]
        short = vllm_deployment()
        short["spec"]["template"]["spec"]["containers"][0]["startupProbe"] = {"httpGet": {"path": "/health"}}
        assert violations([res(DEPLOY, "llama", short)], "serving-startup-probe") == [
            "container vllm startupProbe allows 30 s (< 300 s) for model loading"]


class TestPdb:
    def pdb(self, labels, ns="serving"):
        return res("kubernetes:policy/v1:PodDisruptionBudget", "llama-pdb",
                   {"metadata": {"namespace": ns}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}})

    def test_matching_pdb_passes(self):
        d = res(DEPLOY, "llama", vllm_deployment())
        assert violations([d, self.pdb({"app.kubernetes.io/name": "llama"})], "serving-pod-disruption-budget") == []

    @pytest.mark.parametrize("pdb_labels,ns", [({"app.kubernetes.io/name": "other"}, "serving"),
                                               ({"app.kubernetes.io/name": "llama"}, "default"), ({}, "serving")])
    def test_missing_or_mismatched_pdb_fails(self, pdb_labels, ns):
        d = res(DEPLOY, "llama", vllm_deployment())
        assert violations([d, self.pdb(pdb_labels, ns)], "serving-pod-disruption-budget") == [
            "llama: no PodDisruptionBudget in namespace serving selects its pods"]


class TestGracefulDrain:
    def test_grace_covers_prestop_and_drain(self):
        assert violations([res(DEPLOY, "llama", vllm_deployment(grace=70))], "serving-graceful-drain") == []

    def test_short_grace_fails(self):
        assert violations([res(DEPLOY, "llama", vllm_deployment(grace=60))], "serving-graceful-drain") == [
            "container vllm: terminationGracePeriodSeconds 60 < preStop 10 s + drain 60 s = 70 s: streams are killed "
            "mid-response"]

    def test_default_grace_is_30_seconds(self):
        [msg] = violations([res(DEPLOY, "llama", vllm_deployment(grace=None))], "serving-graceful-drain")
        assert msg.startswith("container vllm: terminationGracePeriodSeconds 30 <")

    def test_vllm_without_shutdown_timeout_fails(self):
        d = vllm_deployment(args=["--model", "m"])
        assert violations([res(DEPLOY, "llama", d)], "serving-graceful-drain") == [
            "container vllm: vLLM without --shutdown-timeout aborts in-flight streams on SIGTERM"]

    def test_exec_sleep_prestop_counts(self):
        d = vllm_deployment(grace=65, pre_stop=None)
        d["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {
            "preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 10"]}}}
        assert violations([res(DEPLOY, "llama", d)], "serving-graceful-drain") == [
            "container vllm: terminationGracePeriodSeconds 65 < preStop 10 s + drain 60 s = 70 s: streams are killed "
            "mid-response"]


TG = "aws:lb/targetGroup:TargetGroup"


class TestDeregistration:
    def chain(self, delay, shutdown="60"):
        tg = res(TG, "llama-tg", {"port": 8000, "protocol": "HTTP", "targetType": "ip",
                                  **({} if delay is None else {"deregistrationDelay": delay})},
                 outputs={"arn": "arn:tg/llama"})
        svc = res("kubernetes:core/v1:Service", "llama-svc", {
            "metadata": {"name": "llama", "namespace": "serving"},
            "spec": {"selector": {"app.kubernetes.io/name": "llama"}, "ports": [{"port": 8000}]}})
        tgb = res("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "llama-tgb", {
            "metadata": {"namespace": "serving"},
            "spec": {"targetGroupARN": "arn:tg/llama", "serviceRef": {"name": "llama", "port": 8000}}}, deps=[tg, svc])
        d = res(DEPLOY, "llama", vllm_deployment(args=["--model", "m", "--shutdown-timeout", shutdown], grace=600))
        return [tg, svc, tgb, d]

    def test_delay_covering_backend_drain_passes(self):
        assert violations(self.chain(120), "alb-deregistration-covers-drain") == []
        assert violations(self.chain(None), "alb-deregistration-covers-drain") == []  # default 300 s

    def test_delay_shorter_than_backend_drain_fails(self):
        assert violations(self.chain(30, shutdown="120"), "alb-deregistration-covers-drain") == [
            "llama-tg: deregistrationDelay 30 s < stream drain 120 s (backends: llama)"]

    def test_unresolved_target_group_uses_default_drain(self):
        tg = res(TG, "lonely", {"deregistrationDelay": 5})
        assert violations([tg], "alb-deregistration-covers-drain") == ["lonely: deregistrationDelay 5 s < stream drain 30 s"]


class TestAutoscalerBounds:
    @pytest.mark.parametrize("type_,inputs,msg", [
        (NG, {"scalingConfig": {"minSize": 3, "maxSize": 2, "desiredSize": 2}},
         "scalingConfig.maxSize (2) is below scalingConfig.minSize (3)"),
        ("aws:autoscaling/group:Group", {"minSize": 2, "maxSize": 1}, "maxSize (1) is below minSize (2)"),
        ("aws:appautoscaling/target:Target", {"minCapacity": 2, "maxCapacity": 1},
         "maxCapacity (1) is below minCapacity (2)"),
        ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", {"spec": {"maxReplicas": 0}},
         "spec.maxReplicas (0) is below spec.minReplicas (1)"),
        ("kubernetes:keda.sh/v1alpha1:ScaledObject", {"spec": {"minReplicaCount": 3, "maxReplicaCount": 2}},
         "spec.maxReplicaCount (2) is below spec.minReplicaCount (3)"),
    ])
    def test_max_below_min_fails(self, type_, inputs, msg):
        assert msg in violations([res(type_, "x", inputs)], "autoscaler-bounds")

    def test_desired_outside_bounds(self):
        ng = res(NG, "ng", {"scalingConfig": {"minSize": 0, "maxSize": 2, "desiredSize": 3}})
        assert violations([ng], "autoscaler-bounds") == ["scalingConfig.desiredSize (3) is outside [0, 2]"]

    def test_valid_bounds_pass(self):
        ok = [res(NG, "ng", {"scalingConfig": {"minSize": 0, "maxSize": 2, "desiredSize": 0}}),
              res("kubernetes:keda.sh/v1alpha1:ScaledObject", "so", {"spec": {"minReplicaCount": 0}})]
        assert violations(ok, "autoscaler-bounds") == []
