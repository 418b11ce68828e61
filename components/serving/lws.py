"""LeaderWorkerSetController: the LeaderWorkerSet (LWS) controller from its pinned Helm chart, for multi-node serving.

Creates the namespace ``lws-system`` and the ``lws`` chart release (kubernetes-sigs/lws, chart
``oci://registry.k8s.io/lws/charts/lws``, version pinned in components/versions.py), which brings the controller, its
webhooks (with the controller's own certificate rotation; cert-manager off) and the ``LeaderWorkerSet`` CRD
(``leaderworkersets.leaderworkerset.x-k8s.io``, API ``leaderworkerset.x-k8s.io/v1``).

CRDs and upgrades: since chart v0.8.0 the CRDs ship in the chart's ``crds/`` directory, which Helm installs on the
first install and never deletes (not on upgrade, not on uninstall), so a chart upgrade cannot delete the CRD and with
it every LeaderWorkerSet (the failure of upgrades from charts <= v0.7.0, which rendered the CRD from ``templates/``:
kubernetes-sigs/lws issue 880). This component keeps that: it does not apply the CRD as a separate resource, because
the CRD is 1.3 MB (inlined pod templates) and carries a conversion webhook whose ``caBundle`` the controller patches
at run time (a resource owning the CRD would fight it on every update). The cost is that ``helm upgrade`` does not
update the CRD schema either: before raising ``chart_version``, apply the new chart's CRDs server-side, as the LWS
install doc says (``helm pull oci://registry.k8s.io/lws/charts/lws --version=<v> --untar && kubectl apply
--server-side --force-conflicts -f lws/crds``). The release is named ``lws`` in ``lws-system`` because the chart's
CRD hard-codes its conversion webhook as the Service ``lws-webhook-service`` in ``lws-system``.

Defaults: one controller replica (two with ``high_availability``) on the system node group, image tag pinned to the
release (the chart's values default to ``main``), Prometheus metrics off (turn on with ``prometheus``, which needs the
Prometheus operator's CRDs). Security: the chart's non-root, read-only-root-filesystem controller with all
capabilities dropped; no cloud credentials. Cost: one small pod (the chart requests 1 vCPU and 1 GiB; lowered here to
0.2 vCPU and 256 MiB, limited to 1 GiB). Quotas: none. Give ``cluster=<EksCluster>`` and its Kubernetes provider is
used when ``opts`` names none.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import with_cluster_provider

NAMESPACE = "lws-system"
"""Fixed: the chart's CRD points its conversion webhook at ``lws-webhook-service`` in this namespace."""
RELEASE_NAME = "lws"
"""Fixed: the chart names its objects after the release (``lws-controller-manager``, ...)."""
CRD_NAME = "leaderworkersets.leaderworkerset.x-k8s.io"


class LeaderWorkerSetControllerArgs(ArgsModel):
    """Arguments of :class:`LeaderWorkerSetController`."""

    chart_version: str = versions.LWS_CHART.version
    """Chart version. Default: the pinned version (apply its CRDs first when raising it: see the module docstring)."""
    image_tag: str = versions.LWS_IMAGE.version
    """Controller image tag. Default: the pinned release tag."""
    high_availability: bool = False
    """Two controller replicas (leader election). Default: one."""
    prometheus: bool = False
    """Render the chart's ServiceMonitor (needs the Prometheus operator CRDs). Default: off."""
    node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Where the controller runs. Default: the system node group."""
    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` to install into: its Kubernetes provider is used when
    ``opts`` names none. Default: none (the provider comes from ``opts``)."""
    after: list[Any] = Field(default_factory=list)
    """Resources the release waits for (the Prometheus operator release, with ``prometheus``). Default: none."""


def render_values(args: LeaderWorkerSetControllerArgs) -> dict[str, Any]:
    """Helm values of the lws chart (keys of its values.yaml at the pinned tag; numbers where its defaults are)."""
    return {
        "replicaCount": 2 if args.high_availability else 1,
        "image": {"manager": {"repository": versions.LWS_IMAGE.repository, "tag": args.image_tag,
                              "pullPolicy": "IfNotPresent"}},
        "enablePrometheus": args.prometheus,
        "enableCertManager": False,
        # the namespace enforces the restricted Pod Security profile, which needs a seccomp profile (the chart sets none)
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {"requests": {"cpu": 0.2, "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "nodeSelector": dict(args.node_selector),
    }


class LeaderWorkerSetController(pulumi.ComponentResource):
    """LWS controller release. See the module docstring (CRDs and upgrades)."""

    release: k8s.helm.v3.Release
    """The Helm release; LeaderWorkerSets wait for it (pass it in their ``after``)."""
    namespace: str
    """Namespace of the controller (``lws-system``)."""
    crd_name: str
    """Name of the LeaderWorkerSet CRD the release installs."""
    values: dict[str, Any]
    """Rendered Helm values."""

    def __init__(self, name: str, args: LeaderWorkerSetControllerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}LeaderWorkerSetController", name, None,
                         with_cluster_provider(opts, args.cluster))
        self.namespace = NAMESPACE
        self.crd_name = CRD_NAME
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": NAMESPACE, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}, opts=pulumi.ResourceOptions(parent=self))
        self.values = render_values(args)
        self.release = k8s.helm.v3.Release(
            name, name=RELEASE_NAME, chart=f"{versions.LWS_CHART.repository}/{versions.LWS_CHART.name}",
            version=args.chart_version, namespace=NAMESPACE, values=self.values,
            skip_crds=False,  # crds/: installed once, never deleted by Helm (module docstring)
            atomic=True, cleanup_on_fail=True, timeout=600,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *args.after]))
        self.register_outputs({"namespace": self.namespace})
