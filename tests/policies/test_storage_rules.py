"""Storage rules (policies/storage.py): EFS encrypted at rest, TLS required by the file system policy, mount targets
admitting security groups only. Each with a passing and a failing resource set, and a mutation of the staging plan
(whose shared compile cache passes every rule as shipped)."""

from __future__ import annotations

import json

import pytest

from infra.tiers import pack_config_for
from policies.engine import evaluate
from policies.storage import (FILE_SYSTEM, FILE_SYSTEM_POLICY, MOUNT_TARGET, SECURITY_GROUP, SG_INGRESS_RULE, SG_RULE,
                              denies_plaintext)
from tests.policies.kit import found, mutated, res, violations
from tests.stack_plans import planned

RULES = ("efs-encrypted", "efs-tls-required", "efs-mount-targets-from-security-groups")
TLS_DENY = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*", "Resource": "arn",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def fs(**inputs):
    return res(FILE_SYSTEM, "cache", {"encrypted": True, **inputs})


def fs_policy(target, statements):
    return res(FILE_SYSTEM_POLICY, "cache", {"fileSystemId": "fs-1",
                                             "policy": json.dumps({"Version": "2012-10-17", "Statement": statements})},
               property_dependencies={"fileSystemId": [target]})


def mount(sg=None, **inputs):
    return res(MOUNT_TARGET, "cache-a", {"fileSystemId": "fs-1", "subnetId": "subnet-1", **inputs},
               property_dependencies={"securityGroups": [sg]} if sg else None)


# --- efs-encrypted ---

def test_encrypted_file_system_passes_and_unencrypted_fails():
    assert violations([fs()], "efs-encrypted") == []
    assert violations([fs(encrypted=False)], "efs-encrypted") == [
        "encrypted is not true: the file system's data and metadata are stored unencrypted"]
    assert violations([res(FILE_SYSTEM, "cache", {})], "efs-encrypted") != []  # the API default is unencrypted


# --- efs-tls-required ---

def test_tls_deny_policy_passes():
    f = fs()
    assert violations([f, fs_policy(f, [TLS_DENY])], "efs-tls-required") == []


def test_no_policy_or_a_policy_without_the_tls_deny_fails():
    f = fs()
    assert violations([f], "efs-tls-required") == ["cache: no file system policy, so clients may mount it without TLS"]
    allow_only = {**TLS_DENY, "Effect": "Allow"}
    assert violations([f, fs_policy(f, [allow_only])], "efs-tls-required") == [
        "cache: its file system policy (cache) does not deny requests without TLS (aws:SecureTransport false)"]
    # a policy of another file system does not count
    other = res(FILE_SYSTEM, "other", {"encrypted": True})
    assert violations([f, other, fs_policy(other, [TLS_DENY])], "efs-tls-required") == [
        "cache: no file system policy, so clients may mount it without TLS"]


def test_denies_plaintext_reads_the_statement_exactly():
    assert denies_plaintext({"Statement": [TLS_DENY]})
    assert denies_plaintext({"Statement": [{**TLS_DENY, "Principal": "*"}]})
    assert not denies_plaintext({"Statement": [{**TLS_DENY, "Principal": {"AWS": "arn:aws:iam::1:root"}}]})
    assert not denies_plaintext({"Statement": [{**TLS_DENY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]})
    assert not denies_plaintext(None)


# --- efs-mount-targets-from-security-groups ---

def test_security_group_sources_pass():
    sg = res(SECURITY_GROUP, "cache-mt", {"vpcId": "vpc-1"})
    rule = res(SG_INGRESS_RULE, "cache-nfs", {"ipProtocol": "tcp", "fromPort": 2049, "toPort": 2049,
                                              "referencedSecurityGroupId": "sg-nodes", "securityGroupId": "sg-1"},
               property_dependencies={"securityGroupId": [sg]})
    assert violations([sg, rule, mount(sg, securityGroups=["sg-1"])], "efs-mount-targets-from-security-groups") == []


def test_cidr_sources_fail_inline_and_as_rules():
    msgs = "efs-mount-targets-from-security-groups"
    inline = res(SECURITY_GROUP, "cache-mt", {"ingress": [{"protocol": "tcp", "fromPort": 2049, "toPort": 2049,
                                                           "cidrBlocks": ["0.0.0.0/0"]}]})
    assert violations([inline, mount(inline, securityGroups=["sg-1"])], msgs) == [
        "cache-a: security group cache-mt ingress[0] admits cidrBlocks 0.0.0.0/0"]
    sg = res(SECURITY_GROUP, "cache-mt", {})
    v = res(SG_INGRESS_RULE, "cache-nfs", {"ipProtocol": "tcp", "fromPort": 2049, "toPort": 2049,
                                           "cidrIpv4": "10.0.0.0/16"}, property_dependencies={"securityGroupId": [sg]})
    old = res(SG_RULE, "cache-old", {"type": "ingress", "protocol": "tcp", "fromPort": 2049, "toPort": 2049,
                                     "cidrBlocks": ["0.0.0.0/0"]}, property_dependencies={"securityGroupId": [sg]})
    egress = res(SG_RULE, "cache-out", {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]},
                 property_dependencies={"securityGroupId": [sg]})
    assert violations([sg, v, old, egress, mount(sg, securityGroups=["sg-1"])], msgs) == [
        "cache-a: security group cache-mt rule cache-nfs admits cidrIpv4 10.0.0.0/16 (only security groups may "
        "reach NFS)",
        "cache-a: security group cache-mt rule cache-old admits cidrBlocks 0.0.0.0/0 (only security groups may "
        "reach NFS)"]
    assert violations([mount()], msgs) == [
        "cache-a: securityGroups unset, so the VPC's default security group guards the file system"]


# --- the shipped plans ---

@pytest.fixture(scope="module")
def staging():
    plan, cfg = planned("staging")
    return plan.resources, pack_config_for(cfg.tier)


def rule_messages(resources, config, rule):
    return found(evaluate(resources, config=config), rule)


def test_the_staging_compile_cache_passes_every_storage_rule(staging):
    resources, config = staging
    assert any(r.type == FILE_SYSTEM for r in resources)
    report = evaluate(resources, config=config)
    assert [v.message for v in report.violations if v.policy in RULES] == []


def test_staging_plan_mutations_are_caught(staging):
    resources, config = staging
    unencrypted = mutated(resources, "compile-cache", lambda i: i.update(encrypted=False), type_=FILE_SYSTEM)
    assert rule_messages(unencrypted, config, "efs-encrypted") != []
    no_policy = [r for r in resources if not (r.type == FILE_SYSTEM_POLICY and r.name == "compile-cache")]
    assert len(no_policy) == len(resources) - 1
    assert rule_messages(no_policy, config, "efs-tls-required") == [
        "compile-cache: no file system policy, so clients may mount it without TLS"]
    open_nfs = mutated(resources, "compile-cache-nfs", lambda i: (i.pop("referencedSecurityGroupId"),
                                                                  i.update(cidrIpv4="0.0.0.0/0")),
                       type_=SG_INGRESS_RULE)
    msgs = rule_messages(open_nfs, config, "efs-mount-targets-from-security-groups")
    assert msgs and all("rule compile-cache-nfs admits cidrIpv4 0.0.0.0/0" in m for m in msgs)
    assert len(msgs) == sum(1 for r in resources if r.type == MOUNT_TARGET)  # one per mount target


def test_dev_has_no_file_system():
    plan, _ = planned("dev")
    assert not [r for r in plan.resources if r.type.startswith("aws:efs/")]
