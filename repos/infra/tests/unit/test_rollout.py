"""`plantops-infra rollout` against the kubernetes client's own model objects.

No cluster runs here, so the AppsV1Api is replaced by a small stand-in that returns
V1DeploymentList / V1StatefulSetList objects, the types the real client returns.
"""

from __future__ import annotations

import pytest
from kubernetes.client import (
    V1Deployment,
    V1DeploymentList,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodTemplateSpec,
    V1StatefulSet,
    V1StatefulSetList,
    V1StatefulSetSpec,
    V1StatefulSetStatus,
)
from typer.testing import CliRunner

from plantops_infra import cli, rollout
from plantops_infra.rollout import deployment_status, statefulset_status, wait_for_rollout

pytestmark = pytest.mark.unit

SELECTOR = V1LabelSelector(match_labels={"app": "x"})
TEMPLATE = V1PodTemplateSpec()


def deployment(name="inference-api", spec_replicas=2, generation=3, **status) -> V1Deployment:
    defaults = dict(
        observed_generation=generation,
        replicas=spec_replicas,
        updated_replicas=spec_replicas,
        ready_replicas=spec_replicas,
        available_replicas=spec_replicas,
    )
    return V1Deployment(
        metadata=V1ObjectMeta(name=name, generation=generation),
        spec=V1DeploymentSpec(replicas=spec_replicas, selector=SELECTOR, template=TEMPLATE),
        status=V1DeploymentStatus(**(defaults | status)),
    )


def statefulset(name="mysql", replicas=1, generation=1, **status) -> V1StatefulSet:
    defaults = dict(
        observed_generation=generation,
        replicas=replicas,
        ready_replicas=replicas,
        updated_replicas=replicas,
        current_revision="mysql-1",
        update_revision="mysql-1",
    )
    return V1StatefulSet(
        metadata=V1ObjectMeta(name=name, generation=generation),
        spec=V1StatefulSetSpec(
            replicas=replicas, selector=SELECTOR, template=TEMPLATE, service_name=name
        ),
        status=V1StatefulSetStatus(**(defaults | status)),
    )


class FakeApps:
    """Returns one prepared (deployments, statefulsets) state per call, the last one forever."""

    def __init__(self, *states):
        self.states = list(states)
        self.calls = 0

    def _state(self):
        return self.states[min(self.calls, len(self.states) - 1)]

    def list_namespaced_deployment(self, namespace):
        return V1DeploymentList(items=self._state()[0])

    def list_namespaced_stateful_set(self, namespace):
        state = self._state()
        self.calls += 1
        return V1StatefulSetList(items=state[1])


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_a_fully_rolled_out_deployment_is_done():
    assert deployment_status(deployment()).done


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ({"observed_generation": 2}, "has not seen the newest spec"),
        ({"updated_replicas": 1}, "1 of 2 replicas run the newest spec"),
        ({"replicas": 3}, "1 old replicas still terminating"),
        ({"available_replicas": 1}, "1 of 2 replicas available"),
        ({"available_replicas": None, "ready_replicas": None}, "0 of 2 replicas available"),
    ],
)
def test_a_deployment_mid_rollout_says_why_it_waits(status, reason):
    result = deployment_status(deployment(**status))
    assert not result.done
    assert reason in result.reason


def test_a_statefulset_waits_for_ready_replicas_and_the_update_revision():
    assert statefulset_status(statefulset()).done
    assert "0 of 1 replicas ready" in statefulset_status(statefulset(ready_replicas=0)).reason
    stale = statefulset_status(statefulset(update_revision="mysql-2", updated_replicas=0))
    assert not stale.done and "revision mysql-2" in stale.reason


def test_wait_returns_once_everything_is_ready():
    clock = FakeClock()
    apps = FakeApps(
        ([deployment(ready_replicas=0, available_replicas=0)], [statefulset(ready_replicas=0)]),
        ([deployment()], [statefulset(ready_replicas=0)]),
        ([deployment()], [statefulset()]),
    )
    report = wait_for_rollout(apps, "plantops", 60, 5, clock=clock, sleep=clock.sleep)
    assert report.done
    assert apps.calls == 3
    assert report.elapsed_s == 10


def test_wait_gives_up_at_the_timeout_and_names_what_is_waiting():
    clock = FakeClock()
    apps = FakeApps(([deployment(), deployment("webapp", available_replicas=0)], []))
    report = wait_for_rollout(apps, "plantops", 12, 5, clock=clock, sleep=clock.sleep)
    assert not report.done
    assert [w.name for w in report.waiting] == ["webapp"]
    assert report.elapsed_s == 12


def test_an_empty_namespace_is_not_a_successful_rollout():
    clock = FakeClock()
    report = wait_for_rollout(FakeApps(([], [])), "typo", 5, 5, clock=clock, sleep=clock.sleep)
    assert not report.done


def test_cli_reports_and_exits_1_when_a_workload_stays_unready(monkeypatch):
    apps = FakeApps(
        (
            [deployment(), deployment("webapp", ready_replicas=0, available_replicas=0)],
            [statefulset()],
        )
    )
    monkeypatch.setattr(rollout, "apps_api", lambda context=None: apps)
    result = CliRunner().invoke(cli.app, ["rollout", "--timeout", "0", "--interval", "0"])
    assert result.exit_code == 1
    assert "Deployment  webapp" in result.output
    assert "not ready after 0 s: Deployment/webapp" in result.output


def test_cli_exits_0_when_everything_is_ready(monkeypatch):
    apps = FakeApps(([deployment()], [statefulset()]))
    monkeypatch.setattr(rollout, "apps_api", lambda context=None: apps)
    result = CliRunner().invoke(cli.app, ["rollout", "--namespace", "plantops"])
    assert result.exit_code == 0, result.output
    assert "all 2 workloads of plantops ready" in result.output
