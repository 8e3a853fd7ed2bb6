"""Every DAG file imports, and each DAG has tags, retries, UTC dates and no cycle."""

from __future__ import annotations

import pytest

from ..conftest import DAGS

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {"plants_ingest", "plants_train", "plants_monitor"}
    assert len(list(DAGS.glob("*.py"))) == len(dagbag.dags)  # one DAG per file


@pytest.mark.parametrize("dag_id", ["plants_ingest", "plants_train", "plants_monitor"])
def test_dag_has_tags_retries_docs_and_no_cycle(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert "plantops" in dag.tags
    assert dag.catchup is False
    assert dag.doc_md
    assert str(dag.start_date.tzinfo) == "UTC"
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
    dag.check_cycle()  # raises on a cycle


def test_ingest_publishes_the_asset_that_schedules_training(dagbag):
    publish = dagbag.dags["plants_ingest"].get_task("publish_dataset")
    (asset,) = publish.outlets
    assert asset.name == "plantops-dataset"
    assert asset.uri == "s3://plantops-data/agg/latest.json"
    schedule = dagbag.dags["plants_train"].timetable
    assert "plantops-dataset" in repr(schedule) and "0 3 * * 1" in repr(schedule)


def test_monitor_runs_hourly_and_its_retrain_request_schedules_ingestion(dagbag):
    monitor = dagbag.dags["plants_monitor"]
    assert "0 * * * *" in repr(monitor.timetable) or "hourly" in repr(monitor.timetable)
    request = monitor.get_task("request_retraining")
    assert request.upstream_task_ids == {"check_drift"}
    (asset,) = request.outlets
    assert asset.name == "plantops-retrain-request"
    ingest = repr(dagbag.dags["plants_ingest"].timetable)
    assert "plantops-retrain-request" in ingest and "0 0 * * *" in ingest


def test_the_asset_uri_follows_the_bucket_setting_in_both_dags(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from plantops_orchestration.config import get_training_settings

    monkeypatch.setenv("PLANTOPS_S3_BUCKET", "another-bucket")
    get_training_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        get_training_settings.cache_clear()
    (asset,) = bag.dags["plants_ingest"].get_task("publish_dataset").outlets
    assert asset.uri == "s3://another-bucket/agg/latest.json"
    (inlet,) = bag.dags["plants_train"].get_task("resolve_dataset_version").inlets
    assert inlet == asset
    assert "s3://another-bucket/agg/latest.json" in repr(bag.dags["plants_train"].timetable)


def test_the_version_comes_from_the_newest_event_that_names_one():
    from types import SimpleNamespace

    from plantops_orchestration.assets import version_from_events

    events = [
        SimpleNamespace(extra={"dataset_version": "ds-old"}),
        SimpleNamespace(extra={"dataset_version": "ds-new"}),
        SimpleNamespace(extra={}),  # an event raised by hand, without the version
    ]
    assert version_from_events(events) == "ds-new"
    assert version_from_events([]) is None


def test_the_subprocess_launcher_stops_at_the_training_timeout_setting(monkeypatch):
    # docker and kubernetes: test_launchers.py; all three read PLANTOPS_TRAIN_TIMEOUT_S.
    train = parse_plants_train(monkeypatch, PLANTOPS_TRAIN_TIMEOUT_S="1234")
    assert train.execution_timeout.total_seconds() == 1234


TEMPLATED_VERSION = "{{ ti.xcom_pull(task_ids='resolve_dataset_version') }}"


def parse_plants_train(monkeypatch, **env: str):
    """plants_train parsed by a real DagBag with the launcher's settings in the environment.

    There is no Docker engine and no Kubernetes cluster here, so the container
    operators cannot execute: these tests check what they would run (class, image,
    command with the templated dataset version, environment), not a run.
    """
    from airflow.dag_processing.dagbag import DagBag

    from plantops_orchestration.config import get_settings, get_training_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_training_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(DAGS / "plants_train.py"))
    finally:
        get_settings.cache_clear()
        get_training_settings.cache_clear()
    assert bag.import_errors == {}
    train = bag.dags["plants_train"].get_task("train")
    assert train.upstream_task_ids == {"resolve_dataset_version"}
    return train


def test_train_is_a_python_task_by_default(monkeypatch):
    monkeypatch.delenv("PLANTOPS_TRAIN_LAUNCHER", raising=False)
    train = parse_plants_train(monkeypatch)
    assert type(train).__name__ == "_PythonDecoratedOperator"


def test_train_runs_the_training_image_with_docker(monkeypatch):
    train = parse_plants_train(
        monkeypatch,
        PLANTOPS_TRAIN_LAUNCHER="docker",
        PLANTOPS_TRAIN_IMAGE="plantops/ml-training:1.2.3",
        PLANTOPS_TRAIN_DOCKER_NETWORK="plantops",
        PLANTOPS_TRAIN_ARGS="--epochs 1",
        PLANTOPS_MYSQL_USER="u",
        PLANTOPS_MYSQL_PASSWORD="p",
        PLANTOPS_S3_ENDPOINT="minio:9000",
        PLANTOPS_S3_ACCESS_KEY="access",
        PLANTOPS_S3_SECRET_KEY="secret",
        PLANTOPS_MLFLOW_TRACKING_URI="http://mlflow:5000",
    )
    from airflow.providers.docker.operators.docker import DockerOperator

    assert isinstance(train, DockerOperator)
    assert train.image == "plantops/ml-training:1.2.3"
    assert train.command == ["train", "--dataset-version", TEMPLATED_VERSION, "--epochs", "1"]
    assert train.network_mode == "plantops"
    assert train.environment["PLANTOPS_S3_ENDPOINT"] == "minio:9000"
    assert train.environment["PLANTOPS_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert train._private_environment["PLANTOPS_S3_SECRET_KEY"] == "secret"
    assert "secret" not in train.environment.values()  # never rendered in the UI
    assert train.retries >= 1


def test_train_runs_the_training_image_as_a_kubernetes_pod(monkeypatch):
    # No credentials in the environment: the pod gets them from the Secret, Airflow never.
    for name in ("PLANTOPS_S3_ACCESS_KEY", "PLANTOPS_S3_SECRET_KEY", "PLANTOPS_MYSQL_USER"):
        monkeypatch.delenv(name, raising=False)
    train = parse_plants_train(
        monkeypatch,
        PLANTOPS_TRAIN_LAUNCHER="kubernetes",
        PLANTOPS_TRAIN_IMAGE="plantops/ml-training:1.2.3",
        PLANTOPS_TRAIN_K8S_NAMESPACE="plantops",
        PLANTOPS_TRAIN_K8S_CONFIG_MAP="plantops-trainer-config",
        PLANTOPS_TRAIN_K8S_SECRET="plantops-trainer-secrets",
    )
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    assert isinstance(train, KubernetesPodOperator)
    assert train.image == "plantops/ml-training:1.2.3"
    assert train.namespace == "plantops"
    assert train.cmds == []  # the image's entrypoint, plantops-train
    assert train.arguments == ["train", "--dataset-version", TEMPLATED_VERSION]
    assert train.labels["app.kubernetes.io/name"] == "plantops-trainer"
    assert [s.config_map_ref.name for s in train.env_from] == ["plantops-trainer-config"]
    assert {e.name: e.value_from.secret_key_ref.name for e in train.env_vars} == {
        "PLANTOPS_S3_ACCESS_KEY": "plantops-trainer-secrets",
        "PLANTOPS_S3_SECRET_KEY": "plantops-trainer-secrets",
    }
    assert train.retries >= 1


# A kubeconfig that points nowhere: KubernetesPodOperator loads one to build its pod,
# and no cluster exists here (nothing below connects to it).
NOWHERE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def test_the_pod_airflow_would_submit_is_valid_and_restricted(monkeypatch, tmp_path):
    """The V1Pod KubernetesPodOperator builds for a run, checked against the schema of
    Kubernetes 1.33 (kubernetes-validate, strict) and the restricted pod security rules.
    No cluster exists here, so this is the pod as submitted, not a pod that ran."""
    from kubernetes.client import ApiClient
    from kubernetes_validate import validate

    train = parse_plants_train(
        monkeypatch,
        PLANTOPS_TRAIN_LAUNCHER="kubernetes",
        PLANTOPS_TRAIN_K8S_SERVICE_ACCOUNT="plantops-trainer",
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(NOWHERE_KUBECONFIG)
    train.config_file = str(kubeconfig)
    pod = ApiClient().sanitize_for_serialization(train.build_pod_request_obj())
    validate(pod, "1.33.0", strict=True)  # raises on an unknown or mistyped field
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert spec["serviceAccountName"] == "plantops-trainer"
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "plantops-trainer"
