"""Multi-node serving: the fit check's layouts, the LeaderWorkerSet rendering (validated against the vendored LWS CRD
and the Kubernetes schema, arguments parsed by vLLM's own parser) and the component under mocks."""

from __future__ import annotations

import copy
from dataclasses import replace

import kubernetes_validate
import pytest

from components.catalog.models import ModelFacts
from components.errors import ArgsError
from components.serving.vllm.args import AutoscalingSettings, VllmModelSettings, VllmServiceArgs
from components.serving.vllm.fit import FitInput, Layout, check_fit, plan_layout
from components.serving.vllm.multinode import (LEADER_SELECTOR, MultiNodeVllmServiceArgs, efa_env, planned_layout,
                                               render_multinode_manifests)
from components.serving.vllm.multinode_service import MultiNodeVllmService
from infra.plan import run_program
from tests.infra.test_k8s_schema import SCHEMA_VERSION
from tests.infra.test_upstream_truth import cr_errors
from tests.kit.vllm import placement

L405 = "meta-llama/Llama-3.1-405B-Instruct"
L405_FACTS = ModelFacts(parameters_billion=406, layers=126, attention_heads=128, kv_heads=8, head_dim=128,
                        max_context=131072)
WIRING = dict(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/genai-scale/vllm-nvidia:0.31.0-abc@sha256:00",
              prometheus_url="http://monitoring-prometheus.monitoring.svc.cluster.local:9090",
              oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
              oidc_issuer="oidc.eks.us-east-1.amazonaws.com/id/X")


def p5(**kw) -> FitInput:
    """A 405B BF16 model on p5.48xlarge (8 x H100 80 GB) at TP 8."""
    return FitInput(**{"model": L405, "facts": L405_FACTS, "max_model_len": 8192, "max_num_seqs": 16,
                       "tensor_parallel_size": 8, "unit_memory_gib": 80.0, "units_per_node": 8,
                       "unit_name": "H100 GPU", "instance_type": "p5.48xlarge", **kw})


def model(**kw) -> VllmModelSettings:
    return VllmModelSettings(**{"model_id": L405, "weights_uri": "s3://genai-models/llama-405b/",
                                "max_model_len": 8192, "max_num_seqs": 16, "tensor_parallel_size": 8, **kw})


def args(**kw) -> MultiNodeVllmServiceArgs:
    base = dict(model=model(), placement=placement("p5", "p5.48xlarge"),
                autoscaling=AutoscalingSettings(min_replicas=0, max_replicas=2, p95_latency_ms=4000),
                **WIRING)
    return MultiNodeVllmServiceArgs(**{**base, **kw})


def problems(**kw) -> list[str]:
    with pytest.raises(ArgsError) as exc:
        args(**kw)
    return [f"{p.path}: {p.expected}" for p in exc.value.problems]


# --- fit: layouts ---------------------------------------------------------------------------------------------------

def test_a_405b_bf16_model_gets_two_p5_nodes_tp8_pp2():
    chosen, report = plan_layout(p5())
    assert chosen.layout == Layout(nodes=2, tensor_parallel_size=8, pipeline_parallel_size=2)
    assert report.errors == []
    assert report.weights_gib == pytest.approx(756.23, abs=0.01)  # 406e9 x 2 bytes
    assert report.capacity_gib == pytest.approx(16 * 80 * 0.9)


def test_a_model_that_fits_one_node_keeps_its_single_node_report():
    small = p5(facts=ModelFacts(parameters_billion=70.6, layers=80, attention_heads=64, kv_heads=8, head_dim=128,
                                max_context=131072), model="meta-llama/Llama-3.3-70B-Instruct")
    chosen, report = plan_layout(small)
    assert chosen is small and chosen.layout == Layout(1, 8, 1)
    assert report == check_fit(small)


def test_a_non_memory_error_is_not_answered_with_more_nodes():
    f = p5(max_model_len=200_000)
    chosen, report = plan_layout(f)
    assert chosen is f
    assert any("exceeds the model's context of 131072" in e for e in report.errors)


def test_no_layout_within_the_node_limit_says_so_with_the_numbers():
    f = p5(unit_memory_gib=40.0, unit_name="A100 GPU", instance_type="p4d.24xlarge")
    chosen, report = plan_layout(f, max_nodes=2)
    assert chosen is f
    last = report.errors[-1]
    assert last.startswith(f"{L405}: no multi-node layout of up to 2 nodes fits either: ")
    assert "per A100 GPU weights 47.3 GiB (756.2 / 16)" in last
    assert "capacity 36.0 GiB per A100 GPU (40.0 GiB x gpu_memory_utilization 0.9)" in last


def test_pipeline_parallel_size_must_divide_the_layers():
    report = check_fit(p5(nodes=4, tensor_parallel_size=8, pipeline_parallel_size=4))
    assert (f"{L405}: pipeline_parallel_size 4 must divide the model's 126 layers (sizes that do, up to 8: "
            "1, 2, 3, 6, 7)") in report.errors


def test_tp_times_pp_must_fill_the_nodes_and_tp_stays_in_a_node():
    report = check_fit(p5(nodes=2, tensor_parallel_size=16, pipeline_parallel_size=2))
    assert report.errors[0] == (
        f"{L405}: layout TP 16 x PP 2 over 2 x p5.48xlarge (8 H100 GPU(s) each) uses 32 H100 GPU(s) but 2 nodes hold "
        "16; tensor_parallel_size x pipeline_parallel_size must equal nodes x H100 GPUs per node (the vLLM docs' "
        "rule: TP = H100 GPUs per node, PP = nodes)")
    assert report.errors[1] == (
        f"{L405}: tensor_parallel_size 16 exceeds the 8 H100 GPU(s) of one p5.48xlarge; across nodes use pipeline "
        "parallelism (TP = H100 GPUs per node, PP = nodes)")


def test_tp_must_divide_the_attention_heads_in_a_layout():
    facts = L405_FACTS.model_copy(update={"attention_heads": 20, "kv_heads": 4})
    report = check_fit(p5(facts=facts, nodes=2, pipeline_parallel_size=2))
    assert (f"{L405}: tensor_parallel_size 8 must divide the 20 attention heads (sizes that do, up to the 8 per "
            "node: 1, 2, 4, 5)") in report.errors


def test_a_layout_short_of_memory_names_the_per_gpu_need():
    report = check_fit(p5(nodes=2, pipeline_parallel_size=2, max_num_seqs=512, max_model_len=131072))
    assert len(report.errors) == 1
    assert report.errors[0].startswith(
        f"{L405} does not fit TP 8 x PP 2 over 2 x p5.48xlarge (8 H100 GPU(s) each) at max_num_seqs 512: per H100 "
        "GPU weights 47.3 GiB + KV cache ")
    assert "capacity 72.0 GiB per H100 GPU" in report.errors[0]


# --- args ------------------------------------------------------------------------------------------------------------

def test_args_take_the_layout_from_the_fit_check():
    a = args()
    assert a.layout() == Layout(2, 8, 2)
    assert planned_layout(VllmServiceArgs.model_construct(**dict(a))) == Layout(2, 8, 2)


def test_explicit_nodes_are_checked_and_pp_messages_point_at_pipeline_parallel_size():
    assert args(nodes=3, pipeline_parallel_size=3).layout() == Layout(3, 8, 3)
    found = problems(nodes=4)
    assert found == [f"pipeline_parallel_size: {L405}: pipeline_parallel_size 4 must divide the model's 126 layers "
                     "(sizes that do, up to 8: 1, 2, 3, 6, 7)"]


def test_multi_node_needs_efa_dedicated_gpus_and_a_model_too_big_for_one_node():
    assert problems(placement=placement("g5", "g5.2xlarge"), gpu_sharing="time-sliced",
                    pipeline_parallel_size=2, warm_pool_placeholders=1) == [
        "pipeline_parallel_size: only with nodes given",
        "gpu_sharing: dedicated (a group takes whole nodes)",
        "efa: an EFA-capable instance type, not g5.2xlarge (or efa off)",
        "warm_pool_placeholders: 0 (placeholders hold single-node replicas)"]
    small = model(model_id="meta-llama/Llama-3.1-8B-Instruct", weights_uri="s3://genai-models/llama-8b/")
    assert problems(model=small) == [
        "nodes: a model that does not fit one p5.48xlarge: meta-llama/Llama-3.1-8B-Instruct fits one node, serve it "
        "with VllmService"]


# --- manifests -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered():
    return render_multinode_manifests("llama-405b", args())


def _member(rendered, role):
    return rendered["LeaderWorkerSet"]["spec"]["leaderWorkerTemplate"][f"{role}Template"]["spec"]


def test_the_group_is_one_leader_and_one_worker_from_one_template(rendered):
    spec = rendered["LeaderWorkerSet"]["spec"]
    lwt = spec["leaderWorkerTemplate"]
    assert (lwt["size"], lwt["restartPolicy"], spec["startupPolicy"]) == (2, "RecreateGroupAfterStart",
                                                                        "LeaderCreated")
    leader, worker = _member(rendered, "leader"), _member(rendered, "worker")
    lc, wc = leader["containers"][0], worker["containers"][0]
    assert wc["args"] == [*lc["args"], "--headless"]
    assert {k: v for k, v in leader.items() if k != "containers"} == {k: v for k, v in worker.items()
                                                                       if k != "containers"}
    assert "readinessProbe" in lc and not {"readinessProbe", "startupProbe", "livenessProbe"} & set(wc)
    assert "topologySpreadConstraints" not in leader  # the group stays in the EFA node group's AZ


def test_member_arguments_parse_with_vllms_parser(rendered, vllm_parser):
    env = {"$(LWS_WORKER_INDEX)": "1", "$(LWS_LEADER_ADDRESS)": "llama-405b-0.llama-405b.genai-serving"}
    for role in ("leader", "worker"):
        argv = [env.get(a, a) for a in _member(rendered, role)["containers"][0]["args"]]
        ns = vllm_parser.parse(argv)
        assert (ns.tensor_parallel_size, ns.pipeline_parallel_size, ns.nnodes) == (8, 2, 2)
        assert ns.master_addr == "llama-405b-0.llama-405b.genai-serving"
        assert ns.headless is (role == "worker")


def test_master_addr_may_be_the_leaders_dns_name(vllm_parser):
    """--master-addr is LWS_LEADER_ADDRESS, a DNS name (<lws>-<group>.<lws>.<namespace>), not an IP. The pinned vLLM
    turns it into a tcp:// init method for torch.distributed (vllm/distributed/parallel_state.py, nnodes > 1), whose
    TCPStore resolves host names; LWS's headless Service publishes not-ready addresses (lws
    pkg/utils/controller/controller_utils.go), so the name resolves before the leader is ready. Checked here with a
    host name through the same two calls."""
    import datetime

    from torch.distributed import TCPStore
    from vllm.utils.network_utils import get_distributed_init_method, get_open_port

    port = get_open_port()
    assert get_distributed_init_method("localhost", port) == f"tcp://localhost:{port}"
    timeout = datetime.timedelta(seconds=10)
    server = TCPStore("localhost", port, 2, True, timeout=timeout, wait_for_workers=False)
    client = TCPStore("localhost", port, 2, False, timeout=timeout)
    client.set("rank-1", "joined")
    assert server.get("rank-1") == b"joined"


def test_efa_and_shm_without_added_capabilities_on_leader_and_worker(rendered):
    for role in ("leader", "worker"):
        pod = _member(rendered, role)
        c = pod["containers"][0]
        assert c["resources"]["requests"]["vpc.amazonaws.com/efa"] == "32"  # p5.48xlarge
        assert c["resources"]["limits"]["vpc.amazonaws.com/efa"] == "32"
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
        # no IPC_LOCK: a non-root engine never gets it and the namespace's restricted standard refuses it
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert (env["FI_PROVIDER"], env["FI_EFA_USE_DEVICE_RDMA"], env["FI_EFA_FORK_SAFE"]) == ("efa", "1", "1")
        assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["volumes"]


def test_efa_env_without_gpudirect_rdma_stages_through_the_host():
    names = {e["name"]: e["value"] for e in efa_env("g6e.48xlarge")}
    assert "FI_EFA_USE_DEVICE_RDMA" not in names and names["NCCL_NET_GDR_LEVEL"] == "0"


def test_efa_off_requests_no_efa_and_adds_no_capability():
    c = render_multinode_manifests("x", args(efa=False))["LeaderWorkerSet"]["spec"]["leaderWorkerTemplate"][
        "workerTemplate"]["spec"]["containers"][0]
    assert "vpc.amazonaws.com/efa" not in c["resources"]["requests"]
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_services_select_leaders_and_policies_fence_the_group(rendered):
    assert rendered["Service"]["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
    assert rendered["ReplicasService"]["spec"]["selector"].items() >= LEADER_SELECTOR.items()
    leader_np = rendered["NetworkPolicy"]["spec"]
    assert leader_np["podSelector"]["matchLabels"].items() >= LEADER_SELECTOR.items()
    assert leader_np["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert leader_np["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "genai-gateway", "monitoring"]
    group = rendered["GroupNetworkPolicy"]["spec"]
    assert group["ingress"] == [{"from": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "llama-405b",
        "leaderworkerset.sigs.k8s.io/name": "llama-405b"}}}]}]  # every port, from the set's own pods only


def test_keda_scales_groups_through_the_lws_scale_subresource(rendered):
    so = rendered["ScaledObject"]["spec"]
    assert so["scaleTargetRef"] == {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                                    "name": "llama-405b"}
    banded = next(t for t in so["triggers"] if t["name"].startswith("p95-"))
    assert 'count(kube_pod_info{namespace="genai-serving",pod=~"llama-405b-[0-9]+"})' in banded["metadata"]["query"]
    assert so["minReplicaCount"] == 0 and "gateway-demand" in [t["name"] for t in so["triggers"]]


def test_manifests_validate_against_the_lws_crd_and_the_kubernetes_schema(rendered):
    errors = []
    for key, body in rendered.items():
        group_version = body["apiVersion"] if "/" in body["apiVersion"] else f"core/{body['apiVersion']}"
        if key in ("LeaderWorkerSet", "ScaledObject", "ServiceMonitor"):
            errors += cr_errors(key, f"kubernetes:{group_version}:{body['kind']}", copy.deepcopy(body))
        else:
            try:
                kubernetes_validate.validate(copy.deepcopy(body), SCHEMA_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{key}: {exc.message} at {list(exc.path)}")
    assert errors == []


def test_a_wrong_lws_field_is_caught_by_the_crd_check(rendered):
    body = copy.deepcopy(rendered["LeaderWorkerSet"])
    body["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"
    body["spec"]["leaderWorkerTemplate"]["groupSize"] = 2
    errors = cr_errors("lws", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet", body)
    assert any("restartPolicy" in e for e in errors) and any("groupSize" in e for e in errors)


def test_group_annotations_carry_the_layout(rendered):
    ann = rendered["LeaderWorkerSet"]["metadata"]["annotations"]
    assert (ann["genai-scale/nodes"], ann["genai-scale/tensor-parallel-size"],
            ann["genai-scale/pipeline-parallel-size"]) == ("2", "8", "2")


# --- component -------------------------------------------------------------------------------------------------------

def test_component_creates_the_group_and_its_objects():
    def program():
        svc = MultiNodeVllmService("llama-405b", args())
        assert svc.layout == Layout(2, 8, 2)
        assert svc.service_url == "http://llama-405b.genai-serving.svc.cluster.local:8000"
        assert svc.served_model_name == "llama-405b" and svc.api_key_secret_name == "llama-405b-api-key"
    result = run_program(program)
    parent = result.one("genai-scale:index:MultiNodeVllmService", "llama-405b")
    names = sorted(r.name for r in result.children_of(parent.urn))
    assert names == sorted([
        "llama-405b-weights-role", "llama-405b-weights-policy", "llama-405b-weights-attach", "llama-405b-sa",
        "llama-405b-api-key", "llama-405b-api-key", "llama-405b-lws", "llama-405b-service", "llama-405b-replicas",
        "llama-405b-pdb", "llama-405b-netpol", "llama-405b-group-netpol", "llama-405b-servicemonitor",
        "llama-405b-scaledobject"])
    lws = result.one("kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet", "llama-405b-lws")
    assert lws.ignore_changes == ["spec.replicas"]  # KEDA owns the number of groups
    so = result.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "llama-405b-scaledobject")
    assert lws.urn in so.dependencies


def test_layout_input_is_frozen_and_replace_keeps_other_fields():
    f = p5()
    assert replace(f, nodes=2).tensor_parallel_size == 8


def test_the_policy_pack_fit_check_reads_the_layout_from_the_member_args(rendered):
    from components.serving.vllm.fit import fit_input_from_manifest, fit_problems_from_manifest
    lws = rendered["LeaderWorkerSet"]
    argv = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["args"]
    fi, missing = fit_input_from_manifest(argv, lws["metadata"]["annotations"])
    assert missing == [] and fi.layout == Layout(2, 8, 2)
    assert fit_problems_from_manifest(argv, lws["metadata"]["annotations"]) == []
    single = argv[:argv.index("--pipeline-parallel-size")]
    assert "does not fit" in fit_problems_from_manifest(single, lws["metadata"]["annotations"])[0]
