"""MLflow through its REST API (Airflow's environment has no mlflow): the champion's
model version, and the monitoring runs.

Artifacts go straight to S3 (the tracking server runs with --no-serve-artifacts): a run's
`artifact_uri` is an s3:// folder, written with the `minio` client like every S3 object.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlparse

import httpx


class TrackingError(RuntimeError):
    """MLflow refused or could not be reached (the task fails; Airflow retries it)."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str | None
    source_uri: str  # the s3:// folder of model.onnx, preprocessing.json, reference.json
    trained_at: datetime | None  # the training run's end


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise TrackingError(f"{uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.strip("/")


class MlflowRest:
    def __init__(self, tracking_uri: str, timeout_s: float = 10.0) -> None:
        self.tracking_uri = tracking_uri
        self._http = httpx.Client(
            base_url=tracking_uri.rstrip("/") + "/api/2.0/mlflow/", timeout=timeout_s
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise TrackingError(f"MLflow at {self.tracking_uri} is unreachable: {error}") from error

    def _ok(self, response: httpx.Response, what: str) -> dict:
        if response.status_code != 200:
            raise TrackingError(
                f"MLflow answered {response.status_code} to {what}: {response.text[:200]}"
            )
        return response.json()

    def model_version(self, name: str, alias: str) -> ModelVersion | None:
        """The version `alias` points at, or None when there is none yet."""
        response = self._call(
            "GET", "registered-models/alias", params={"name": name, "alias": alias}
        )
        if response.status_code == 404:
            return None
        version = self._ok(response, "registered-models/alias").get("model_version", {})
        run_id = version.get("run_id") or None
        run: dict = {}
        if run_id:
            run = self._ok(self._call("GET", "runs/get", params={"run_id": run_id}), "runs/get")
            run = run.get("run", {})
        info = run.get("info", {})
        source = str(version.get("source", ""))
        if not source.startswith("s3://"):  # runs:/ or models:/ sources: the run's model/ folder
            source = str(info.get("artifact_uri", "")).rstrip("/") + "/model"
        millis = info.get("end_time") or info.get("start_time")
        return ModelVersion(
            name=name,
            version=str(version.get("version", "")),
            run_id=run_id,
            source_uri=source.rstrip("/"),
            trained_at=datetime.fromtimestamp(int(millis) / 1000, tz=UTC) if millis else None,
        )

    def experiment_id(self, name: str) -> str:
        """The experiment named `name`, created when missing."""
        response = self._call("GET", "experiments/get-by-name", params={"experiment_name": name})
        if response.status_code == 200:
            return str(response.json()["experiment"]["experiment_id"])
        created = self._call("POST", "experiments/create", json={"name": name})
        return str(self._ok(created, "experiments/create")["experiment_id"])

    def start_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> tuple[str, str]:
        """(run_id, artifact_uri) of a new run."""
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": int(time.time() * 1000),
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        run = self._ok(self._call("POST", "runs/create", json=body), "runs/create")["run"]["info"]
        return str(run["run_id"]), str(run["artifact_uri"])

    def log_batch(self, run_id: str, metrics: dict[str, float], params: dict[str, str]) -> None:
        stamp = int(time.time() * 1000)
        body = {
            "run_id": run_id,
            "metrics": [
                {"key": k, "value": v, "timestamp": stamp, "step": 0} for k, v in metrics.items()
            ],
            "params": [{"key": k, "value": v} for k, v in params.items()],
        }
        self._ok(self._call("POST", "runs/log-batch", json=body), "runs/log-batch")

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        body = {"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)}
        self._ok(self._call("POST", "runs/update", json=body), "runs/update")
