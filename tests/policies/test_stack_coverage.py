"""The shipped stacks pass because they comply, not because the rules miss them: remove or change one protective
resource of the real prod plan and the matching rule must fire on the real resources."""

import copy

import pytest

from infra.program import plan_stack
from infra.tiers import pack_config_for
from policies.engine import evaluate
from policies.pack import RULES


@pytest.fixture(scope="module")
def prod():
    plan, cfg = plan_stack(stack="prod")
    return plan, cfg.tier


def run(resources, tier):
    return evaluate(resources, config=pack_config_for(tier))


def names(report, policy):
    return sorted({v.urn.rsplit("::", 1)[-1] for v in report.by_policy(policy)})


def without(plan, type_):
    return [r for r in plan.resources if r.type != type_]


def edited(plan, name, edit):
    out = []
    for r in plan.resources:
        if r.name == name:
            r = copy.deepcopy(r)
            edit(r.inputs)
            r.outputs = {}
        out.append(r)
    return out


def test_prod_is_clean_and_every_rule_ran(prod):
    plan, tier = prod
    report = run(plan.resources, tier)
    assert report.violations == [] and report.unknowns == [] and report.not_applicable == {}
    assert report.policies_run == len(RULES)


def test_every_serving_workload_needs_its_pdb(prod):
    plan, tier = prod
    report = run(without(plan, "kubernetes:policy/v1:PodDisruptionBudget"), tier)
    serving = sorted(r.name for r in plan.by_type("kubernetes:apps/v1:Deployment") if not r.name.endswith("-warm"))
    assert len(serving) >= 3 and names(report, "serving-pod-disruption-budget") == serving


def test_scale_from_zero_groups_need_their_asg_tags(prod):
    plan, tier = prod
    report = run(without(plan, "aws:autoscaling/tag:Tag"), tier)
    zero = sorted(r.name for r in plan.by_type("aws:eks/nodeGroup:NodeGroup")
                  if r.inputs["scalingConfig"]["minSize"] == 0)
    assert zero and names(report, "scale-from-zero-autoscaler-tags") == zero


def test_public_alb_needs_its_waf(prod):
    plan, tier = prod
    report = run(without(plan, "aws:wafv2/webAclAssociation:WebAclAssociation"), tier)
    assert len(report.by_policy("alb-waf-on-public")) == 1


def test_buckets_need_their_public_access_block(prod):
    plan, tier = prod
    report = run(without(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"), tier)
    buckets = sorted(r.name for r in plan.resources if r.type == "aws:s3/bucket:Bucket")
    assert buckets and names(report, "s3-public-access-block") == buckets


def test_target_group_drain_follows_the_backends(prod):
    plan, tier = prod
    [tg] = plan.by_type("aws:lb/targetGroup:TargetGroup")[:1]
    report = run(edited(plan, tg.name, lambda i: i.update({"deregistrationDelay": 1})), tier)
    [v] = report.by_policy("alb-deregistration-covers-drain")
    assert v.message.startswith(f"{tg.name}: deregistrationDelay 1 s < stream drain")


def test_model_fit_runs_on_the_real_vllm_deployments(prod):
    plan, tier = prod
    [d] = [r for r in plan.by_type("kubernetes:apps/v1:Deployment") if r.name == "llama-8b-deployment"]
    report = run(edited(plan, d.name, lambda i: i["metadata"]["annotations"].update(
        {"genai-scale/model-parameters-billion": "400"})), tier)
    [v] = report.by_policy("vllm-model-fits-accelerators")
    assert "does not fit" in v.message
