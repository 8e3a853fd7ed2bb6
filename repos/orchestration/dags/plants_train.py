"""
### plants_train

Trains a model on the latest dataset version: scheduled on the Asset
`plantops-dataset` (a new version from `plants_ingest`) and weekly.

`resolve_dataset_version` takes the version named in the newest Asset event's extra
(`agg/latest.json` only when Airflow holds no event); `train` runs
`plantops-train train --dataset-version <version> PLANTOPS_TRAIN_ARGS` in the
training environment, chosen by `PLANTOPS_TRAIN_LAUNCHER`:

- `subprocess` (default, local): `PLANTOPS_TRAIN_COMMAND`, the ml-training virtualenv.
- `docker` (Compose): a `DockerOperator` runs the image `PLANTOPS_TRAIN_IMAGE` on
  the network `PLANTOPS_TRAIN_DOCKER_NETWORK`, with the S3 and MLflow settings.
- `kubernetes`: a `KubernetesPodOperator` runs the image in `PLANTOPS_TRAIN_K8S_NAMESPACE`
  with its environment from `PLANTOPS_TRAIN_K8S_CONFIG_MAP` and `PLANTOPS_TRAIN_K8S_SECRET`.

Every launcher stops the training after `PLANTOPS_TRAIN_TIMEOUT_S`.
Airflow's own environment never installs torch.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task

from plantops_orchestration.assets import dataset_asset
from plantops_orchestration.config import get_training_settings
from plantops_orchestration.launchers import execution_timeout

DATASET = dataset_asset()


@dag(
    dag_id="plants_train",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"), assets=DATASET
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["plantops", "training"],
    doc_md=__doc__,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
)
def plants_train():
    @task(inlets=[DATASET])
    def resolve_dataset_version() -> str:
        import logging

        from plantops_orchestration.assets import version_from_events
        from plantops_orchestration.config import get_settings
        from plantops_orchestration.ingest import latest_version

        # The version named by the newest Asset event (what plants_ingest published);
        # agg/latest.json only when Airflow has none (a fresh metadata database).
        events = get_current_context()["inlet_events"][DATASET]
        version = version_from_events(events)
        if version is not None:
            logging.getLogger(__name__).info("dataset %s from the Asset event", version)
            return version
        version = latest_version(get_settings())
        if version is None:
            raise RuntimeError("agg/latest.json is missing: run plants_ingest first")
        logging.getLogger(__name__).info("dataset %s from agg/latest.json (no event)", version)
        return version

    @task(execution_timeout=execution_timeout(get_training_settings()))
    def train(dataset_version: str) -> dict:
        from plantops_orchestration.config import get_settings
        from plantops_orchestration.training import run_training

        return run_training(get_settings(), dataset_version)

    version = resolve_dataset_version()
    launcher = get_training_settings().train_launcher
    # The providers are imported only by the launcher that needs them.
    if launcher == "docker":
        from airflow.providers.docker.operators.docker import DockerOperator

        from plantops_orchestration.config import get_settings
        from plantops_orchestration.launchers import (
            DATASET_VERSION_TEMPLATE,
            docker_operator_kwargs,
        )

        kwargs = docker_operator_kwargs(get_settings(), DATASET_VERSION_TEMPLATE)
        version >> DockerOperator(task_id="train", **kwargs)
    elif launcher == "kubernetes":
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

        from plantops_orchestration.launchers import (
            DATASET_VERSION_TEMPLATE,
            kubernetes_pod_operator_kwargs,
        )

        kwargs = kubernetes_pod_operator_kwargs(get_training_settings(), DATASET_VERSION_TEMPLATE)
        version >> KubernetesPodOperator(task_id="train", **kwargs)
    else:
        train(version)


plants_train()
