"""Wait until every Deployment and StatefulSet of a namespace has rolled out, and report.

Used after `make k8s-apply`: `plantops-infra rollout --namespace plantops`. The rules
are the ones `kubectl rollout status` applies: the controller has seen the newest spec
(observedGeneration), every replica runs that spec (updated), and is ready/available.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kubernetes.client import V1Deployment, V1DeploymentList, V1StatefulSet, V1StatefulSetList


class AppsApi(Protocol):
    """The two calls of `kubernetes.client.AppsV1Api` this module needs."""

    def list_namespaced_deployment(self, namespace: str) -> V1DeploymentList: ...

    def list_namespaced_stateful_set(self, namespace: str) -> V1StatefulSetList: ...


@dataclass(frozen=True)
class WorkloadStatus:
    kind: str
    name: str
    desired: int
    ready: int
    updated: int
    done: bool
    reason: str  # why it is not done yet; empty when done

    def line(self) -> str:
        mark = "ready" if self.done else "WAITING"
        text = f"{self.kind:11} {self.name:24} {mark:8} {self.ready}/{self.desired} ready"
        return f"{text}, {self.updated} updated  {self.reason}".rstrip()


@dataclass(frozen=True)
class RolloutReport:
    namespace: str
    workloads: list[WorkloadStatus]
    elapsed_s: float

    @property
    def done(self) -> bool:
        return bool(self.workloads) and all(w.done for w in self.workloads)

    @property
    def waiting(self) -> list[WorkloadStatus]:
        return [w for w in self.workloads if not w.done]


def _int(value: int | None) -> int:
    return value or 0


def _generation_seen(metadata_generation: int | None, observed: int | None) -> bool:
    return observed is not None and observed >= _int(metadata_generation)


def deployment_status(deployment: V1Deployment) -> WorkloadStatus:
    """Done when the newest spec runs on every desired replica and all are available."""
    spec_replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    status = deployment.status
    updated, ready = _int(status.updated_replicas), _int(status.ready_replicas)
    available, total = _int(status.available_replicas), _int(status.replicas)
    reason = ""
    if not _generation_seen(deployment.metadata.generation, status.observed_generation):
        reason = "controller has not seen the newest spec yet"
    elif updated < spec_replicas:
        reason = f"{updated} of {spec_replicas} replicas run the newest spec"
    elif total > updated:
        reason = f"{total - updated} old replicas still terminating"
    elif available < spec_replicas:
        reason = f"{available} of {spec_replicas} replicas available"
    return WorkloadStatus(
        "Deployment", deployment.metadata.name, spec_replicas, ready, updated, not reason, reason
    )


def statefulset_status(statefulset: V1StatefulSet) -> WorkloadStatus:
    """Done when every replica is ready and runs the update revision."""
    spec_replicas = statefulset.spec.replicas if statefulset.spec.replicas is not None else 1
    status = statefulset.status
    ready, updated = _int(status.ready_replicas), _int(status.updated_replicas)
    reason = ""
    if not _generation_seen(statefulset.metadata.generation, status.observed_generation):
        reason = "controller has not seen the newest spec yet"
    elif ready < spec_replicas:
        reason = f"{ready} of {spec_replicas} replicas ready"
    elif status.update_revision and status.current_revision != status.update_revision:
        reason = f"{updated} of {spec_replicas} replicas run revision {status.update_revision}"
    return WorkloadStatus(
        "StatefulSet", statefulset.metadata.name, spec_replicas, ready, updated, not reason, reason
    )


def snapshot(apps: AppsApi, namespace: str) -> list[WorkloadStatus]:
    """The rollout state of every Deployment and StatefulSet in the namespace, by name."""
    deployments = apps.list_namespaced_deployment(namespace).items
    statefulsets = apps.list_namespaced_stateful_set(namespace).items
    statuses = [deployment_status(d) for d in deployments]
    statuses += [statefulset_status(s) for s in statefulsets]
    return sorted(statuses, key=lambda w: (w.kind, w.name))


def wait_for_rollout(
    apps: AppsApi,
    namespace: str,
    timeout_s: float = 600.0,
    interval_s: float = 5.0,
    on_progress: Callable[[list[WorkloadStatus]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutReport:
    """Poll until every workload is done or the timeout passes; the last state either way.

    A namespace without any workload is never done: that is a wrong namespace or an
    overlay that was not applied, not a successful rollout.
    """
    start = clock()
    while True:
        workloads = snapshot(apps, namespace)
        report = RolloutReport(namespace, workloads, clock() - start)
        if on_progress is not None:
            on_progress(workloads)
        if report.done or report.elapsed_s >= timeout_s:
            return report
        sleep(min(interval_s, max(timeout_s - report.elapsed_s, 0.0)))


def apps_api(context: str | None = None) -> AppsApi:
    """An AppsV1Api from the kubeconfig (or the in-cluster service account)."""
    from kubernetes import client, config

    try:
        config.load_kube_config(context=context)
    except config.ConfigException:
        config.load_incluster_config()
    return client.AppsV1Api()
