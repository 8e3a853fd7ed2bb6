"""The operator arguments that run the ml-training image (no Airflow, no Docker, no cluster)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plantops_orchestration.config import Settings, TrainingSettings
from plantops_orchestration.launchers import (
    DATASET_VERSION_TEMPLATE,
    docker_operator_kwargs,
    kubernetes_pod_operator_kwargs,
    train_arguments,
)

pytestmark = pytest.mark.unit


def settings(**overrides) -> Settings:
    return Settings(
        mysql_user="u",
        mysql_password="p",
        s3_access_key="access",
        s3_secret_key="secret",
        **overrides,
    )


def test_arguments_follow_the_entrypoint_with_the_version_then_extra_args():
    training = TrainingSettings(train_args="--epochs 1 --seed 7")
    assert train_arguments(training, "ds-1") == [
        "train",
        "--dataset-version",
        "ds-1",
        "--epochs",
        "1",
        "--seed",
        "7",
    ]


def test_the_version_template_pulls_what_resolve_dataset_version_returned():
    assert train_arguments(TrainingSettings(), DATASET_VERSION_TEMPLATE)[2] == (
        "{{ ti.xcom_pull(task_ids='resolve_dataset_version') }}"
    )


def test_docker_runs_the_image_on_the_network_with_s3_and_mlflow_settings():
    kwargs = docker_operator_kwargs(
        settings(
            train_image="plantops/ml-training:9.9.9",
            train_docker_network="plantops",
            s3_endpoint="minio:9000",
            s3_bucket="bucket-x",
            mlflow_tracking_uri="http://mlflow:5000",
            train_timeout_s=120,
        ),
        "ds-1",
    )
    assert kwargs["image"] == "plantops/ml-training:9.9.9"
    assert kwargs["command"] == ["train", "--dataset-version", "ds-1"]
    assert kwargs["network_mode"] == "plantops"
    assert kwargs["environment"] == {
        "PLANTOPS_S3_ENDPOINT": "minio:9000",
        "PLANTOPS_S3_SECURE": "false",
        "PLANTOPS_S3_BUCKET": "bucket-x",
        "PLANTOPS_MLFLOW_TRACKING_URI": "http://mlflow:5000",
    }
    assert kwargs["execution_timeout"] == timedelta(seconds=120)
    assert kwargs["mount_tmp_dir"] is False


def test_docker_keeps_the_s3_keys_out_of_the_rendered_environment():
    kwargs = docker_operator_kwargs(settings(), "ds-1")
    assert kwargs["private_environment"] == {
        "PLANTOPS_S3_ACCESS_KEY": "access",
        "PLANTOPS_S3_SECRET_KEY": "secret",
    }
    assert "secret" not in kwargs["environment"].values()


def test_docker_without_a_network_uses_dockers_default():
    assert docker_operator_kwargs(settings(train_docker_network=""), "ds-1")["network_mode"] is None


def test_kubernetes_pod_gets_image_arguments_namespace_and_labels():
    kwargs = kubernetes_pod_operator_kwargs(
        TrainingSettings(
            train_image="plantops/ml-training:9.9.9",
            train_k8s_namespace="ns",
            train_k8s_service_account="trainer",
            train_args="--epochs 1",
        ),
        "ds-1",
    )
    assert kwargs["image"] == "plantops/ml-training:9.9.9"
    assert "cmds" not in kwargs  # the image's entrypoint, plantops-train
    assert kwargs["arguments"] == ["train", "--dataset-version", "ds-1", "--epochs", "1"]
    assert kwargs["namespace"] == "ns"
    assert kwargs["service_account_name"] == "trainer"
    assert kwargs["automount_service_account_token"] is False
    assert kwargs["labels"]["app.kubernetes.io/name"] == "plantops-trainer"


def test_kubernetes_pod_environment_comes_from_the_config_map_and_two_secret_keys():
    kwargs = kubernetes_pod_operator_kwargs(
        TrainingSettings(train_k8s_config_map="cm", train_k8s_secret="sec"), "ds-1"
    )
    (source,) = kwargs["env_from"]
    assert source.config_map_ref.name == "cm"
    refs = {e.name: e.value_from.secret_key_ref for e in kwargs["env_vars"]}
    assert {name: (ref.name, ref.key) for name, ref in refs.items()} == {
        "PLANTOPS_S3_ACCESS_KEY": ("sec", "PLANTOPS_S3_ACCESS_KEY"),
        "PLANTOPS_S3_SECRET_KEY": ("sec", "PLANTOPS_S3_SECRET_KEY"),
    }


def test_kubernetes_pod_is_restricted_bounded_and_stopped_at_the_timeout():
    kwargs = kubernetes_pod_operator_kwargs(
        TrainingSettings(train_k8s_cpu="3", train_k8s_memory="6Gi", train_timeout_s=900), "ds-1"
    )
    resources = kwargs["container_resources"]
    assert resources.requests == resources.limits == {"cpu": "3", "memory": "6Gi"}
    pod = kwargs["security_context"]
    assert pod.run_as_non_root is True and pod.seccomp_profile.type == "RuntimeDefault"
    container = kwargs["container_security_context"]
    assert container.allow_privilege_escalation is False
    assert container.capabilities.drop == ["ALL"]
    assert container.read_only_root_filesystem is True
    # Writable only where the trainer writes: /tmp and its photo cache, both emptyDir.
    mounts = {m.name: m.mount_path for m in kwargs["volume_mounts"]}
    assert mounts == {"tmp": "/tmp", "photo-cache": "/home/plantops/.cache/plantops-ml-training"}
    assert {v.name for v in kwargs["volumes"] if v.empty_dir is not None} == set(mounts)
    assert kwargs["active_deadline_seconds"] == 900
    assert kwargs["execution_timeout"] == timedelta(seconds=900)


def test_an_unknown_launcher_is_refused():
    with pytest.raises(ValueError, match="subprocess"):
        TrainingSettings(train_launcher="ssh")
