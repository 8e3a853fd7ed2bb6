"""Test-wide set-up: Airflow reads its config at import, so give it a private home first."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

COMPONENT = Path(__file__).resolve().parents[1]
DAGS = COMPONENT / "dags"


def pytest_configure(config) -> None:
    # Never the user's ~/airflow: a throwaway home, no example DAGs, our DAG folder.
    home = Path(tempfile.mkdtemp(prefix="plantops-airflow-test-"))
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
