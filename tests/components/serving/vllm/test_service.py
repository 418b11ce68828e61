"""VllmService under mocks: every Kubernetes object, snapshot-tested and paired with named assertions."""

from __future__ import annotations

import json

import pytest

from components import versions
from components.errors import ArgsError
from components.serving.vllm.args import VllmModelSettings
from components.serving.vllm.autoscaling import banded_replicas_query
from components.serving.vllm.manifests import accelerator_request, render_manifests
from components.serving.vllm.args import AutoscalingSettings, VllmServiceArgs, placement_from_node_group
from components.serving.vllm.service import VllmService
from infra.plan import run_program
from tests.kit.vllm import placement

LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
WIRING = dict(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/genai-scale/vllm-nvidia:0.31.0-abc@sha256:00",
              prometheus_url="http://monitoring-prometheus.monitoring.svc.cluster.local:9090",
              oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
              oidc_issuer="oidc.eks.us-east-1.amazonaws.com/id/X")


def model(**kw) -> VllmModelSettings:
    return VllmModelSettings(**{"model_id": LLAMA8, "weights_uri": "s3://genai-models/llama-8b/",
                                "max_model_len": 4096, "max_num_seqs": 16, "kv_tokens_per_sequence": 1024, **kw})


def args(**kw) -> VllmServiceArgs:
    base = dict(model=model(), placement=placement("a10g", "g5.2xlarge"),
                autoscaling=AutoscalingSettings(min_replicas=1, max_replicas=6, p95_latency_ms=4000,
                                                tokens_per_second_per_replica=800),
                warm_pool_placeholders=1, **WIRING)
    return VllmServiceArgs(**{**base, **kw})


@pytest.fixture(scope="module")
def gpu():
    return render_manifests("llama-8b", args())


def test_manifests_snapshot(gpu, snapshot):
    assert json.loads(json.dumps(gpu)) == snapshot


def test_limits_request_the_gpus_and_bounded_memory(gpu):
    c = gpu["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    # g5.2xlarge: 8 vCPU, 32 GiB host, 1 x A10G; 75 % of the node's share goes to the replica
    assert c["resources"]["requests"] == {"cpu": "6", "memory": "24Gi", "nvidia.com/gpu": "1"}
    assert c["resources"]["limits"] == {"memory": "26Gi", "nvidia.com/gpu": "1"}  # + 2 GiB /dev/shm


def test_tolerations_and_node_selector_come_from_the_node_group(gpu):
    pod = gpu["Deployment"]["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                   "effect": "NoSchedule"}]
    assert pod["nodeSelector"]["genai-scale/node-group"] == "a10g"
    assert pod["nodeSelector"]["genai-scale/accelerator"] == "a10g"


def test_tolerations_follow_a_node_group_object():
    class FakeGroup:  # the GpuNodeGroup attributes the placement reads
        from components.catalog.accelerators import lookup
        accelerator = lookup("inf2.8xlarge")
        labels = {"genai-scale/node-group": "inf2", "custom": "yes"}
        taints = [{"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"},
                  {"key": "dedicated", "value": "llm", "effect": "NoExecute"}]
    p = placement_from_node_group(FakeGroup())
    m = render_manifests("x", args(placement=p, model=model(tensor_parallel_size=2), warm_pool_placeholders=0,
                                   engine_version=versions.VLLM_NEURON_ENGINE_VERSION))
    pod = m["Deployment"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"genai-scale/node-group": "inf2", "custom": "yes"}
    assert [t["key"] for t in pod["tolerations"]] == ["aws.amazon.com/neuron", "dedicated"]
    assert pod["tolerations"][1]["effect"] == "NoExecute"


def test_probes_cover_model_loading(gpu):
    c = gpu["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 1200  # the 20-minute load budget


def test_grace_period_covers_prestop_and_drain(gpu):
    pod = gpu["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "15"]}}
    assert c["args"][c["args"].index("--shutdown-timeout") + 1] == "60"
    assert pod["terminationGracePeriodSeconds"] == 15 + 60 + 15


def test_restricted_security_context_and_writable_volumes(gpu):
    pod = gpu["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True}
    volumes = {v["name"]: v["emptyDir"] for v in pod["volumes"]}
    assert volumes["dshm"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/dev/shm", "/models", "/cache", "/tmp"}


def test_api_key_comes_from_a_secret_not_the_arguments(gpu):
    c = gpu["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "llama-8b-api-key", "key": "api-key"}}
    assert not any("api-key" in a for a in c["args"])
    assert env["MODEL_SOURCE"]["value"] == "s3://genai-models/llama-8b/"


def test_deployment_is_self_describing_for_the_policy_pack(gpu):
    from components.serving.vllm.fit import fit_problems_from_manifest
    d = gpu["Deployment"]
    assert d["metadata"]["labels"]["app.kubernetes.io/name"] == "vllm"
    assert d["metadata"]["labels"]["app.kubernetes.io/component"] == "serving"
    ann = d["metadata"]["annotations"]
    assert ann["genai-scale/model-parameters-billion"] == "8.03"
    assert ann["genai-scale/instance-type"] == "g5.2xlarge"
    assert ann["genai-scale/accelerator-count"] == "1"
    assert ann["genai-scale/accelerator-memory-gib"] == "22.35"
    assert ann["genai-scale/model-attention-heads"] == "32"
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert fit_problems_from_manifest(c["args"], ann) == []


def test_scaled_object_triggers_and_behavior(gpu):
    so = gpu["ScaledObject"]["spec"]
    assert so["minReplicaCount"] == 1 and so["maxReplicaCount"] == 6
    assert so["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-8b"}
    names = [t["name"] for t in so["triggers"]]
    assert names == ["queue-depth", "p95-e2e-latency", "tokens-per-second", "gpu-utilization"]
    queue = so["triggers"][0]
    assert queue["metricType"] == "AverageValue" and queue["metadata"]["threshold"] == "5"
    assert queue["metadata"]["query"] == \
        'sum(vllm:num_requests_waiting{namespace="genai-serving",model_name="llama-8b"})'
    assert so["triggers"][2]["metadata"]["threshold"] == "640"  # 800 tokens/s x 0.8
    latency = so["triggers"][1]["metadata"]["query"]
    assert "vllm:e2e_request_latency_seconds_bucket" in latency and "/ 4000" in latency and "/ 2000" in latency
    gpu_q = so["triggers"][3]["metadata"]["query"]
    assert "DCGM_FI_DEV_GPU_UTIL" in gpu_q and "/ 70" in gpu_q and "/ 30" in gpu_q
    behavior = so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0                # fast up
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 900            # 15 min (seeds)
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]
    assert "cooldownPeriod" not in so  # only with scale to zero


def test_scale_to_zero_wakes_on_gateway_demand():
    m = render_manifests("llama-8b", args(autoscaling=AutoscalingSettings(min_replicas=0, max_replicas=2),
                                          warm_pool_placeholders=0))
    so = m["ScaledObject"]["spec"]
    assert so["minReplicaCount"] == 0
    wake = so["triggers"][-1]
    assert wake["name"] == "gateway-demand"
    assert wake["metadata"]["query"] == 'sum(rate(gateway_upstream_requests_total{upstream="vllm-llama-8b"}[2m]))'
    assert wake["metadata"]["activationThreshold"] == "0"
    assert so["cooldownPeriod"] == 600 and so["initialCooldownPeriod"] == 1200
    assert m["Deployment"]["spec"]["replicas"] == 0
    assert "PlaceholderDeployment" not in m


def test_warm_pool_placeholders_hold_one_replica_each_below_serving_priority(gpu):
    pc, ph = gpu["PriorityClass"], gpu["PlaceholderDeployment"]
    assert pc["value"] < 0 and pc["preemptionPolicy"] == "Never" and pc["globalDefault"] is False
    spec = ph["spec"]["template"]["spec"]
    assert ph["spec"]["replicas"] == 1
    assert spec["priorityClassName"] == pc["metadata"]["name"]
    serving = gpu["Deployment"]["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == serving["nodeSelector"] and spec["tolerations"] == serving["tolerations"]
    assert spec["containers"][0]["resources"]["requests"] == serving["containers"][0]["resources"]["requests"]
    assert spec["containers"][0]["image"] == f"registry.k8s.io/pause:{versions.PAUSE_IMAGE.version}"
    assert "priorityClassName" not in serving  # serving pods keep the default priority (0) and preempt these


def test_pdb_service_netpol_servicemonitor(gpu):
    assert gpu["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert gpu["Service"]["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    allowed = gpu["NetworkPolicy"]["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]
    assert allowed["values"] == ["genai-gateway", "genai-serving", "monitoring"]
    assert gpu["ServiceMonitor"]["spec"]["endpoints"][0]["path"] == "/metrics"


@pytest.mark.parametrize("sharing,extra,expected", [
    ("dedicated", {}, {"nvidia.com/gpu": "1"}),
    ("time-sliced", {}, {"nvidia.com/gpu": "1"}),
    ("mig", {"mig_profile": "3g.40gb", "mig_strategy": "mixed"}, {"nvidia.com/mig-3g.40gb": "1"}),
    ("mig", {"mig_profile": "3g.40gb", "mig_strategy": "single"}, {"nvidia.com/gpu": "1"}),
])
def test_gpu_sharing_resources(sharing, extra, expected):
    it = "p4de.24xlarge" if sharing == "mig" else "g5.2xlarge"
    kw = {"mig_config": "all-balanced"} if sharing == "mig" else {"time_slicing_replicas": 2} \
        if sharing == "time-sliced" else {}
    m = model(model_id="Qwen/Qwen2.5-0.5B-Instruct", gpu_memory_utilization=0.45)
    a = args(placement=placement("g", it, **kw), gpu_sharing=sharing, model=m, warm_pool_placeholders=0, **extra)
    assert accelerator_request(a) == expected


def test_neuron_requests_whole_devices_and_drains_in_the_entrypoint():
    a = args(placement=placement("inf2", "inf2.48xlarge"), model=model(tensor_parallel_size=4),
             engine_version=versions.VLLM_NEURON_ENGINE_VERSION, warm_pool_placeholders=0,
             neuron_scheduler="my-scheduler")
    m = render_manifests("llama-8b-inf2", a)
    assert m["Deployment"]["spec"]["template"]["spec"]["schedulerName"] == "my-scheduler"
    c = m["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["aws.amazon.com/neuron"] == "2"  # 4 NeuronCores = 2 Inferentia2 chips
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["GENAI_SCALE_DRAIN_IN_ENTRYPOINT"] == "1"
    assert c["securityContext"]["readOnlyRootFilesystem"] is False
    assert [t["name"] for t in m["ScaledObject"]["spec"]["triggers"]] == ["queue-depth", "p95-e2e-latency",
                                                                           "tokens-per-second"]  # no DCGM on Neuron


def test_validation_lists_every_problem():
    with pytest.raises(ArgsError) as exc:
        args(autoscaling=AutoscalingSettings(min_replicas=3, max_replicas=2, gpu_utilization_down_percent=80),
             prometheus_url=None, oidc_provider_arn=None, gpu_sharing="mig")
    text = str(exc.value)
    for expected in ("autoscaling.min_replicas = 3: <= autoscaling.max_replicas (2)",
                     "autoscaling.gpu_utilization_down_percent = 80.0: < gpu_utilization_up_percent (70)",
                     "prometheus_url = None: required with keda",
                     "oidc_provider_arn = None: required with model.weights_uri",
                     "mig_profile = None: required with gpu_sharing mig",
                     "mig_strategy = 'none': single or mixed with gpu_sharing mig",
                     "gpu_sharing = 'mig': a MIG-capable GPU (A100, H100, H200), not A10G",
                     "gpu_sharing = 'mig': node group 'a10g' to have migConfig set"):
        assert expected in text


def test_neuron_tensor_parallel_must_fill_whole_devices():
    with pytest.raises(ArgsError, match=r"model.tensor_parallel_size = 3: a multiple of the 2 NeuronCores per "
                                        r"Inferentia2 device"):
        args(placement=placement("inf2", "inf2.48xlarge"), model=model(model_id="Qwen/Qwen2.5-0.5B-Instruct",
                                                                         tensor_parallel_size=3))


def test_time_slicing_needs_the_node_groups_time_slicing():
    with pytest.raises(ArgsError, match="node group 'a10g' to have GPU time-slicing"):
        args(gpu_sharing="time-sliced")


def test_model_that_does_not_fit_is_a_construction_error():
    with pytest.raises(ArgsError) as exc:
        args(model=model(model_id="meta-llama/Llama-3.1-70B-Instruct"))
    assert "model = 'meta-llama/Llama-3.1-70B-Instruct': meta-llama/Llama-3.1-70B-Instruct does not fit" in str(exc.value)
    assert "capacity 20.1 GiB (1 x A10G GPU of the 1 on one g5.2xlarge" in str(exc.value)


def test_banded_query_rejects_inverted_thresholds():
    with pytest.raises(ValueError, match=r"need 0 < lower \(80\) < upper \(70\)"):
        banded_replicas_query("x", upper=70, lower=80, replicas="r")


def test_component_registers_every_child_under_mocks():
    def program():
        svc = VllmService("llama-8b", args())
        assert svc.service_url == "http://llama-8b.genai-serving.svc.cluster.local:8000"
        assert svc.served_model_name == "llama-8b"
    result = run_program(program)
    parent = result.one("genai-scale:index:VllmService", "llama-8b")
    names = sorted(r.name for r in result.children_of(parent.urn))
    assert names == sorted([
        "llama-8b-weights-role", "llama-8b-weights-policy", "llama-8b-weights-attach", "llama-8b-sa",
        "llama-8b-api-key", "llama-8b-api-key", "llama-8b-deployment", "llama-8b-service", "llama-8b-replicas",
        "llama-8b-pdb",
        "llama-8b-netpol", "llama-8b-servicemonitor", "llama-8b-scaledobject", "llama-8b-warm-pool",
        "llama-8b-warm"])
    dep = result.one("kubernetes:apps/v1:Deployment", "llama-8b-deployment")
    assert dep.ignore_changes == ["spec.replicas"]  # KEDA owns the replica count
    assert dep.get("spec.template.spec.containers.0.image") == WIRING["image"]
    secret = result.one("kubernetes:core/v1:Secret", "llama-8b-api-key")
    assert json.dumps(secret.inputs).count("[secret]") or "stringData" in secret.inputs
    so = result.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "llama-8b-scaledobject")
    assert dep.urn in so.dependencies
    policy = result.one("aws:iam/policy:Policy", "llama-8b-weights-policy")
    doc = json.loads(policy.inputs["policy"])
    assert doc["Statement"][0] == {"Sid": "ReadWeights", "Effect": "Allow", "Action": ["s3:GetObject"],
                                   "Resource": ["arn:aws:s3:::genai-models/llama-8b/*"]}
    assert doc["Statement"][1]["Condition"] == {"StringLike": {"s3:prefix": ["llama-8b/*", "llama-8b"]}}
    sa = result.one("kubernetes:core/v1:ServiceAccount", "llama-8b-sa")
    assert "eks.amazonaws.com/role-arn" in sa.get("metadata.annotations")


def test_a_headless_service_lists_the_ready_replicas_one_by_one():
    m = render_manifests("llama-8b", args())
    svc, headless = m["Service"], m["ReplicasService"]
    assert headless["metadata"]["name"] == "llama-8b-replicas"
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is False
    assert headless["spec"]["selector"] == svc["spec"]["selector"], "the same pods as the ClusterIP Service"
    monitor = m["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert all(svc["metadata"]["labels"].get(k) == v for k, v in monitor.items())
    assert not all(headless["metadata"]["labels"].get(k) == v for k, v in monitor.items()), \
        "the ServiceMonitor must not select it too (every pod would be scraped twice)"
    assert "ReplicasService" not in render_manifests("llama-8b", args(replicas_service=False))
    result = run_program(lambda: VllmService("llama-8b", args()))
    assert result.one("kubernetes:core/v1:Service", "llama-8b-replicas").get("spec.clusterIP") == "None"


def test_api_key_can_be_switched_off():
    m = render_manifests("llama-8b", args(api_key=False))
    env = {e["name"] for e in m["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "VLLM_API_KEY" not in env
    result = run_program(lambda: VllmService("llama-8b", args(api_key=False)))
    assert [r for r in result.by_type("kubernetes:core/v1:Secret")] == []


def test_api_key_secret_is_a_pulumi_secret():
    result = run_program(lambda: VllmService("llama-8b", args()))
    secret = result.one("kubernetes:core/v1:Secret", "llama-8b-api-key")
    from infra.plan import jsonable
    assert jsonable(secret.inputs)["stringData"] == "[secret]"


# --- Neuron scheduler extension: AWS's Neuron docs call it required for pods that request more than one device ---

def _inf2(tp: int, instance_type: str = "inf2.48xlarge", **kw) -> VllmServiceArgs:
    return args(placement=placement("inf2", instance_type), model=model(tensor_parallel_size=tp),
                engine_version=versions.VLLM_NEURON_ENGINE_VERSION, **kw)


def test_a_replica_on_part_of_a_nodes_devices_needs_the_neuron_scheduler():
    with pytest.raises(ArgsError) as exc:
        _inf2(4)  # 2 of the 12 Inferentia2 devices of an inf2.48xlarge
    assert ("neuron_scheduler = None: required: one replica takes 2 of the 12 Neuron devices of one inf2.48xlarge "
            "node, which must be directly connected; turn on the Neuron scheduler extension (NeuronDevicePlugin "
            "scheduler_extension) and pass its scheduler_name") in str(exc.value)
    for ok in (_inf2(2), _inf2(2, "inf2.8xlarge")):  # one device (on inf2.8xlarge: every device of the node)
        spec = render_manifests("m", ok)["Deployment"]["spec"]["template"]["spec"]
        assert "schedulerName" not in spec


def test_the_neuron_scheduler_places_serving_pods_and_placeholders_alike():
    m = render_manifests("m", _inf2(8, neuron_scheduler="my-scheduler", warm_pool_placeholders=1))
    assert m["Deployment"]["spec"]["template"]["spec"]["schedulerName"] == "my-scheduler"
    assert m["PlaceholderDeployment"]["spec"]["template"]["spec"]["schedulerName"] == "my-scheduler"
    assert m["Deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "aws.amazon.com/neuron"] == "4"
    # given while every pod takes one device, the extension still places them (one allocator per node)
    one = render_manifests("m", _inf2(2, neuron_scheduler="my-scheduler"))
    assert one["Deployment"]["spec"]["template"]["spec"]["schedulerName"] == "my-scheduler"
    nvidia = render_manifests("llama-8b", args(neuron_scheduler="my-scheduler"))
    assert "schedulerName" not in nvidia["Deployment"]["spec"]["template"]["spec"], "NVIDIA pods keep the default"


# --- Hugging Face token ---

def test_hugging_face_token_reaches_vllm_only_through_a_secret():
    import pulumi
    m = render_manifests("llama-8b", args(hf_token="hf_literal"))
    env = m["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    hf = [e for e in env if e["name"] == "HF_TOKEN"]
    assert hf == [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "llama-8b-hf-token", "key": "token"}}}]
    assert "hf_literal" not in json.dumps(m)
    result = run_program(lambda: VllmService("llama-8b", args(hf_token=pulumi.Output.secret("hf_literal"))))
    secret = result.one("kubernetes:core/v1:Secret", "llama-8b-hf-token")
    from infra.plan import jsonable
    assert jsonable(secret.inputs)["stringData"] == "[secret]"
    assert secret.inputs["metadata"]["namespace"] == "genai-serving"
    dep = result.one("kubernetes:apps/v1:Deployment", "llama-8b-deployment")
    assert secret.urn in dep.dependencies
    # a plain string given by a caller is stored as a secret all the same
    plain = run_program(lambda: VllmService("llama-8b", args(hf_token="hf_literal")))
    assert jsonable(plain.one("kubernetes:core/v1:Secret", "llama-8b-hf-token").inputs)["stringData"] == "[secret]"


def test_no_hugging_face_token_no_secret_and_no_env():
    m = render_manifests("llama-8b", args())
    env = {e["name"] for e in m["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "HF_TOKEN" not in env
    result = run_program(lambda: VllmService("llama-8b", args()))
    assert [r.name for r in result.by_type("kubernetes:core/v1:Secret")] == ["llama-8b-api-key"]
