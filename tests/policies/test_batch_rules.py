"""The batch rules (policies/batch.py): each stays quiet on the shipped plans and fires on an insecure mutation of a
real plan, with its message; plus small passing and failing resources."""

from __future__ import annotations

import json

import pytest

from infra.tiers import pack_config_for
from policies.engine import evaluate
from policies.pack import RULES
from tests.policies.kit import mutated, res, violations
from tests.stack_plans import planned

RULE_IDS = ("sqs-queue-encrypted", "scaled-job-queue-has-dlq", "s3-bucket-encrypted", "batch-pods-on-batch-capacity",
            "batch-node-group-spot", "pods-no-static-aws-keys")
QUEUE = "aws:sqs/queue:Queue"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
POD = "spec.jobTargetRef.template.spec"


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request):
    result, cfg = planned(request.param)
    return result.resources, cfg.tier


def found(resources, tier, policy):
    report = evaluate(list(resources), config=pack_config_for(tier))
    return [(v.resource_name, v.message) for v in report.by_policy(policy)]


def pod(inputs):
    return inputs["spec"]["jobTargetRef"]["template"]["spec"]


def test_the_rules_are_registered_and_the_shipped_plans_pass(plan):
    assert set(RULE_IDS) <= set(RULES)
    resources, tier = plan
    report = evaluate(list(resources), config=pack_config_for(tier))
    assert [v for v in report.violations if v.policy in RULE_IDS] == []


def test_an_unencrypted_queue_fires(plan):
    resources, tier = plan
    bad = mutated(resources, "batch-dlq", lambda i: i.pop("kmsMasterKeyId"), type_=QUEUE)
    assert found(bad, tier, "sqs-queue-encrypted") == [
        ("batch-dlq", "neither kmsMasterKeyId nor sqsManagedSseEnabled is set: the queue's messages are stored "
                      "unencrypted")]


def test_sqs_managed_encryption_passes():
    ok = res(QUEUE, "q", {"sqsManagedSseEnabled": True})
    assert violations([ok], "sqs-queue-encrypted") == []
    assert violations([res(QUEUE, "q", {})], "sqs-queue-encrypted")


def test_a_consumed_queue_without_a_redrive_policy_fires(plan):
    resources, tier = plan
    bad = mutated(resources, "batch-queue", lambda i: i.pop("redrivePolicy"), type_=QUEUE)
    [(name, msg)] = found(bad, tier, "scaled-job-queue-has-dlq")
    assert name == "batch-queue"
    assert msg == ("batch-queue: consumed by ScaledJob batch-scaledjob but has no redrivePolicy with a "
                   "deadLetterTargetArn (poisoned shards would be retried forever)")


def test_a_redrive_policy_without_max_receives_fires(plan):
    resources, tier = plan
    bad = mutated(resources, "batch-queue", lambda i: i.update(redrivePolicy=json.dumps(
        {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"})), type_=QUEUE)
    assert [m for _, m in found(bad, tier, "scaled-job-queue-has-dlq")] == [
        "batch-queue: redrivePolicy has no maxReceiveCount >= 1"]


def test_a_bucket_without_encryption_configuration_fires(plan):
    resources, tier = plan
    bad = [r for r in resources if not (r.name == "batch-bucket" and "ServerSideEncryption" in r.type)]
    assert [m for _, m in found(bad, tier, "s3-bucket-encrypted")] == [
        "batch-bucket: no server-side encryption configuration for this bucket"]


def test_a_pod_tolerating_the_batch_taint_without_selecting_batch_nodes_fires(plan):
    resources, tier = plan
    bad = mutated(resources, "batch-scaledjob", lambda i: pod(i)["nodeSelector"].pop("genai-scale.io/capacity"))
    assert found(bad, tier, "batch-pods-on-batch-capacity") == [
        ("batch-scaledjob", "the pod tolerates the genai-scale.io/batch taint but does not select "
                            "genai-scale.io/capacity=batch nodes (nodeSelector or required node affinity)")]


def test_a_required_node_affinity_on_the_batch_label_passes(plan):
    resources, tier = plan
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "genai-scale.io/capacity", "operator": "In", "values": ["batch"]}]}]}}}

    def edit(i):
        pod(i)["nodeSelector"].pop("genai-scale.io/capacity")
        pod(i)["affinity"] = affinity
    assert found(mutated(resources, "batch-scaledjob", edit), tier, "batch-pods-on-batch-capacity") == []


def test_an_on_demand_batch_group_fires_unless_it_is_the_labelled_fallback(plan):
    resources, tier = plan
    bad = mutated(resources, "batch-a10g", lambda i: i.update(capacityType="ON_DEMAND"),
                  type_="aws:eks/nodeGroup:NodeGroup")
    [(name, msg)] = found(bad, tier, "batch-node-group-spot")
    assert name == "batch-a10g" and msg.startswith("capacityType is ON_DEMAND on a node group tainted for batch")

    def fallback(i):
        i.update(capacityType="ON_DEMAND")
        i["labels"]["genai-scale.io/capacity-fallback"] = "on-demand"
    ok = mutated(resources, "batch-a10g", fallback, type_="aws:eks/nodeGroup:NodeGroup")
    assert found(ok, tier, "batch-node-group-spot") == []
    strict = evaluate(list(ok), config=pack_config_for(tier, overrides={
        "batch-node-group-spot": {"allowOnDemandFallback": False}}))
    assert "batch-a10g" in [v.resource_name for v in strict.by_policy("batch-node-group-spot")]


def test_static_aws_keys_in_a_batch_pod_fire(plan):
    resources, tier = plan
    bad = mutated(resources, "batch-scaledjob", lambda i: pod(i)["containers"][0]["env"].append(
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "aws", "key": "secret"}}}))
    assert found(bad, tier, "pods-no-static-aws-keys") == [
        ("batch-scaledjob", "container worker sets AWS_SECRET_ACCESS_KEY (use Pod Identity or IRSA)")]


def test_static_keys_in_a_deployment_fire_too():
    deploy = res("kubernetes:apps/v1:Deployment", "app", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA..."}]}]}}}})
    assert violations([deploy], "pods-no-static-aws-keys") == [
        "container app sets AWS_ACCESS_KEY_ID (use Pod Identity or IRSA)"]
