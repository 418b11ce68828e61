"""KarpenterNodePools: Karpenter ``NodePool`` and ``EC2NodeClass`` objects for accelerator nodes.

Creates (all ``kubernetes:apiextensions.k8s.io`` custom resources, after the Karpenter CRDs)
  - one ``EC2NodeClass`` ``karpenter.k8s.aws/v1`` per accelerator family (``nvidia``, ``neuron``) used by the pools,
    named ``<name>-<family>``: the EKS-optimized AMI by alias (``al2023@latest`` by default; with an alias Karpenter
    picks the NVIDIA or Neuron variant of the AMI for the instance type it launches), the node role, IMDSv2 required
    with hop limit 1, one encrypted gp3 root volume, subnets and security groups by id (or, without ids, by the
    ``karpenter.sh/discovery: <cluster>`` tag), and ``capacityReservationSelectorTerms`` for the reservations of the
    family's pools that allow ``reserved`` capacity;
  - one ``NodePool`` ``karpenter.sh/v1`` per pool: requirements on instance type and ``karpenter.sh/capacity-type``,
    the accelerator's taint plus the pool's own, the node-group labels the serving components select on, limits on the
    accelerator resource and CPU (``max_nodes`` x the instance's devices and vCPUs), and a disruption block suited to
    inference: ``WhenEmpty`` consolidation (a busy GPU node is never consolidated), ``consolidateAfter``, budgets that
    allow one node at a time and freeze drift replacements during a weekday window (and, with ``peak_windows``,
    consolidation of empty or underutilized nodes during traffic peaks), ``expireAfter`` and a
    ``terminationGracePeriod`` that bounds how long a ``karpenter.sh/do-not-disrupt`` pod can hold a node.

:func:`serving_pod_disruption` is what serving pods carry on Karpenter nodes: the ``karpenter.sh/do-not-disrupt``
annotation and a ``terminationGracePeriodSeconds`` no longer than the pool's ``terminationGracePeriod``.

Defaults: on-demand capacity, 2 nodes at most per pool, 200 GiB gp3, WhenEmpty after 10m, budget 1 node, drift frozen
weekdays 08:00-18:00 UTC, expiry after 30 days, termination grace 1h.
Security: IMDSv2 only (hop limit 1: pods use Pod Identity/IRSA, not the node role), encrypted volumes.
Cost drivers: the instances Karpenter launches (limits cap them); nothing here costs by itself.
Quotas: EC2 "Running On-Demand G and VT / P / Inf instances" vCPU quotas (and the Spot ones) bound what the limits
allow; a capacity reservation or capacity block must exist before a ``reserved`` pool can use it.
Sources: Karpenter v1.14.1 CRDs (tests/upstream/karpenter/1.14.1) and docs concepts/nodepools.md, disruption.md,
nodeclasses.md (aws/karpenter-provider-aws tag v1.14.1, checked 2026-12-06).
"""

from __future__ import annotations

import copy

import re
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import tomli_w
from pydantic import BaseModel, ConfigDict, Field

from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.catalog import accelerators as catalog
from components.catalog.accelerators import AcceleratorSpec
from components.catalog.vendors import NodeOs
from components.foundation import _gpu
from components.foundation.gpu_node_group import GpuNodeGroupArgs, NodeTaint, node_taints
from problems import Problem, did_you_mean, missing

NODEPOOL_API = "karpenter.sh/v1"
NODECLASS_API = "karpenter.k8s.aws/v1"
NODECLASS_GROUP = "karpenter.k8s.aws"
DISCOVERY_TAG = "karpenter.sh/discovery"
"""Tag Karpenter's getting-started guide puts on the cluster's subnets and security groups."""
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
"""Pod annotation: Karpenter does not voluntarily disrupt a node running the pod (disruption.md, v1.14)."""

CapacityType = Literal["on-demand", "spot", "reserved"]
_CAPACITY_FROM_GROUP = {"ON_DEMAND": "on-demand", "SPOT": "spot", "CAPACITY_BLOCK": "reserved"}
# Durations as the NodePool CRD accepts them (consolidateAfter/expireAfter: Go durations of s/m/h or Never;
# terminationGracePeriod: no Never; budget duration: h and m only).
_DURATION = r"^([0-9]+(s|m|h))+$"
_DURATION_OR_NEVER = r"^(([0-9]+(s|m|h))+|Never)$"
_BUDGET_DURATION = r"^(([0-9]+(h|m))|([0-9]+h[0-9]+m))$"
_CRON = re.compile(r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|\S+\s\S+\s\S+\s\S+\s\S+)$")


def seconds(duration: str) -> int:
    """``1h30m`` -> 5400 (Go-style s/m/h durations as Karpenter takes them)."""
    unit = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * unit[u] for n, u in re.findall(r"([0-9]+)([smh])", duration))


class NodePoolSpec(BaseModel):
    """One accelerator NodePool: what a managed node group's config says, in Karpenter's terms."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    instance_types: list[str] = Field(min_length=1)
    """EC2 instance types the pool may launch, all of the accelerator catalogue and of one vendor, e.g.
    ``[g6e.xlarge, g6e.2xlarge]``."""
    capacity_types: list[CapacityType] = Field(default_factory=lambda: ["on-demand"], min_length=1)
    """``on-demand``, ``spot``, ``reserved`` (ODCRs and capacity blocks named in ``capacity_reservation_ids``).
    Default: on-demand."""
    capacity_reservation_ids: list[str] = Field(default_factory=list)
    """Capacity reservations (``cr-...``, on-demand reservations or capacity blocks) the pool may use; required with
    ``reserved``. Default: none."""
    max_nodes: int = Field(default=2, ge=1, le=1000)
    """Most nodes the pool may run: its limits are this times the largest instance's devices and vCPUs. Default: 2."""
    efa: bool = False
    """Nodes carry the EFA label; Karpenter attaches EFA interfaces to a node whose pods request
    ``vpc.amazonaws.com/efa``. Default: off."""
    disk_size_gib: int = Field(default=200, ge=20, le=16384)
    """Encrypted gp3 root volume for images and weights, in GiB (the largest of the family's pools wins on the shared
    EC2NodeClass). Default: 200."""
    extra_labels: dict[str, str] = Field(default_factory=dict)
    """More node labels. Default: none."""
    extra_taints: list[NodeTaint] = Field(default_factory=list)
    """More node taints besides the accelerator's own. Default: none."""
    mig_config: str | None = None
    """MIG profile set (label ``nvidia.com/mig.config``). Default: MIG off."""
    time_slicing_replicas: int | None = Field(default=None, ge=2, le=64)
    """GPU time-slicing replicas (selects the device-plugin config by label). Default: none."""
    node_os: NodeOs = GpuNodeGroupArgs.model_fields["node_os"].default
    """Node OS: ``al2023`` or ``bottlerocket`` (its own EC2NodeClass per accelerator family: alias and settings
    differ). Default: a node group's (al2023)."""
    fast_image_pull: bool = GpuNodeGroupArgs.model_fields["fast_image_pull"].default
    """SOCI parallel pull of images (:attr:`components.foundation.gpu_node_group.GpuNodeGroupArgs.fast_image_pull`);
    a family's EC2NodeClass turns it on when all its pools ask for it. Default: a node group's (on)."""
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"] = "WhenEmpty"
    """When Karpenter may consolidate nodes. Default: WhenEmpty (only nodes without serving pods: a model server is
    never moved to save money)."""
    consolidate_after: str = Field(default="10m", pattern=_DURATION_OR_NEVER)
    """How long a node stays empty before it is removed (``Never`` disables). Default: 10m."""
    budget_nodes: str = Field(default="1", pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$")
    """Nodes (count or percentage) Karpenter may disrupt at once. Default: 1."""
    freeze_schedule: str | None = "0 8 * * mon-fri"
    """Cron (UTC) of a window in which no node is replaced for drift (an AMI release with ``@latest``). None: no
    window. Default: weekdays from 08:00."""
    freeze_duration: str = Field(default="10h", pattern=_BUDGET_DURATION)
    """Length of the freeze window. Default: 10h."""
    peak_windows: list[tuple[str, str]] = Field(default_factory=list)
    """(cron ``schedule`` in UTC, ``duration``) of each traffic peak, e.g. ``("45 5 * * 1-5", "13h15m")``: a budget
    of 0 nodes for reasons ``Empty`` and ``Underutilized`` in each, so consolidation never takes a node the pre-scaled
    replicas hold or are about to land on
    (:func:`components.capacity.schedule.peak_windows` derives them from the services' cron floors). Default: none."""
    expire_after: str = Field(default="720h", pattern=_DURATION_OR_NEVER)
    """Node lifetime before replacement (budgets do not hold expiry back). Default: 720h (30 days)."""
    termination_grace_period: str = Field(default="1h", pattern=_DURATION)
    """Longest a draining node waits for its pods (``do-not-disrupt`` ones included). Default: 1h."""

    @classmethod
    def from_node_group(cls, args: GpuNodeGroupArgs, **overrides: Any) -> NodePoolSpec:
        """The pool a managed node group's args describe: one instance type, its capacity type (CAPACITY_BLOCK ->
        ``reserved`` with its reservation), ``max_size`` nodes, labels, taints, EFA, disk, MIG and time-slicing."""
        data: dict[str, Any] = {
            "instance_types": [args.instance_type],
            "capacity_types": [_CAPACITY_FROM_GROUP[args.capacity_type]],
            "capacity_reservation_ids": [args.capacity_reservation_id] if args.capacity_reservation_id else [],
            "max_nodes": args.max_size, "efa": args.efa, "disk_size_gib": args.disk_size_gib,
            "extra_labels": dict(args.extra_labels), "extra_taints": list(args.extra_taints),
            "mig_config": args.mig_config, "time_slicing_replicas": args.time_slicing_replicas,
            "node_os": args.node_os, "fast_image_pull": args.fast_image_pull}
        return cls(**{**data, **overrides})

    def specs(self) -> list[AcceleratorSpec | None]:
        return [catalog.lookup(t) for t in self.instance_types]

    def accelerator(self) -> AcceleratorSpec:
        """The first instance type's facts (labels and taints are the vendor's, the same for every type)."""
        return self.specs()[0]

    def problems(self, path: str = "") -> list[Problem]:
        p = f"{path}." if path else ""
        out: list[Problem] = []
        specs = self.specs()
        for i, (t, s) in enumerate(zip(self.instance_types, specs)):
            if s is None:
                out.append(Problem(f"{p}instance_types[{i}]", t, "an instance type of the accelerator catalogue"
                                   + did_you_mean(t, catalog.CATALOG)))
        known = [s for s in specs if s is not None]
        vendors = sorted({s.vendor for s in known})
        if len(vendors) > 1:
            out.append(Problem(f"{p}instance_types", list(self.instance_types),
                               f"instance types of one accelerator vendor (got {', '.join(vendors)}): a pool has one "
                               "taint and one EC2NodeClass"))
        if self.efa:
            for i, (t, s) in enumerate(zip(self.instance_types, specs)):
                if s is not None and not s.efa_supported:
                    out.append(Problem(f"{p}instance_types[{i}]", t, "an instance type with EFA (efa is on)",
                                       (f"{p}efa",)))
        if "reserved" in self.capacity_types and not self.capacity_reservation_ids:
            out.append(missing(f"{p}capacity_reservation_ids", "required when capacity_types has reserved (the "
                               "cr-... ids of the on-demand reservations or capacity blocks)", (f"{p}capacity_types",)))
        if self.capacity_reservation_ids and "reserved" not in self.capacity_types:
            out.append(Problem(f"{p}capacity_reservation_ids", list(self.capacity_reservation_ids),
                               f"only used when capacity_types has reserved (got {list(self.capacity_types)})",
                               (f"{p}capacity_types",)))
        for i, cr in enumerate(self.capacity_reservation_ids):
            if not re.match(r"^cr-[0-9a-f]{8,17}$", cr):
                out.append(Problem(f"{p}capacity_reservation_ids[{i}]", cr, "a capacity reservation id cr-<8-17 hex>"))
        if len(set(self.capacity_types)) != len(self.capacity_types):
            out.append(Problem(f"{p}capacity_types", list(self.capacity_types), "each capacity type once"))
        if self.freeze_schedule is not None and not _CRON.match(self.freeze_schedule):
            out.append(Problem(f"{p}freeze_schedule", self.freeze_schedule,
                               "a cron schedule of five fields (e.g. '0 8 * * mon-fri') or @daily/@weekly/..."))
        for i, (schedule, duration) in enumerate(self.peak_windows):
            if not _CRON.match(schedule):
                out.append(Problem(f"{p}peak_windows[{i}][0]", schedule,
                                   "a cron schedule of five fields (e.g. '45 5 * * 1-5') or @daily/@weekly/..."))
            if not re.match(_BUDGET_DURATION, duration):
                out.append(Problem(f"{p}peak_windows[{i}][1]", duration, "a duration in h and m, e.g. 13h or 13h15m"))
        if self.consolidation_policy != "WhenEmpty" and self.consolidate_after == "Never":
            out.append(Problem(f"{p}consolidate_after", "Never", f"a duration: consolidation_policy "
                               f"{self.consolidation_policy} never runs with Never", (f"{p}consolidation_policy",)))
        if self.node_os == "bottlerocket" and self.time_slicing_replicas:
            out.append(Problem(f"{p}time_slicing_replicas", self.time_slicing_replicas,
                               "none on a bottlerocket pool: Bottlerocket time-slices through node settings, which "
                               "Karpenter pools share per EC2NodeClass (use node_os al2023, whose GPU operator "
                               "selects the share count per node)", (f"{p}node_os",)))
        if self.node_os == "bottlerocket" and self.mig_config:
            out.append(Problem(f"{p}mig_config", self.mig_config, "none on a bottlerocket pool: MIG with the GPU "
                               "operator's MIG manager needs node_os al2023", (f"{p}node_os",)))
        keys = {t["key"] for s in known[:1] for t in _gpu.taints(s)}
        for i, t in enumerate(self.extra_taints):
            if t.key in keys:
                out.append(Problem(f"{p}extra_taints[{i}].key", t.key, "another key: the pool already carries the "
                                   "accelerator's taint of that key"))
        return out


def _requirements(spec: NodePoolSpec) -> list[dict[str, Any]]:
    return [
        {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": list(spec.instance_types)},
        {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": list(spec.capacity_types)},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]


def pool_labels(name: str, spec: NodePoolSpec) -> dict[str, str]:
    """Node labels of a pool: the same ones a managed node group of that name carries."""
    return _gpu.labels(name, spec.accelerator(), efa=spec.efa, mig_config=spec.mig_config, extra=spec.extra_labels,
                       time_slicing_replicas=spec.time_slicing_replicas, node_os=spec.node_os)


def pool_taints(spec: NodePoolSpec) -> list[dict[str, str]]:
    """The accelerator's taint plus the pool's own (``key``, ``value``, ``effect``)."""
    return node_taints(spec.accelerator(), spec.extra_taints)


def pool_limits(spec: NodePoolSpec) -> dict[str, str]:
    """``max_nodes`` x the largest instance's accelerator devices and vCPUs."""
    specs = [s for s in spec.specs() if s is not None]
    device = specs[0].vendor_facts.device_resource
    return {device: str(spec.max_nodes * max(s.count for s in specs)),
            "cpu": str(spec.max_nodes * max(s.vcpus for s in specs))}


def budgets(spec: NodePoolSpec) -> list[dict[str, Any]]:
    """Disruption budgets: ``budget_nodes`` at a time, no drift replacement inside the freeze window, and no
    consolidation of empty or underutilized nodes inside a peak window."""
    out: list[dict[str, Any]] = [{"nodes": spec.budget_nodes}]
    if spec.freeze_schedule:
        out.append({"nodes": "0", "reasons": ["Drifted"], "schedule": spec.freeze_schedule,
                    "duration": spec.freeze_duration})
    out += [{"nodes": "0", "reasons": ["Empty", "Underutilized"], "schedule": schedule, "duration": duration}
            for schedule, duration in spec.peak_windows]
    return out


def render_node_pool(name: str, spec: NodePoolSpec, node_class: str) -> dict[str, Any]:
    """The NodePool object (apiVersion, kind, metadata, spec) of pool ``name`` on EC2NodeClass ``node_class``."""
    return {
        "apiVersion": NODEPOOL_API, "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": pool_labels(name, spec)},
                "spec": {
                    "nodeClassRef": {"group": NODECLASS_GROUP, "kind": "EC2NodeClass", "name": node_class},
                    "requirements": _requirements(spec),
                    "taints": pool_taints(spec),
                    "expireAfter": spec.expire_after,
                    "terminationGracePeriod": spec.termination_grace_period,
                },
            },
            "limits": pool_limits(spec),
            "disruption": {"consolidationPolicy": spec.consolidation_policy,
                           "consolidateAfter": spec.consolidate_after, "budgets": budgets(spec)},
        },
    }


ZONE_LABEL = "topology.kubernetes.io/zone"


def in_zone(pool_spec: dict[str, Any], zone: str | None) -> dict[str, Any]:
    """A NodePool spec whose nodes start in ``zone`` only (an EFA pool; unchanged when ``zone`` is None)."""
    if not zone:
        return pool_spec
    out = copy.deepcopy(pool_spec)
    out["template"]["spec"]["requirements"].append({"key": ZONE_LABEL, "operator": "In", "values": [zone]})
    return out


def all_have_instance_store(specs: list[NodePoolSpec]) -> bool:
    """Whether every instance type the pools may launch has NVMe instance store (catalogue), so RAID0 applies."""
    return all(catalog.lookup(t).instance_store_disks > 0 for s in specs for t in s.instance_types)


def render_node_class(name: str, *, role: Any, cluster_name: Any, disk_size_gib: int = 200,
                      ami_alias: str = "al2023@latest", subnet_ids: Any = None, security_group_ids: Any = None,
                      capacity_reservation_ids: list[str] | None = None, kms_key_arn: Any = None,
                      tags: dict[str, str] | None = None, instance_store_raid0: bool = False,
                      placement_group: str | None = None, user_data: str | None = None,
                      ebs_throughput_mibps: int | None = None) -> dict[str, Any]:
    """The EC2NodeClass object of one accelerator family. Subnets and security groups by id when given, else by the
    ``karpenter.sh/discovery: <cluster>`` tag. ``instance_store_raid0``: the nodes' NVMe instance-store disks as one
    RAID0 array for kubelet and containerd (images, emptyDirs such as the model and compile caches), as the managed
    node groups' nodeadm ``localStorage`` does. ``user_data``: the AL2023 NodeConfig (MIME) or Bottlerocket settings
    (TOML) Karpenter merges with its own (:func:`node_class_user_data`). ``ebs_throughput_mibps``: gp3 throughput of
    the data volume (default: the node groups' :data:`components.foundation._gpu.EBS_THROUGHPUT_MIBPS`, with
    :data:`components.foundation._gpu.EBS_IOPS`)."""
    by_tag = [{"tags": {DISCOVERY_TAG: cluster_name}}]
    ebs: dict[str, Any] = {"volumeSize": f"{disk_size_gib}Gi", "volumeType": "gp3", "encrypted": True,
                           "deleteOnTermination": True}
    if kms_key_arn is not None:
        ebs["kmsKeyID"] = kms_key_arn
    ebs.update(iops=_gpu.EBS_IOPS, throughput=ebs_throughput_mibps or _gpu.EBS_THROUGHPUT_MIBPS)
    spec: dict[str, Any] = {
        "role": role,
        "amiSelectorTerms": [{"alias": ami_alias}],
        "subnetSelectorTerms": ([{"id": s} for s in subnet_ids] if subnet_ids is not None else by_tag),
        "securityGroupSelectorTerms": ([{"id": s} for s in security_group_ids]
                                       if security_group_ids is not None else by_tag),
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1,
                            "httpTokens": "required"},
        "blockDeviceMappings": block_device_mappings(ami_alias, ebs),
        "tags": dict(tags or {}),
    }
    if instance_store_raid0:
        spec["instanceStorePolicy"] = "RAID0"
    if user_data:
        spec["userData"] = user_data
    if placement_group:
        spec["placementGroupSelector"] = {"name": placement_group}
    if capacity_reservation_ids:
        spec["capacityReservationSelectorTerms"] = [{"id": cr} for cr in capacity_reservation_ids]
    return {"apiVersion": NODECLASS_API, "kind": "EC2NodeClass", "metadata": {"name": name}, "spec": spec}


def block_device_mappings(ami_alias: str, ebs: dict[str, Any]) -> list[dict[str, Any]]:
    """The node class's volumes: AL2023 keeps images and weights on its root volume (``/dev/xvda``, marked
    ``rootVolume`` so Karpenter counts it as ephemeral storage); Bottlerocket has a 4 GiB OS volume and keeps
    container data on ``/dev/xvdb``, the device Karpenter counts for it (Karpenter v1.14 nodeclasses.md, default
    Bottlerocket mappings): naming only ``/dev/xvda`` would leave a Bottlerocket node the AMI's 20 GiB data volume,
    too small for the vLLM image."""
    if ami_alias.startswith("bottlerocket@"):
        os_volume = {k: v for k, v in ebs.items() if k in ("encrypted", "deleteOnTermination", "kmsKeyID")}
        return [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "4Gi", "volumeType": "gp3", **os_volume}},
                {"deviceName": "/dev/xvdb", "ebs": ebs}]
    return [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": ebs}]


def serving_pod_disruption(termination_grace_seconds: int,
                           pool: NodePoolSpec | None = None) -> dict[str, Any]:
    """What a model-server pod on a Karpenter node carries: ``metadata.annotations`` with
    ``karpenter.sh/do-not-disrupt: "true"`` (Karpenter neither consolidates nor drifts its node away) and
    ``spec.terminationGracePeriodSeconds``. With ``pool``, the grace must fit in the pool's ``terminationGracePeriod``
    (else a drain kills the pod before it has finished its requests): ValueError lists the numbers."""
    if termination_grace_seconds < 1:
        raise ValueError(f"termination_grace_seconds = {termination_grace_seconds}: must be >= 1")
    if pool is not None and termination_grace_seconds > seconds(pool.termination_grace_period):
        raise ValueError(f"termination_grace_seconds = {termination_grace_seconds}: must be <= the NodePool's "
                         f"terminationGracePeriod {pool.termination_grace_period} "
                         f"({seconds(pool.termination_grace_period)} s)")
    return {"annotations": {DO_NOT_DISRUPT: "true"}, "terminationGracePeriodSeconds": termination_grace_seconds}


def family_of(spec: NodePoolSpec) -> str:
    """EC2NodeClass family of a pool: its accelerator vendor (``nvidia``, ``neuron``), with ``-efa`` for EFA pools
    (their class adds the cluster placement group; the others must not be confined to one) and ``-bottlerocket``
    for Bottlerocket pools (another AMI alias and settings)."""
    vendor = spec.accelerator().vendor
    family = f"{vendor}-efa" if spec.efa else vendor
    return f"{family}-bottlerocket" if spec.node_os == "bottlerocket" else family


def node_class_user_data(specs: list[NodePoolSpec]) -> str | None:
    """User data of a family's EC2NodeClass (plain text: Karpenter encodes it): SOCI parallel pull when every pool of
    the family asks for it, and on AL2023 EFA classes the containers' locked-memory limit. Instance store is left to
    ``instanceStorePolicy`` (Karpenter writes the RAID0 settings itself)."""
    first = specs[0]
    fast = all(s.fast_image_pull for s in specs)
    if first.node_os == "bottlerocket":
        settings = _gpu.bottlerocket_settings(first.accelerator(), local_storage=False, fast_image_pull=fast)
        return tomli_w.dumps(settings) if settings else None
    config = _gpu.node_config(first.accelerator(), local_storage=False, fast_image_pull=fast, efa=first.efa)
    return _gpu.nodeadm_mime(config) if config else None


def class_ebs_throughput(specs: list[NodePoolSpec]) -> int | None:
    """600 MiB/s of gp3 throughput when SOCI parallel pull lands on the root volume (a type without instance store)."""
    if all(s.fast_image_pull for s in specs) and not all_have_instance_store(specs):
        return _gpu.FAST_PULL_EBS_THROUGHPUT_MIBPS
    return None


FAST_PULL_MINIMUM: dict[str, tuple[tuple[int, ...], str]] = {
    "al2023": ((20250821,), "v20250821"),
    "bottlerocket": ((1, 44, 0), "v1.44.0"),
}
"""First node image with SOCI parallel pull: the EKS AL2023 AMI release that ships nodeadm's ``FastImagePull`` gate
(karpenter-blueprints soci-snapshotter README; nodeadm ``nodeconfig_types.go``), and Bottlerocket 1.44.0 (release
notes: soci-snapshotter in the Kubernetes variants, parallel pull unpack)."""


def alias_supports_fast_pull(alias: str) -> bool:
    """Whether an AMI alias (``al2023@latest``, ``al2023@v20261101``, ``bottlerocket@v1.65.0``) names a node image
    with SOCI parallel pull; an unparsable version is left to Karpenter to judge."""
    family, _, version = alias.partition("@")
    if version == "latest" or family not in FAST_PULL_MINIMUM:
        return True
    parts = version.removeprefix("v").split(".")
    if not all(p.isdigit() for p in parts):
        return True
    return tuple(int(p) for p in parts) >= FAST_PULL_MINIMUM[family][0]


class KarpenterNodePoolsArgs(ArgsModel):
    """Arguments of :class:`KarpenterNodePools`."""

    pools: dict[str, NodePoolSpec] = Field(min_length=1)
    """Pool name -> spec. The name is also the ``genai-scale/node-group`` label serving components select on."""
    cluster_name: PulumiInput
    """EKS cluster the nodes join (the discovery tag value)."""
    node_role_name: PulumiInput
    """IAM role name of the nodes (EC2NodeClass ``spec.role``; Karpenter makes the instance profile)."""
    subnet_ids: PulumiInput = None
    """Subnets the nodes start in. Default: those tagged ``karpenter.sh/discovery: <cluster>``."""
    security_group_ids: PulumiInput = None
    """Node security groups. Default: those tagged ``karpenter.sh/discovery: <cluster>``."""
    ami_alias: str = Field(default="al2023@latest", pattern=r"^(al2023|bottlerocket)@.+$", max_length=30)
    """EKS-optimized AMI alias of the ``al2023`` pools (``al2023@<version>``); pin a version (``al2023@v20261101``)
    to control rollouts (FastImagePull needs v20250821 or later). Default: al2023@latest."""
    bottlerocket_ami_alias: str = Field(default="bottlerocket@latest", pattern=r"^bottlerocket@.+$", max_length=30)
    """AMI alias of the ``bottlerocket`` pools (``bottlerocket@v1.65.0`` pins; SOCI parallel pull needs 1.44.0 or
    later). Default: bottlerocket@latest."""
    kms_key_arn: PulumiInput = None
    """KMS key of the root volumes. Default: the account's EBS key (still encrypted)."""
    efa_placement_group: PulumiInput = None
    """Name of a cluster placement group the EFA pools' EC2NodeClass selects (``placementGroupSelector``; the
    controller's policy has ``ec2:DescribePlacementGroups``): the group's nodes sit close on the network, as an EFA
    managed node group's do. Default: none."""
    efa_zone: PulumiInput = None
    """The one Availability Zone the ``efa`` pools start nodes in (requirement ``topology.kubernetes.io/zone``), as
    an EFA managed node group is pinned to one subnet: a multi-node group's NCCL traffic stays in one AZ (EFA does not
    cross AZs) and off the inter-AZ bill. The EKS cluster security group the nodes get allows all traffic between
    its members, which EFA needs. Default: none (any zone of the selected subnets)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags on the instances and volumes Karpenter launches. Default: none."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.ami_alias.startswith("bottlerocket@"):
            out.append(Problem("ami_alias", self.ami_alias, "an al2023@<version> alias: Bottlerocket pools take "
                               "node_os bottlerocket on their NodePoolSpec and bottlerocket_ami_alias for the version"))
            return out
        for os_, field, alias in (("al2023", "ami_alias", self.ami_alias),
                                  ("bottlerocket", "bottlerocket_ami_alias", self.bottlerocket_ami_alias)):
            fast = sorted(n for n, s in self.pools.items() if s.node_os == os_ and s.fast_image_pull)
            if fast and not alias_supports_fast_pull(alias):
                out.append(Problem(field, alias, f"{FAST_PULL_MINIMUM[os_][1]} or later (or latest): pools "
                                   f"{', '.join(fast)} pull with SOCI (fast_image_pull), which older node images "
                                   "do not know; or turn fast_image_pull off on them",
                                   tuple(f"pools.{n}.fast_image_pull" for n in fast)))
        for name, spec in self.pools.items():
            if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name) or len(name) > 63:
                out.append(Problem(f"pools.{name}", name, "a pool name of lowercase letters, digits and '-' "
                                   "(a Kubernetes object name and label value), at most 63 characters"))
            out += spec.problems(f"pools.{name}")
        return out


@dataclass(frozen=True)
class PoolPlacement:
    """What serving and batch sections read from a node group, for a NodePool: its name, instance type, accelerator,
    labels and taints, and its size bounds."""

    name: str
    instance_type: str
    accelerator: AcceleratorSpec
    labels: dict[str, str]
    taints: list[dict[str, str]]
    min_size: int
    max_size: int


class KarpenterNodePools(pulumi.ComponentResource):
    """Karpenter NodePools and EC2NodeClasses. See the module docstring."""

    pools: dict[str, PoolPlacement]
    """Pool name -> its placement facts (labels, taints, accelerator)."""
    node_classes: dict[str, k8s.apiextensions.CustomResource]
    """Family -> EC2NodeClass."""
    node_pools: dict[str, k8s.apiextensions.CustomResource]
    """Pool name -> NodePool."""

    def __init__(self, name: str, args: KarpenterNodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}KarpenterNodePools", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        families: dict[str, list[NodePoolSpec]] = {}
        for spec in args.pools.values():
            families.setdefault(family_of(spec), []).append(spec)
        self.node_classes = {}
        for family, specs in sorted(families.items()):
            crs = sorted({cr for s in specs if "reserved" in s.capacity_types for cr in s.capacity_reservation_ids})
            pg = args.efa_placement_group if family.endswith("-efa") else None
            body = pulumi.Output.all(args.node_role_name, args.cluster_name, args.subnet_ids, args.security_group_ids,
                                     args.kms_key_arn, pg).apply(lambda a, f=family, ss=specs, c=crs: render_node_class(
                                         f"{name}-{f}", role=a[0], cluster_name=a[1], subnet_ids=a[2],
                                         security_group_ids=a[3], kms_key_arn=a[4], capacity_reservation_ids=c,
                                         disk_size_gib=max(s.disk_size_gib for s in ss),
                                         ami_alias=(args.bottlerocket_ami_alias if ss[0].node_os == "bottlerocket"
                                                    else args.ami_alias),
                                         tags=args.tags, instance_store_raid0=all_have_instance_store(ss),
                                         placement_group=a[5], user_data=node_class_user_data(ss),
                                         ebs_throughput_mibps=class_ebs_throughput(ss)))
            self.node_classes[family] = k8s.apiextensions.CustomResource(
                f"{name}-{family}", api_version=NODECLASS_API, kind="EC2NodeClass",
                metadata={"name": f"{name}-{family}"}, spec=body.apply(lambda b: b["spec"]), opts=child)
        self.node_pools = {}
        self.pools = {}
        for pool, spec in args.pools.items():
            family = family_of(spec)
            body = render_node_pool(pool, spec, f"{name}-{family}")
            pool_spec: Any = body["spec"]
            if spec.efa and args.efa_zone is not None:
                pool_spec = pulumi.Output.from_input(args.efa_zone).apply(lambda z, b=body: in_zone(b["spec"], z))
            self.node_pools[pool] = k8s.apiextensions.CustomResource(
                f"{name}-{pool}", api_version=NODEPOOL_API, kind="NodePool", metadata=body["metadata"],
                spec=pool_spec, opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_classes[family]]))
            self.pools[pool] = PoolPlacement(pool, spec.instance_types[0], spec.accelerator(), pool_labels(pool, spec),
                                             pool_taints(spec), 0, spec.max_nodes)
        self.register_outputs({"nodePools": sorted(self.node_pools), "nodeClasses": sorted(self.node_classes)})
