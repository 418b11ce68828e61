"""The pack itself: metadata of every rule, the pack config built from a tier's facts, the PolicyPack entry point, and
agreement between the real CrossGuard analyzer (pulumi_policy's servicer, fed protobuf requests) and the offline
engine."""

import ast
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pulumi_policy
import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, Severity
from pulumi_policy.policy import _PolicyAnalyzerServicer

from infra.tiers import TierFacts, pack_config_for, tier_names
from policies.engine import PolicyConfigError, evaluate
from policies.pack import (ALL_POLICIES, LEVEL_FACTS, PACK_NAME, REGISTERED, RULES, config_reference_markdown,
                           fact_schemas, pack_config, rule_table_markdown)
from policies._rule import CONCERNS
from tests.policies.kit import res, run

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "policies"

STABLE_IDS = """
alb-deregistration-covers-drain alb-drop-invalid-headers alb-http-redirects-to-https alb-tls-1-2-minimum
alb-waf-on-public accelerator-pods-request-and-tolerate accelerator-scale-to-zero-in-prototype autoscaler-bounds
bedrock-commitment-outside-scale cache-automatic-failover cache-multi-az cost-allocation-tags ebs-encrypted
ecr-immutable-tags ecr-scan-on-push eks-control-plane-logging eks-multi-az eks-public-endpoint-restricted
eks-secrets-encryption elasticache-at-rest-encryption elasticache-auth-required elasticache-auth-token-not-literal
elasticache-transit-encryption helm-chart-version-pinned iam-no-broad-managed-policies iam-no-wildcard-actions
iam-no-wildcard-resources imds-hop-limit imdsv2-required k8s-image-tag-pinned k8s-no-privileged-containers
k8s-run-as-non-root kms-key-rotation neuron-instance-neuron-ami node-group-ssh-restricted nvidia-instance-nvidia-ami
on-demand-h100-max-size-cap s3-public-access-block sagemaker-endpoint-kms sagemaker-tensor-parallel-matches-instance
scale-from-zero-autoscaler-tags security-group-ssh-not-public serving-graceful-drain serving-pod-disruption-budget
serving-readiness-probe serving-startup-probe tensor-parallel-matches-accelerators vllm-model-fits-accelerators
warm-pool-within-tier
accelerator-node-group-vendor-taint autoscaler-taint-tags-match-taints no-literal-secrets
accelerator-workload-scales-to-zero
sqs-queue-encrypted scaled-job-queue-has-dlq s3-bucket-encrypted batch-pods-on-batch-capacity batch-node-group-spot
pods-no-static-aws-keys
sagemaker-async-output-encrypted sagemaker-async-scale-to-zero bedrock-service-role-source-conditions
rds-cluster-encrypted rds-instance-not-public qdrant-service-not-public aurora-scale-to-zero-in-prototype
embedding-service-scale-to-zero scaled-object-queue-has-dlq
vllm-admin-endpoints-private keda-no-removed-vllm-metrics
lws-efa-on-leader-and-workers multinode-pods-least-privilege multinode-network-policy
karpenter-accelerator-pools-tainted karpenter-pools-limited karpenter-disruption-budgets karpenter-no-termination-handler
capacity-max-below-peak capacity-slo-unreachable capacity-min-above-off-peak
efs-encrypted efs-tls-required efs-mount-targets-from-security-groups
""".split()


def _growth_doc():
    return yaml.safe_load((ROOT / "stacks" / "tiers" / "growth" / "tier.yaml").read_text())


class TestMetadata:
    def test_ids_are_stable(self):
        # Renaming a rule breaks users' pack configs and CI allow-lists: add ids, never rename them silently.
        assert sorted(RULES) == sorted(STABLE_IDS)

    def test_at_least_thirty_rules_in_every_concern(self):
        assert len(RULES) >= 30
        assert {r.concern for r in RULES.values()} == set(CONCERNS)

    @pytest.mark.parametrize("rid", sorted(RULES))
    def test_every_rule_is_complete(self, rid):
        rule = RULES[rid]
        policy = REGISTERED[rid].policy
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", rid)
        assert policy.name == rid and policy.display_name == rule.title
        assert len(rule.description) > 40 and rule.description.endswith(".")
        assert len(rule.remediation) > 20
        assert isinstance(rule.severity, Severity)
        assert all(re.fullmatch(r"CKV2?_(AWS|K8S)_\d+", c) for c in rule.checkov)
        assert policy.tags == [rule.concern, *rule.checkov]
        # a tier-fact property is a config property with a (strict) default
        assert set(rule.facts) <= set(rule.defaults())

    def test_every_fact_the_pack_reads_is_a_tier_file_key(self):
        facts = TierFacts.model_json_schema(by_alias=True)

        def has(path):
            node = facts
            for part in path.split("."):
                ref = node.get("$ref")
                if ref:
                    node = facts["$defs"][ref.rsplit("/", 1)[-1]]
                if part not in node.get("properties", {}) or part not in node.get("required", []):
                    return False
                node = node["properties"][part]
            return True

        assert fact_schemas() and all(has(path) for path in fact_schemas()), [p for p in fact_schemas() if not has(p)]

    def test_no_tier_is_named_in_a_schema(self):
        # the tier is free text: adding a tier folder needs no change here
        names = set(tier_names())
        assert names >= {"prototype", "growth", "scale"}
        for rule in RULES.values():
            for spec in rule.schema_properties().values():
                assert not names & set(spec.get("enum", [])), rule.id
                assert not names & set(spec.get("default") if isinstance(spec.get("default"), dict) else []), rule.id

    @pytest.mark.parametrize("rid", sorted(RULES))
    def test_config_schema_is_valid_and_defaults_fit_it(self, rid):
        props = RULES[rid].schema_properties()
        schema = {"type": "object", "properties": props}
        jsonschema.Draft7Validator.check_schema(schema)
        assert "enforcementLevel" not in props and "tier" in props
        jsonschema.validate(RULES[rid].defaults(), schema)
        assert all("default" in spec for key, spec in props.items() if key != "tier")

    def test_checkov_ids_cover_the_issue_list(self):
        ids = {c for r in RULES.values() for c in r.checkov}
        assert {"CKV_AWS_38", "CKV_AWS_58", "CKV_AWS_37", "CKV_AWS_79", "CKV_AWS_341", "CKV_AWS_100", "CKV_AWS_29",
                "CKV_AWS_30", "CKV_AWS_31", "CKV_AWS_98", "CKV_AWS_2", "CKV_AWS_103", "CKV_AWS_131", "CKV2_AWS_28",
                "CKV_AWS_51", "CKV_AWS_163", "CKV2_AWS_6", "CKV_K8S_16", "CKV_K8S_23", "CKV_K8S_14"} <= ids


class TestDocs:
    def test_docs_carry_the_generated_rule_table_and_config_reference(self):
        # regenerate with `python -m policies.pack` and paste into docs/policies.md
        text = (ROOT / "docs" / "policies.md").read_text()
        assert rule_table_markdown() in text
        assert config_reference_markdown() in text
        assert f"It holds {len(RULES)} rules" in text


class TestEnforcement:
    def test_cost_level_is_the_tiers_cost_enforcement_fact(self):
        shipped = pack_config_for("growth")
        doc = TierFacts.model_validate(_growth_doc()).to_doc()
        advisory = {**doc, "policy": {**doc["policy"], "costEnforcement": "advisory"}}
        cfg = pack_config("lenient", facts=advisory)
        for rid, rule in RULES.items():
            if rid in LEVEL_FACTS:  # capacity rules: a level fact each (tests/policies/test_capacity.py)
                continue
            want = "advisory" if rule.concern == "cost" and rule.fixed_level is None else "mandatory"
            assert cfg[rid]["enforcementLevel"] == want, rid
            assert shipped[rid]["enforcementLevel"] == "mandatory", rid
        assert cfg["accelerator-scale-to-zero-in-prototype"]["enforcementLevel"] == "mandatory"  # fixed level

    def test_without_facts_every_rule_is_mandatory_and_keeps_its_strict_defaults(self):
        cfg = pack_config("unknown")
        assert {e["enforcementLevel"] for rid, e in cfg.items() if rid not in LEVEL_FACTS} == {"mandatory"}
        assert {cfg[rid]["enforcementLevel"] for rid in LEVEL_FACTS} == {"advisory"}  # estimates: advisory
        assert cfg["on-demand-h100-max-size-cap"] == {"enforcementLevel": "mandatory", "tier": "unknown"}
        assert RULES["on-demand-h100-max-size-cap"].defaults() == {"maxNodes": 0}
        assert RULES["bedrock-commitment-outside-scale"].defaults() == {"allowProvisionedThroughput": False,
                                                                        "allowCommitment": False}
        assert all(RULES[r].defaults()["required"] is True for r in (
            "accelerator-scale-to-zero-in-prototype", "eks-multi-az", "cache-multi-az", "cache-automatic-failover",
            "alb-waf-on-public"))

    def test_facts_the_pack_needs_are_all_checked(self):
        doc = _growth_doc()
        del doc["caps"]["warmAccelerators"]
        doc["multiAz"]["cluster"] = "yes"
        with pytest.raises(ValueError) as err:
            pack_config("growth", facts=doc)
        text = str(err.value)
        assert text.startswith("tier 'growth': the facts do not fit the policy pack: 2 problems")
        assert "  - caps.warmAccelerators: required (a tier fact the policy pack reads)" in text
        assert "  - multiAz.cluster = 'yes': 'yes' is not of type 'boolean'" in text

    def test_overrides(self):
        cfg = pack_config_for("scale", overrides={"all": "advisory",
                                                  "eks-multi-az": {"enforcementLevel": "disabled", "minZones": 3}})
        assert cfg["cost-allocation-tags"]["enforcementLevel"] == "advisory"
        assert cfg["eks-multi-az"] == {"enforcementLevel": "disabled", "tier": "scale", "required": True, "minZones": 3}

    def test_disabled_policy_does_not_run(self):
        bare = [res("aws:eks/cluster:Cluster", "eks", {})]
        full = run(bare)
        off = run(bare, overrides={"eks-secrets-encryption": "disabled"})
        assert off.policies_run == full.policies_run - 1
        assert full.by_policy("eks-secrets-encryption") and not off.by_policy("eks-secrets-encryption")

    def test_remediate_is_reported_as_mandatory(self):
        report = run([res("aws:eks/cluster:Cluster", "eks", {})], tier="prototype",
                     overrides={"cost-allocation-tags": "remediate"})
        assert {v.level for v in report.by_policy("cost-allocation-tags")} == {"mandatory"}



class TestConfigValidation:
    def test_every_problem_is_listed(self):
        with pytest.raises(PolicyConfigError) as err:
            evaluate([], config={"no-such-policy": "mandatory", "eks-multi-az": {"minZones": 1, "color": "red"},
                                 "imds-hop-limit": "sometimes", "all": {"enforcementLevel": "strict"},
                                 "cost-allocation-tags": {"tier": 3}})
        text = str(err.value)
        assert text.startswith("invalid policy-pack config: 6 problems")
        for expected in ("no-such-policy: unknown policy",
                         "eks-multi-az.minZones: 1 is less than the minimum of 2",
                         "Additional properties are not allowed ('color' was unexpected)",
                         "imds-hop-limit = 'sometimes': expected one of advisory, mandatory, remediate, disabled",
                         "all.enforcementLevel = 'strict'",
                         "cost-allocation-tags.tier: 3 is not of type 'string'"):
            assert expected in text


class TestEngineSemantics:
    def test_unknown_values_are_not_violations(self):
        unknown_bool = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
        cluster = {"vpcConfig": {"endpointPublicAccess": unknown_bool}}
        report = run([res("aws:eks/cluster:Cluster", "eks", cluster)])
        assert report.by_policy("eks-public-endpoint-restricted") == []
        assert any(u.startswith("eks-public-endpoint-restricted: boolean value at .vpcConfig.endpointPublicAccess")
                   for u in report.unknowns)

    def test_unknown_auth_token_still_counts_as_set(self):
        cache = {"authToken": "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "transitEncryptionEnabled": True}
        report = run([res("aws:elasticache/replicationGroup:ReplicationGroup", "c", cache)])
        assert report.by_policy("elasticache-auth-required") == []

    def test_secret_inputs_are_unwrapped_as_the_analyzer_does(self):
        secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                  "value": ["0.0.0.0/0"]}
        cluster = {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": secret}}
        assert run([res("aws:eks/cluster:Cluster", "eks", cluster)]).by_policy("eks-public-endpoint-restricted")

    def test_counts(self):
        report = run([res("aws:kms/key:Key", "k", {"enableKeyRotation": True}),
                      res("pulumi:providers:aws", "aws", {})])
        assert report.resources_checked == 1 and report.policies_run == len(RULES)


class TestPackEntryPoint:
    def test_pulumi_policy_yaml(self):
        doc = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
        assert doc["runtime"] == "python" and re.fullmatch(r"\d+\.\d+\.\d+", doc["version"])
        assert "pulumi-policy" in (PACK_DIR / "requirements.txt").read_text()

    def test_main_builds_the_pack_with_every_policy(self, monkeypatch):
        built = {}

        class Recorder:
            def __init__(self, **kwargs):
                built.update(kwargs)

        monkeypatch.setattr(pulumi_policy, "PolicyPack", Recorder)
        runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
        assert built["name"] == PACK_NAME
        assert built["policies"] == ALL_POLICIES
        assert built["enforcement_level"] == EnforcementLevel.MANDATORY

    def test_only_main_constructs_the_pack(self):
        # PolicyPack(...) starts a gRPC server and blocks: importable modules must never call it
        for path in PACK_DIR.glob("*.py"):
            calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
                     and getattr(n.func, "id", getattr(n.func, "attr", None)) == "PolicyPack"]
            assert len(calls) == (1 if path.name == "__main__.py" else 0), path.name

    def test_pack_loads_from_a_copy_with_another_directory_name(self, tmp_path):
        # what `pulumi policy publish` ships: the pack directory alone, extracted under another name
        copy = tmp_path / "genai-scale-0.1.0"
        shutil.copytree(PACK_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
        code = ("import sys, pulumi_policy, runpy\n"
                "sys.modules['components'] = None  # the repository is not shipped with a published pack\n"
                "class R:\n"
                "    def __init__(self, **kw): print(len(kw['policies']), sys.modules['policies'].__file__)\n"
                "pulumi_policy.PolicyPack = R\n"
                f"runpy.run_path({str(copy)!r}, run_name='__main__')\n"  # as `python <pack dir>`
                # the GPU rules fall back to the instance-family table
                "from policies.engine import evaluate\n"
                "ng = {'urn': 'urn:x::ng', 'type': 'aws:eks/nodeGroup:NodeGroup', 'name': 'ng', 'parent': None,\n"
                "      'inputs': {'instanceTypes': ['g5.xlarge'], 'amiType': 'AL2023_x86_64_STANDARD'}}\n"
                "print(len(evaluate([ng]).by_policy('nvidia-instance-nvidia-ami')))\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert out.returncode == 0, out.stderr
        count, origin, found = out.stdout.split()
        assert int(count) == len(RULES) and origin.startswith(str(copy)) and found == "1"


def _struct(values):
    s = struct_pb2.Struct()
    json_format.ParseDict(values, s)
    return s


class TestAgreesWithTheCrossGuardAnalyzer:
    """Feed the same resources to pulumi_policy's analyzer servicer (the code `pulumi preview --policy-pack` talks
    to over gRPC) and to the offline engine; the findings must be identical."""

    def resources(self):
        lt = res("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"metadataOptions": {"httpTokens": "optional"}})
        ng = res("aws:eks/nodeGroup:NodeGroup", "a10g", {
            "instanceTypes": ["g5.xlarge"], "amiType": "AL2023_x86_64_STANDARD",
            "scalingConfig": {"minSize": 1, "maxSize": 2, "desiredSize": 1}}, deps=[lt])
        cluster = res("aws:eks/cluster:Cluster", "eks", {"vpcConfig": {"endpointPublicAccess": True,
                                                                       "publicAccessCidrs": ["0.0.0.0/0"]},
                                                         "tags": {"team": "ml"}})
        return [lt, ng, cluster]

    def test_same_violations(self):
        resources = self.resources()
        cfg = pack_config_for("prototype")
        servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", ALL_POLICIES, EnforcementLevel.MANDATORY)
        request = proto.ConfigureAnalyzerRequest()
        for rid, entry in cfg.items():
            request.policyConfig[rid].CopyFrom(proto.PolicyConfig(
                enforcementLevel=proto.MANDATORY if entry["enforcementLevel"] == "mandatory" else proto.ADVISORY,
                properties=_struct({k: v for k, v in entry.items() if k != "enforcementLevel"})))
        servicer.Configure(request, None)

        got = set()
        for r in resources:
            resp = servicer.Analyze(proto.AnalyzeRequest(type=r["type"], properties=_struct(r["inputs"]), urn=r["urn"],
                                                         name=r["name"]), None)
            got |= {(d.policyName, d.urn or r["urn"], d.message.split("\n", 1)[1],
                     "mandatory" if d.enforcementLevel == proto.MANDATORY else "advisory") for d in resp.diagnostics}
        stack = proto.AnalyzeStackRequest(resources=[proto.AnalyzerResource(
            type=r["type"], properties=_struct(r["inputs"]), urn=r["urn"], name=r["name"],
            dependencies=r["dependencies"]) for r in resources])
        resp = servicer.AnalyzeStack(stack, None)
        got |= {(d.policyName, d.urn, d.message.split("\n", 1)[1],
                 "mandatory" if d.enforcementLevel == proto.MANDATORY else "advisory") for d in resp.diagnostics}

        offline = evaluate(resources, config=cfg)
        want = {(v.policy, v.urn, v.message, v.level) for v in offline.violations}
        assert got == want
        assert {"imdsv2-required", "nvidia-instance-nvidia-ami", "accelerator-scale-to-zero-in-prototype",
                "eks-public-endpoint-restricted", "cost-allocation-tags"} <= {p for p, *_ in want}
        assert ("cost-allocation-tags", resources[2]["urn"], "missing cost-allocation tag(s) environment, tier",
                "advisory") in want

    def test_analyzer_info_carries_the_metadata(self):
        servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", ALL_POLICIES, EnforcementLevel.MANDATORY)
        info = servicer.GetAnalyzerInfo(None, None)
        by_name = {p.name: p for p in info.policies}
        assert set(by_name) == set(RULES)
        p = by_name["eks-public-endpoint-restricted"]
        assert p.severity == proto.POLICY_SEVERITY_CRITICAL and "CKV_AWS_38" in p.tags
        assert p.remediation_steps.startswith("Set vpcConfig.endpointPublicAccess=false")
        assert "tier" in json_format.MessageToDict(by_name["eks-multi-az"].configSchema)["properties"]
