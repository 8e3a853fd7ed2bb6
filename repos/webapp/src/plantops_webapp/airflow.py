"""Trigger the training DAG through Airflow 3's REST API ("retrain now" on the review page).

Two calls: `POST /auth/token` with the account's name and password gives a JWT access
token (HTTP 201, `{"access_token": ...}`), then `POST /api/v2/dags/{dag_id}/dagRuns` with
`Authorization: Bearer <token>` queues a run. `logical_date` null: a manual run not tied
to a schedule interval. Failures become one error with a message a reviewer can act on.
"""

from __future__ import annotations

import httpx

from plantops_webapp.config import Settings


class RetrainFailed(Exception):
    """Airflow did not queue the run; the message says why, without internals."""


async def trigger_training(settings: Settings, reviewer: str) -> str:
    """Queue a run of the training DAG; return its run id."""
    if not settings.retrain_enabled or settings.airflow_password is None:
        raise RetrainFailed("Retraining is not configured on this server.")
    base = (settings.airflow_url or "").rstrip("/")
    credentials = {
        "username": settings.airflow_username,
        "password": settings.airflow_password.get_secret_value(),
    }
    body = {"logical_date": None, "note": f"retrain requested by reviewer {reviewer}"}
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=3.0)) as http:
            login = await http.post(f"{base}/auth/token", json=credentials)
            if login.status_code not in (200, 201):
                raise RetrainFailed(f"Airflow refused the sign-in (HTTP {login.status_code}).")
            token = login.json().get("access_token")
            run = await http.post(
                f"{base}/api/v2/dags/{settings.airflow_train_dag}/dagRuns",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        raise RetrainFailed("Airflow cannot be reached.") from exc
    except ValueError as exc:  # a sign-in answer that is not JSON
        raise RetrainFailed("Airflow gave an answer this page cannot read.") from exc
    if run.status_code not in (200, 201):
        raise RetrainFailed(
            f"Airflow did not start {settings.airflow_train_dag} (HTTP {run.status_code})."
        )
    try:
        return str(run.json().get("dag_run_id", ""))
    except ValueError:
        return ""
