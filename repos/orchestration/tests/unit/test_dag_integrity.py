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
    assert set(dagbag.dags) == {"plants_ingest", "plants_train"}
    assert len(list(DAGS.glob("*.py"))) == len(dagbag.dags)  # one DAG per file


@pytest.mark.parametrize("dag_id", ["plants_ingest", "plants_train"])
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
