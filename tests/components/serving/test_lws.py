"""LeaderWorkerSetController: the pinned chart is vendored, its values are known to the chart, and the release keeps
the CRD out of Helm's upgrade path (crds/ directory, fixed release name and namespace the CRD's webhook expects)."""

from __future__ import annotations

import yaml

from components import versions
from components.serving.lws import (CRD_NAME, NAMESPACE, LeaderWorkerSetController, LeaderWorkerSetControllerArgs,
                                    render_values)
from infra.plan import run_program
from tests.infra.test_upstream_truth import UPSTREAM, charts, load_chart, type_errors, unknown_keys

VENDORED = UPSTREAM / "lws" / "0.10.0"


def test_the_pinned_chart_and_its_crd_are_vendored():
    assert (versions.LWS_CHART.name, versions.LWS_CHART.version) in charts()
    crd = yaml.load((VENDORED / "leaderworkerset.x-k8s.io_leaderworkersets.yaml").read_text(), Loader=yaml.CSafeLoader)
    assert crd["metadata"]["name"] == CRD_NAME
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1"]
    assert crd["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    # the CRD's conversion webhook is hard-wired to the release's namespace: the component may not move it
    service = crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]
    assert (service["name"], service["namespace"]) == ("lws-webhook-service", NAMESPACE)


def test_values_are_known_to_the_chart_and_of_its_types():
    chart = load_chart(charts()[("lws", versions.LWS_CHART.version)])
    for a in (LeaderWorkerSetControllerArgs(), LeaderWorkerSetControllerArgs(high_availability=True, prometheus=True)):
        assert unknown_keys("lws", chart, render_values(a)) == []
        assert type_errors("lws", chart, render_values(a)) == []  # e.g. the CPU request a number, as the chart's


def test_values_pin_the_image_and_meet_the_restricted_profile():
    v = render_values(LeaderWorkerSetControllerArgs(high_availability=True))
    assert v["image"]["manager"] == {"repository": "registry.k8s.io/lws/lws", "tag": "v0.10.0",
                                     "pullPolicy": "IfNotPresent"}  # the chart's default tag is `main`
    assert v["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert v["replicaCount"] == 2 and v["enableCertManager"] is False


def test_release_installs_crds_from_the_chart_under_a_fixed_name():
    def program():
        c = LeaderWorkerSetController("lws", LeaderWorkerSetControllerArgs())
        assert (c.namespace, c.crd_name) == ("lws-system", CRD_NAME)
    result = run_program(program)
    rel = result.one("kubernetes:helm.sh/v3:Release", "lws")
    assert rel.inputs["chart"] == "oci://registry.k8s.io/lws/charts/lws"
    assert rel.inputs["version"] == "0.10.0"
    assert (rel.inputs["name"], rel.inputs["namespace"]) == ("lws", "lws-system")
    assert rel.inputs["skipCrds"] is False  # crds/: installed once, never deleted by an upgrade
    ns = result.one("kubernetes:core/v1:Namespace", "lws-ns")
    assert ns.get("metadata.labels")["pod-security.kubernetes.io/enforce"] == "restricted"
