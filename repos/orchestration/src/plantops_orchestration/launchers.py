"""The arguments of the operators that run the ml-training image (docker / kubernetes).

`plants_train` only wires: it passes these keyword arguments to DockerOperator or
KubernetesPodOperator. Building them here keeps the command, the environment and the
pod's limits testable without Airflow, and keeps the providers out of this module.
Either way the container runs the image's entrypoint, `plantops-train`, as
`plantops-train train --dataset-version <version> <PLANTOPS_TRAIN_ARGS>`.
"""

from __future__ import annotations

import shlex
from datetime import timedelta
from typing import Any

from plantops_orchestration.config import Settings, TrainingSettings

# Rendered by Airflow when the task runs: the version `resolve_dataset_version` returned.
DATASET_VERSION_TEMPLATE = "{{ ti.xcom_pull(task_ids='resolve_dataset_version') }}"
# The label of training pods; the NetworkPolicies of repos/infra let it reach MLflow and MinIO.
TRAINER_LABELS = {
    "app.kubernetes.io/name": "plantops-trainer",
    "app.kubernetes.io/part-of": "plantops",
}
# The ml-training image's non-root user (repos/ml-training/Dockerfile).
TRAINER_UID = 10001
# Keys of the Secret (PLANTOPS_TRAIN_K8S_SECRET) the pod gets, under the same names.
SECRET_KEYS = ("PLANTOPS_S3_ACCESS_KEY", "PLANTOPS_S3_SECRET_KEY")
# A multi-GB image may take minutes to pull on a fresh node.
POD_STARTUP_TIMEOUT_S = 600
# The only places the trainer writes, as emptyDir volumes: its root filesystem is
# read-only. /tmp holds the exported model before it is logged; the cache (the image's
# PLANTOPS_CACHE_DIR) the photos downloaded from fmt/. The infra image smoke runs the
# image the same way (repos/infra/tests/images).
TRAINER_WRITABLE_DIRS = {
    "tmp": "/tmp",
    "photo-cache": "/home/plantops/.cache/plantops-ml-training",
}


def train_arguments(settings: TrainingSettings, dataset_version: str) -> list[str]:
    """The words after the entrypoint: `train --dataset-version <version> <extra args>`."""
    return ["train", "--dataset-version", dataset_version, *shlex.split(settings.train_args)]


def execution_timeout(settings: TrainingSettings) -> timedelta:
    return timedelta(seconds=settings.train_timeout_s)


def trainer_environment(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """What the training container reads (ml-training's Settings): (plain, secret).

    The secret part goes to DockerOperator's `private_environment`, which Airflow
    neither renders nor shows.
    """
    plain = {
        "PLANTOPS_S3_ENDPOINT": settings.s3_endpoint,
        "PLANTOPS_S3_SECURE": str(settings.s3_secure).lower(),
        "PLANTOPS_S3_BUCKET": settings.s3_bucket,
        "PLANTOPS_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
    }
    secret = {
        "PLANTOPS_S3_ACCESS_KEY": settings.s3_access_key,
        "PLANTOPS_S3_SECRET_KEY": settings.s3_secret_key,
    }
    return plain, secret


def docker_operator_kwargs(settings: Settings, dataset_version: str) -> dict[str, Any]:
    """Keyword arguments of DockerOperator (apache-airflow-providers-docker)."""
    environment, private_environment = trainer_environment(settings)
    return {
        "image": settings.train_image,
        "command": train_arguments(settings, dataset_version),
        "environment": environment,
        "private_environment": private_environment,
        "docker_url": settings.train_docker_url,
        "network_mode": settings.train_docker_network or None,
        # Airflow runs in a container: a host temporary folder would not be its own.
        "mount_tmp_dir": False,
        # A failed container stays for `docker logs`; a successful one goes.
        "auto_remove": "success",
        "labels": TRAINER_LABELS,
        "execution_timeout": execution_timeout(settings),
    }


def kubernetes_pod_operator_kwargs(
    settings: TrainingSettings, dataset_version: str
) -> dict[str, Any]:
    """Keyword arguments of KubernetesPodOperator (apache-airflow-providers-cncf-kubernetes).

    The pod meets the "restricted" Pod Security Standard of the plantops namespace and
    takes its environment from the ConfigMap and two keys of the Secret, by name.
    """
    from kubernetes.client import models as k8s  # the client library, not Airflow

    resources = {"cpu": settings.train_k8s_cpu, "memory": settings.train_k8s_memory}
    secret_env = [
        k8s.V1EnvVar(
            name=key,
            value_from=k8s.V1EnvVarSource(
                secret_key_ref=k8s.V1SecretKeySelector(name=settings.train_k8s_secret, key=key)
            ),
        )
        for key in SECRET_KEYS
    ]
    return {
        "name": "plantops-train",
        "namespace": settings.train_k8s_namespace,
        "image": settings.train_image,
        # No `cmds`: the image's entrypoint (plantops-train) runs with these arguments.
        "arguments": train_arguments(settings, dataset_version),
        "labels": TRAINER_LABELS,
        "env_from": [
            k8s.V1EnvFromSource(
                config_map_ref=k8s.V1ConfigMapEnvSource(name=settings.train_k8s_config_map)
            )
        ],
        "env_vars": secret_env,
        "service_account_name": settings.train_k8s_service_account,
        "automount_service_account_token": False,
        "container_resources": k8s.V1ResourceRequirements(requests=resources, limits=resources),
        "security_context": k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=TRAINER_UID,
            run_as_group=TRAINER_UID,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        "container_security_context": k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
            read_only_root_filesystem=True,
        ),
        "volumes": [
            k8s.V1Volume(name=name, empty_dir=k8s.V1EmptyDirVolumeSource())
            for name in TRAINER_WRITABLE_DIRS
        ],
        "volume_mounts": [
            k8s.V1VolumeMount(name=name, mount_path=path)
            for name, path in TRAINER_WRITABLE_DIRS.items()
        ],
        "get_logs": True,
        "startup_timeout_seconds": POD_STARTUP_TIMEOUT_S,
        # Kubernetes stops the pod at the deadline even if Airflow is gone.
        "active_deadline_seconds": settings.train_timeout_s,
        # A failed pod stays for `kubectl logs`; a successful one goes.
        "on_finish_action": "delete_succeeded_pod",
        "execution_timeout": execution_timeout(settings),
    }
