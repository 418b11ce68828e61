"""Monitoring meets batch in the shipped stacks: the PodMonitor selects the batch worker pods, and the worker serves
its metrics on the container port the PodMonitor scrapes."""

import pytest

from components.serving.monitoring import BATCH_METRICS_PORT_NAME
from tests.stack_plans import planned


def scaled_job_pods(result):
    jobs = result.by_type("kubernetes:keda.sh/v1alpha1:ScaledJob")
    assert jobs, "every tier runs batch workers"
    return [j.inputs["spec"]["jobTargetRef"]["template"] for j in jobs]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_pod_monitor_selects_every_batch_worker_pod(stack):
    result = planned(stack)[0]
    selector = result.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "monitoring-batch-workers").inputs[
        "spec"]["selector"]["matchLabels"]
    for pod in scaled_job_pods(result):
        labels = pod["metadata"]["labels"]
        assert selector.items() <= labels.items()
        assert "app.kubernetes.io/instance" in labels  # the dashboard's ScaledJob filter


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_the_worker_serves_metrics_on_the_scraped_port(stack):
    for pod in scaled_job_pods(planned(stack)[0]):
        worker = next(c for c in pod["spec"]["containers"] if c["name"] == "worker")
        ports = {p["name"]: p["containerPort"] for p in worker.get("ports") or []}
        env = {e["name"]: e.get("value") for e in worker["env"]}
        assert BATCH_METRICS_PORT_NAME in ports
        assert env.get("BATCH_METRICS_PORT") == str(int(ports[BATCH_METRICS_PORT_NAME]))  # mocks give floats
