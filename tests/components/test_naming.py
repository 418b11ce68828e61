"""components.naming: each service's rule against the AWS docs' examples, and aws_name over many stack names."""

from __future__ import annotations

import re

import pytest

from components.naming import HASH_LENGTH, RULES, aws_name, name_problems, rule_for

# --- the rules, with valid and invalid examples from the AWS pages in RULES[...].source -------------------------

VALID = {
    "s3-bucket": ["docexamplebucket1", "log-delivery-march-2020", "my-hosted-content", "genai-scale-dev-models-us-east-1",
                  "a.b.c", "abc"],
    "ecr-repository": ["nginx-web-app", "project-a/nginx-web-app", "genai-scale/my_stack/vllm-nvidia", "ab"],
    "iam-role": ["MyRole", "role_+=,.@-1", "x" * 64],
    "iam-policy": ["MyPolicy", "x" * 128],
    "elasticache-replication-group": ["my-cluster-01", "a", "x" * 40],
    "elasticache-user": ["prod-cache-default", "x" * 40],
    "elasticache-user-group": ["prod-cache-users"],
    "elasticache-snapshot": ["prod-cache-final"],
    "sagemaker-endpoint": ["my-endpoint-1", "a--b", "MyEndpoint", "x" * 63],
    "sagemaker-endpoint-config": ["my-config"],
    "sagemaker-model": ["my-model"],
    "eks-cluster": ["my_cluster-1", "1cluster", "Team-A-eks", "x" * 100],
    "bedrock-provisioned-model": ["MyPT", "a_b-c", "prod-bedrock", "x_", "x" * 63],
    "log-group": ["/aws/eks/dev-eks/cluster", "a#b.c_d-e", "x" * 512],
}

INVALID = {  # name -> a fragment of the expected problem
    "s3-bucket": {"doc_example_bucket": "must match", "DocExampleBucket": "must match",
                  "doc-example-bucket-": "must match", "ab": "2 characters: must be 3-63", "x" * 64: "must be 3-63",
                  "my..bucket": "must not contain '..'", "192.168.5.4": "must not be formatted as an IP address",
                  "xn--bucket": "must not start with 'xn--'", "sthree-bucket": "must not start with 'sthree-'",
                  "amzn-s3-demo-bucket": "must not start with 'amzn-s3-demo-'",
                  "bucket-s3alias": "must not end with '-s3alias'", "bucket--ol-s3": "must not end with '--ol-s3'",
                  "bucket.mrap": "must not end with '.mrap'", "bucket--x-s3": "must not end with '--x-s3'"},
    "ecr-repository": {"Project-A/nginx": "must match", "a": "1 characters: must be 2-256", "nginx_": "must match",
                       "a//b": "must match", "x" * 257: "must be 2-256", "/nginx": "must match"},
    "iam-role": {"my role": "must match", "x" * 65: "65 characters: must be 1-64", "rôle": "must match"},
    "iam-policy": {"x" * 129: "must be 1-128"},
    "elasticache-replication-group": {"1cluster": "must start with a letter", "my--cluster": "must match",
                                      "cluster-": "must match", "x" * 41: "must be 1-40", "My-Cluster": "must match"},
    "elasticache-user": {"my_user": "must match"},
    "elasticache-user-group": {"Users": "must match"},
    "elasticache-snapshot": {"prod-cache-final-": "must match"},
    "sagemaker-endpoint": {"-a": "must match", "a-": "must match", "a_b": "must match", "x" * 64: "must be 1-63"},
    "sagemaker-endpoint-config": {"a.b": "must match"},
    "sagemaker-model": {"a b": "must match"},
    "eks-cluster": {"_cluster": "must match", "my.cluster": "must match", "x" * 101: "must be 1-100"},
    "bedrock-provisioned-model": {"a__b": "must match", "-a": "must match", "x" * 64: "must be 1-63"},
    "log-group": {"a b": "must match", "x" * 513: "must be 1-512", "": "0 characters: must be 1-512"},
}


def test_every_rule_has_examples_and_a_primary_source():
    assert set(VALID) == set(INVALID) == set(RULES)
    for rule in RULES.values():
        assert rule.source.startswith("https://docs.aws.amazon.com/"), rule
        assert 1 <= rule.min_length <= rule.max_length


@pytest.mark.parametrize("service", sorted(RULES))
def test_valid_examples_pass(service):
    for name in VALID[service]:
        assert name_problems(service, name) == [], name


@pytest.mark.parametrize("service", sorted(RULES))
def test_invalid_examples_are_refused_with_the_reason(service):
    for name, fragment in INVALID[service].items():
        problems = name_problems(service, name)
        assert any(fragment in p for p in problems), (name, problems)


def test_problem_messages_name_the_rule():
    assert name_problems("s3-bucket", "My_Bucket-") == [f"must match {RULES['s3-bucket'].pattern}"]
    assert name_problems("elasticache-replication-group", "9" * 41) == [
        "41 characters: must be 1-40", f"must match {RULES['elasticache-replication-group'].pattern}",
        "must start with a letter"]


def test_unknown_service_and_missing_parts_are_refused():
    with pytest.raises(ValueError, match=r"unknown service 'dynamodb': one of bedrock-provisioned-model, "):
        rule_for("dynamodb")
    with pytest.raises(ValueError, match=r"aws_name\('s3-bucket'\) needs one or more string parts"):
        aws_name("s3-bucket")


# --- aws_name ----------------------------------------------------------------------------------------------------

SHIPPED = {  # the names the shipped stacks have today: they must never change (a change replaces the resource)
    ("s3-bucket", "genai-scale", "prod", "models", "us-east-1"): "genai-scale-prod-models-us-east-1",
    ("ecr-repository", "genai-scale", "staging", "vllm-neuron"): "genai-scale/staging/vllm-neuron",
    ("eks-cluster", "dev", "eks"): "dev-eks",
    ("bedrock-provisioned-model", "prod", "bedrock"): "prod-bedrock",
    ("elasticache-snapshot", "prod", "cache", "final"): "prod-cache-final",
    ("elasticache-user", "prod", "cache", "default"): "prod-cache-default",
    ("elasticache-user-group", "prod", "cache", "users"): "prod-cache-users",
}


@pytest.mark.parametrize("call", sorted(SHIPPED))
def test_valid_names_pass_through_unchanged(call):
    assert aws_name(*call) == SHIPPED[call]


GOLDEN = {  # rewritten names: pinned, because a different algorithm would rename (replace) live resources
    ("s3-bucket", "genai-scale", "Team-A", "models", "us-east-1"): "genai-scale-team-a-models-633bcd7b-us-east-1",
    ("s3-bucket", "genai-scale", "my_stack", "models", "us-east-1"):
        "genai-scale-my-stack-models-0e8dafbd-us-east-1",
    ("ecr-repository", "genai-scale", "Team-A", "vllm-nvidia"): "genai-scale/team-a-5ccb92f8/vllm-nvidia",
    ("elasticache-user", "9-stack", "cache", "default"): "gs-9-stack-cache-a401c8e7-default",
    ("sagemaker-endpoint", "Team-A", "x"): "Team-A-057bfa76-x",
}


@pytest.mark.parametrize("call", sorted(GOLDEN))
def test_rewritten_names_are_stable(call):
    assert aws_name(*call) == GOLDEN[call]
    assert aws_name(*call) == aws_name(*call)


STACKS = [
    "dev", "prod", "my_stack", "my-stack", "my.stack", "My-Stack", "MY_STACK", "Team-A", "team-a", "team_a",
    "9lives", "0", "a", "_x_", "x" * 40, "y" * 45, "z" * 100, "w" * 300, "a" * 60 + "1", "a" * 60 + "2",
    "ünïcødé", "日本語", "stack-with--double", "sthree", "xn--punycode", "192.168.5.4", "s3alias", "-lead", "trail-",
]

CALLS = [  # what the program names, shaped as the components call aws_name
    ("s3-bucket", ("genai-scale", "{}", "models", "us-east-1")),
    ("ecr-repository", ("genai-scale", "{}", "vllm-nvidia")),
    ("eks-cluster", ("{}", "eks")),
    ("elasticache-user", ("{}", "cache", "default")),
    ("elasticache-user-group", ("{}", "cache", "users")),
    ("elasticache-snapshot", ("{}", "cache", "final")),
    ("elasticache-replication-group", ("{}", "cache")),
    ("bedrock-provisioned-model", ("{}", "bedrock")),
    ("sagemaker-endpoint", ("{}", "qwen7b")),
    ("sagemaker-model", ("{}", "qwen7b", "model")),
    ("iam-role", ("{}", "gateway-irsa")),
    ("iam-policy", ("{}", "weights")),
    ("log-group", ("{}", "slow-log")),
]


@pytest.mark.parametrize("service,shape", CALLS, ids=[c[0] for c in CALLS])
def test_every_stack_name_gives_a_valid_name(service, shape):
    rule = RULES[service]
    for stack in STACKS:
        name = aws_name(service, *(p.format(stack) for p in shape))
        assert name_problems(service, name) == [], (stack, name)
        assert re.fullmatch(rule.pattern, name, flags=re.ASCII) and len(name) <= rule.max_length


@pytest.mark.parametrize("service,shape", CALLS, ids=[c[0] for c in CALLS])
def test_different_stacks_never_share_a_name(service, shape):
    rule = RULES[service]
    names = [aws_name(service, *(p.format(stack) for p in shape)) for stack in STACKS]
    keys = [n.lower() if rule.case_insensitive or rule.lowercase else n for n in names]
    assert len(set(keys)) == len(STACKS), sorted(n for n in keys if keys.count(n) > 1)


def test_near_equal_stack_names_differ_where_aws_would_confuse_them():
    assert aws_name("s3-bucket", "Team-A", "x") != aws_name("s3-bucket", "team-a", "x")
    assert aws_name("s3-bucket", "my_stack", "x") != aws_name("s3-bucket", "my-stack", "x")
    # IAM and SageMaker ignore case: a name with capitals gets the hash even though AWS would accept it
    assert aws_name("iam-role", "Team-A", "role").lower() != aws_name("iam-role", "team-a", "role").lower()
    assert aws_name("sagemaker-endpoint", "Team-A", "x").lower() != aws_name("sagemaker-endpoint", "team-a", "x")
    # long names that only differ past the limit
    a, b = (aws_name("elasticache-user", "p" * 50 + s, "cache", "app") for s in "12")
    assert a != b and len(a) == len(b) == 40


def test_a_rewritten_name_keeps_its_role_word_at_the_end_and_carries_the_hash():
    name = aws_name("elasticache-user", "X" * 80, "cache", "default")
    assert name.endswith("-default") and len(name) == 40
    assert re.search(rf"-[0-9a-f]{{{HASH_LENGTH}}}-default$", name)
    assert aws_name("s3-bucket", "genai-scale", "Team-A", "models", "eu-west-1").endswith("-eu-west-1")


def test_a_long_last_part_is_not_kept_whole():
    name = aws_name("elasticache-replication-group", "dev", "c" * 50)
    assert name_problems("elasticache-replication-group", name) == [] and len(name) == 40


def test_autoname_problems_judge_the_name_pulumi_generates():
    from components.naming import autoname_problems, longest_key

    assert autoname_problems("sagemaker-endpoint", "sagemaker-qwen7b-endpoint") == []
    assert autoname_problems("sagemaker-endpoint", "sagemaker-Qwen_7B-endpoint") == [
        f"must match {RULES['sagemaker-endpoint'].pattern}"]
    assert longest_key("sagemaker-endpoint", "sagemaker-{}-endpoint") == 36
    assert autoname_problems("sagemaker-endpoint", "sagemaker-" + "x" * 36 + "-endpoint") == []
    assert autoname_problems("sagemaker-endpoint", "sagemaker-" + "x" * 37 + "-endpoint") == [
        "64 characters: must be 1-63"]
