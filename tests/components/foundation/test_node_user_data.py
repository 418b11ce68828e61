"""Node user data: the AL2023 nodeadm NodeConfig (instance-store RAID0, SOCI fast image pull, the EFA memlock limit)
and the Bottlerocket settings (SOCI parallel pull, ephemeral storage on NVMe, time-slicing), in launch templates and
Karpenter EC2NodeClasses."""

import base64
import email
import json
import tomllib

import pytest
import yaml

from components.catalog.accelerators import lookup
from components.errors import ArgsError
from components.foundation import _gpu
from components.foundation.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.foundation.node_pools import NodePoolSpec, family_of, node_class_user_data, render_node_class
from infra.plan import run_program
from tests.infra.test_upstream_truth import cr_errors

WIRING = dict(cluster_name="prod-eks", node_role_arn="arn:aws:iam::123456789012:role/node",
              subnet_ids=["subnet-a", "subnet-b"])
OPERANDS = "nvidia.com/gpu.deploy.operands"


def mime_node_config(text: str) -> dict:
    """The nodeadm NodeConfig part of a MIME multi-part document."""
    msg = email.message_from_string(text)
    assert msg.is_multipart()
    parts = [p for p in msg.get_payload() if p.get_content_type() == "application/node.eks.aws"]
    assert len(parts) == 1
    return yaml.safe_load(parts[0].get_payload())


def user_data(instance_type: str, node_os: str = "al2023", **kw) -> str | None:
    """:func:`_gpu.node_user_data` with a node group's defaults (instance store striped, parallel pull on)."""
    kw.setdefault("local_storage", True)
    kw.setdefault("fast_image_pull", GpuNodeGroupArgs.model_fields["fast_image_pull"].default)
    return _gpu.node_user_data(lookup(instance_type), node_os, **kw)


def node_config(encoded: str) -> dict:
    return mime_node_config(base64.b64decode(encoded).decode())


def settings(encoded: str) -> dict:
    return tomllib.loads(base64.b64decode(encoded).decode())["settings"]


# --- AL2023: nodeadm NodeConfig -------------------------------------------------------------------------------------

@pytest.mark.parametrize("instance_type", ["g5.12xlarge", "g6e.4xlarge", "p5.48xlarge"])
def test_instance_store_types_stripe_nvme_and_pull_images_in_parallel(instance_type):
    cfg = node_config(user_data(instance_type))
    assert cfg["apiVersion"] == "node.eks.aws/v1alpha1" and cfg["kind"] == "NodeConfig"
    assert cfg["spec"] == {"instance": {"localStorage": {"strategy": "RAID0"}},
                           "featureGates": {"FastImagePull": True}}


def test_fast_image_pull_off_leaves_only_the_raid0_and_ebs_only_types_only_the_gate():
    assert node_config(user_data("g5.12xlarge", "al2023", fast_image_pull=False))["spec"] == {
        "instance": {"localStorage": {"strategy": "RAID0"}}}
    assert node_config(user_data("inf2.48xlarge", "al2023"))["spec"] == {
        "featureGates": {"FastImagePull": True}}


def test_no_user_data_when_there_is_nothing_to_say():
    assert user_data("inf2.48xlarge", "al2023", fast_image_pull=False) is None
    assert user_data("p5.48xlarge", "al2023", local_storage=False, fast_image_pull=False) is None
    assert user_data("inf2.48xlarge", "bottlerocket", fast_image_pull=False) is None


def test_efa_nodes_give_containers_a_memlock_limit_that_survives_nodeadms_float_merge():
    cfg = node_config(user_data("p5.48xlarge", "al2023", efa=True))
    rlimits = cfg["spec"]["containerd"]["baseRuntimeSpec"]["process"]["rlimits"]
    # the list replaces nodeadm's default, so its NOFILE entry is repeated unchanged
    assert rlimits == [{"type": "RLIMIT_NOFILE", "soft": 65536, "hard": 1048576},
                       {"type": "RLIMIT_MEMLOCK", "soft": 2 ** 53, "hard": 2 ** 53}]
    # nodeadm merges baseRuntimeSpec through JSON into float64: the value must come back as the same integer
    assert json.loads(json.dumps(float(rlimits[1]["hard"]))) == rlimits[1]["hard"]
    assert "containerd" not in node_config(user_data("p5.48xlarge", "al2023"))["spec"]


def test_user_data_is_deterministic():
    for os_ in ("al2023", "bottlerocket"):
        assert user_data("g5.2xlarge", os_) == user_data("g5.2xlarge", os_)


# --- Bottlerocket: TOML settings ------------------------------------------------------------------------------------

def test_bottlerocket_pulls_with_soci_in_parallel_and_stripes_nvme():
    s = settings(user_data("p5.48xlarge", "bottlerocket"))
    assert s["container-runtime"] == {"snapshotter": "soci"}
    assert s["container-runtime-plugins"]["soci-snapshotter"] == {
        "pull-mode": "parallel-pull-unpack",
        "parallel-pull-unpack": {"max-concurrent-downloads-per-image": 20, "concurrent-download-chunk-size": "16mb",
                                 "max-concurrent-unpacks-per-image": 12, "discard-unpacked-layers": True}}
    boot = s["bootstrap-commands"]["k8s-ephemeral-storage"]
    assert boot["commands"] == [["apiclient", "ephemeral-storage", "init"],
                                ["apiclient", "ephemeral-storage", "bind", "--dirs", "/var/lib/containerd",
                                 "/var/lib/kubelet", "/var/log/pods", "/var/lib/soci-snapshotter"]]
    assert (boot["essential"], boot["mode"]) == (True, "always")
    assert "kubelet-device-plugins" not in s


def test_bottlerocket_time_slices_with_its_own_device_plugin_and_ebs_types_skip_the_raid():
    s = settings(user_data("g6e.4xlarge", "bottlerocket", time_slicing_replicas=3))
    assert s["kubelet-device-plugins"]["nvidia"] == {
        "device-sharing-strategy": "time-slicing",
        "time-slicing": {"replicas": 3, "rename-by-default": False, "fail-requests-greater-than-one": False}}
    assert "bootstrap-commands" not in settings(user_data("inf2.48xlarge", "bottlerocket"))
    no_soci = settings(user_data("g5.12xlarge", "bottlerocket", fast_image_pull=False))
    assert "container-runtime" not in no_soci
    assert "/var/lib/soci-snapshotter" not in no_soci["bootstrap-commands"]["k8s-ephemeral-storage"]["commands"][1]


def test_bottlerocket_toml_avoids_the_forms_eks_cannot_merge():
    """EKS's launch-template docs list TOML it cannot merge: quoted keys in bracketed headers, mixed-type arrays."""
    text = base64.b64decode(user_data("g6e.4xlarge", "bottlerocket",
                                                 time_slicing_replicas=4)).decode()
    assert all('"' not in line for line in text.splitlines() if line.startswith("["))

    def arrays(v):
        if isinstance(v, dict):
            for x in v.values():
                yield from arrays(x)
        elif isinstance(v, list):
            yield v
            for x in v:
                yield from arrays(x)
    for arr in arrays(tomllib.loads(text)):
        assert len({type(x) for x in arr}) <= 1


# --- GpuNodeGroup -----------------------------------------------------------------------------------------------------

def _lt(**kw):
    r = run_program(lambda: GpuNodeGroup("gpu", GpuNodeGroupArgs(**WIRING, **kw)))
    return r, r.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-lt")


def test_launch_template_carries_the_node_config():
    _, lt = _lt(instance_type="g5.12xlarge")
    spec = node_config(lt.inputs["userData"])["spec"]
    assert spec["instance"]["localStorage"]["strategy"] == "RAID0" and spec["featureGates"]["FastImagePull"]
    assert lt.inputs["blockDeviceMappings"][0]["ebs"]["throughput"] == 250  # images unpack on NVMe


def test_images_on_ebs_get_the_throughput_parallel_pull_needs():
    _, lt = _lt(instance_type="inf2.48xlarge")
    assert lt.inputs["blockDeviceMappings"][0]["ebs"]["throughput"] == 600
    _, off = _lt(instance_type="inf2.48xlarge", fast_image_pull=False)
    assert "userData" not in off.inputs and off.inputs["blockDeviceMappings"][0]["ebs"]["throughput"] == 250
    _, no_nvme = _lt(instance_type="g5.12xlarge", local_nvme=False)
    assert no_nvme.inputs["blockDeviceMappings"][0]["ebs"]["throughput"] == 600


def test_bottlerocket_group_is_labelled_out_of_the_gpu_operator():
    r, lt = _lt(instance_type="g6e.4xlarge", node_os="bottlerocket", time_slicing_replicas=2)
    ng = r.one("aws:eks/nodeGroup:NodeGroup", "gpu")
    assert ng.inputs["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA"
    assert ng.inputs["labels"][OPERANDS] == "false"
    assert "nvidia.com/device-plugin.config" not in ng.inputs["labels"]  # the OS time-slices, not the operator
    assert settings(lt.inputs["userData"])["kubelet-device-plugins"]["nvidia"]["time-slicing"]["replicas"] == 2
    # the same group on AL2023 keeps the operator and its per-node time-slicing config
    r2, _ = _lt(instance_type="g6e.4xlarge", time_slicing_replicas=2)
    labels = r2.one("aws:eks/nodeGroup:NodeGroup", "gpu").inputs["labels"]
    assert OPERANDS not in labels and labels["nvidia.com/device-plugin.config"] == "time-slicing-2"


def test_neuron_on_bottlerocket_is_not_labelled_for_the_gpu_operator():
    r, _ = _lt(instance_type="inf2.48xlarge", node_os="bottlerocket")
    assert OPERANDS not in r.one("aws:eks/nodeGroup:NodeGroup", "gpu").inputs["labels"]


def test_mig_on_bottlerocket_is_refused():
    with pytest.raises(ArgsError) as err:
        GpuNodeGroupArgs(**WIRING, instance_type="p5.48xlarge", node_os="bottlerocket", mig_config="all-1g.10gb")
    assert [(p.path, p.value, p.expected) for p in err.value.problems] == [
        ("mig_config", "all-1g.10gb", "MIG with the GPU operator's MIG manager needs node_os al2023 (Bottlerocket "
         "partitions GPUs through its own settings, which genai-scale does not render)")]


# --- Karpenter EC2NodeClass -------------------------------------------------------------------------------------------

def test_al2023_node_classes_carry_the_gate_and_efa_classes_the_memlock_limit():
    plain = node_class_user_data([NodePoolSpec(instance_types=["g6e.xlarge"])])
    assert mime_node_config(plain)["spec"] == {"featureGates": {"FastImagePull": True}}  # RAID0: instanceStorePolicy
    efa = mime_node_config(node_class_user_data([NodePoolSpec(instance_types=["p5.48xlarge"], efa=True)]))
    assert efa["spec"]["containerd"]["baseRuntimeSpec"]["process"]["rlimits"][1]["type"] == "RLIMIT_MEMLOCK"
    assert node_class_user_data([NodePoolSpec(instance_types=["inf2.xlarge"], fast_image_pull=False)]) is None
    mixed = [NodePoolSpec(instance_types=["g6e.xlarge"]), NodePoolSpec(instance_types=["g5.xlarge"],
                                                                        fast_image_pull=False)]
    assert node_class_user_data(mixed) is None  # a shared class pulls in parallel only when every pool asks


def test_bottlerocket_pools_get_their_own_class_with_soci_settings_valid_for_the_crd():
    pool = NodePoolSpec(instance_types=["p5.48xlarge"], efa=True, node_os="bottlerocket")
    assert family_of(pool) == "nvidia-efa-bottlerocket"
    ud = node_class_user_data([pool])
    assert tomllib.loads(ud)["settings"]["container-runtime"] == {"snapshotter": "soci"}
    body = render_node_class("pools-nvidia-efa-bottlerocket", role="r", cluster_name="c",
                             ami_alias="bottlerocket@v1.65.0", user_data=ud, instance_store_raid0=True)
    assert body["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.65.0"}]
    # Bottlerocket keeps container data on /dev/xvdb: it gets the size; the OS volume stays 4 GiB, both encrypted
    vols = {m["deviceName"]: m["ebs"] for m in body["spec"]["blockDeviceMappings"]}
    assert (vols["/dev/xvda"]["volumeSize"], vols["/dev/xvdb"]["volumeSize"]) == ("4Gi", "200Gi")
    assert vols["/dev/xvda"]["encrypted"] is True and vols["/dev/xvdb"]["encrypted"] is True
    assert not any(m.get("rootVolume") for m in body["spec"]["blockDeviceMappings"])
    assert cr_errors("pools-nvidia-efa-bottlerocket", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", body) == []


def test_node_class_ebs_throughput_validates_against_the_crd():
    body = render_node_class("pools-neuron", role="r", cluster_name="c", ebs_throughput_mibps=600,
                             user_data=node_class_user_data([NodePoolSpec(instance_types=["inf2.xlarge"])]))
    ebs = body["spec"]["blockDeviceMappings"][0]["ebs"]
    assert (ebs["throughput"], ebs["iops"]) == (600, 3000)
    assert cr_errors("pools-neuron", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", body) == []


def test_bottlerocket_pool_rules():
    pool = NodePoolSpec(instance_types=["g6e.xlarge"], node_os="bottlerocket", time_slicing_replicas=2)
    assert [(p.path, p.expected) for p in pool.problems("pools.l40s")] == [
        ("pools.l40s.time_slicing_replicas", "none on a bottlerocket pool: Bottlerocket time-slices through node "
         "settings, which Karpenter pools share per EC2NodeClass (use node_os al2023, whose GPU operator selects the "
         "share count per node)")]
    mig = NodePoolSpec(instance_types=["p5.48xlarge"], node_os="bottlerocket", mig_config="all-1g.10gb")
    assert [p.path for p in mig.problems("pools.h100")] == ["pools.h100.mig_config"]


def test_a_pinned_node_image_older_than_soci_parallel_pull_is_refused():
    from components.foundation.node_pools import KarpenterNodePoolsArgs, alias_supports_fast_pull

    assert [alias_supports_fast_pull(a) for a in ("al2023@latest", "al2023@v20250821", "al2023@v20250101",
                                                  "bottlerocket@v1.43.2", "bottlerocket@v1.65.0")] == [
        True, True, False, False, True]
    pools = {"g6e": NodePoolSpec(instance_types=["g6e.xlarge"]),
             "br": NodePoolSpec(instance_types=["g5.xlarge"], node_os="bottlerocket")}
    with pytest.raises(ArgsError) as err:
        KarpenterNodePoolsArgs(pools=pools, cluster_name="c", node_role_name="r", ami_alias="al2023@v20250101",
                               bottlerocket_ami_alias="bottlerocket@v1.40.0")
    assert [(p.path, p.value, p.expected) for p in err.value.problems] == [
        ("ami_alias", "al2023@v20250101", "v20250821 or later (or latest): pools g6e pull with SOCI "
         "(fast_image_pull), which older node images do not know; or turn fast_image_pull off on them"),
        ("bottlerocket_ami_alias", "bottlerocket@v1.40.0", "v1.44.0 or later (or latest): pools br pull with SOCI "
         "(fast_image_pull), which older node images do not know; or turn fast_image_pull off on them")]
    off = {n: p.model_copy(update={"fast_image_pull": False}) for n, p in pools.items()}
    KarpenterNodePoolsArgs(pools=off, cluster_name="c", node_role_name="r", ami_alias="al2023@v20250101",
                           bottlerocket_ami_alias="bottlerocket@v1.40.0")


SNAPSHOT_CASES = {
    "g5-al2023": ("g5.12xlarge", "al2023", {}),
    "p5-al2023-efa": ("p5.48xlarge", "al2023", {"efa": True}),
    "inf2-al2023": ("inf2.48xlarge", "al2023", {}),
    "g6e-bottlerocket-time-sliced": ("g6e.4xlarge", "bottlerocket", {"time_slicing_replicas": 3}),
    "p5-bottlerocket-efa": ("p5.48xlarge", "bottlerocket", {"efa": True}),
}


@pytest.mark.parametrize("case", sorted(SNAPSHOT_CASES))
def test_rendered_launch_template_user_data(case, snapshot):
    """The whole decoded user data, reviewed once and pinned; the tests above name what each part must say."""
    instance_type, node_os, kw = SNAPSHOT_CASES[case]
    assert base64.b64decode(user_data(instance_type, node_os, **kw)).decode() == snapshot


@pytest.mark.parametrize("pool", ["nvidia-efa-al2023", "neuron-al2023", "nvidia-bottlerocket"])
def test_rendered_node_class_user_data(pool, snapshot):
    specs = {"nvidia-efa-al2023": NodePoolSpec(instance_types=["p5.48xlarge"], efa=True),
             "neuron-al2023": NodePoolSpec(instance_types=["inf2.xlarge"]),
             "nvidia-bottlerocket": NodePoolSpec(instance_types=["g6e.xlarge"], node_os="bottlerocket")}
    assert node_class_user_data([specs[pool]]) == snapshot


def test_a_bottlerocket_alias_in_ami_alias_points_to_the_right_fields():
    from components.foundation.node_pools import KarpenterNodePoolsArgs

    with pytest.raises(ArgsError) as err:
        KarpenterNodePoolsArgs(pools={"g6e": NodePoolSpec(instance_types=["g6e.xlarge"])}, cluster_name="c",
                               node_role_name="r", ami_alias="bottlerocket@v1.65.0")
    assert [(p.path, p.expected) for p in err.value.problems] == [
        ("ami_alias", "an al2023@<version> alias: Bottlerocket pools take node_os bottlerocket on their NodePoolSpec "
         "and bottlerocket_ami_alias for the version")]
