"""Resolve a registered model's alias through MLflow's REST API and download it from S3.

No MLflow client library: two REST calls (alias -> model version, run -> tags and
metrics), then the `minio` client fetches `model.onnx` and `preprocessing.json` from
the version's source folder `s3://<bucket>/.../artifacts/model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
import urllib3
from minio import Minio

from plantops_inference_api.config import Settings
from plantops_inference_api.errors import ModelLoadError
from plantops_inference_api.model import MODEL_FILE, SPEC_FILE, ModelSource
from plantops_inference_api.preprocessing import PreprocessingSpec
from plantops_inference_api.s3_retry import s3_retry


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no trailing slash

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ModelLoadError("registry", f"model source {uri!r} is not an s3:// URI")
        return cls(parsed.netloc, parsed.path.strip("/"))


class Registry:
    """The MLflow model registry, read through its REST API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = settings.mlflow_tracking_uri.rstrip("/") + "/api/2.0/mlflow"

    def _get(self, client: httpx.Client, path: str, params: dict[str, str]) -> dict:
        try:
            response = client.get(f"{self.base_url}/{path}", params=params)
        except httpx.HTTPError as exc:
            raise ModelLoadError(
                "registry", f"MLflow at {self.settings.mlflow_tracking_uri} is unreachable: {exc}"
            ) from exc
        if response.status_code == 404 and path == "registered-models/alias":
            raise ModelLoadError(
                "registry",
                f"MLflow has no version of '{params['name']}' with the alias '{params['alias']}' "
                "yet: train and promote a model",
            )
        if response.status_code != 200:
            raise ModelLoadError(
                "registry",
                f"MLflow answered {response.status_code} to {path}: {_mlflow_message(response)}",
            )
        return response.json()

    def resolve(self) -> ModelSource:
        """The model version the alias points at now, with its run's tags and metrics."""
        name, alias = self.settings.model_name, self.settings.model_alias
        with httpx.Client(timeout=self.settings.mlflow_timeout_s) as client:
            body = self._get(client, "registered-models/alias", {"name": name, "alias": alias})
            version = body.get("model_version") or {}
            run_id = version.get("run_id") or None
            run = self._get(client, "runs/get", {"run_id": run_id}).get("run", {}) if run_id else {}
        data = run.get("data", {})
        tags = {t["key"]: t["value"] for t in data.get("tags", [])}
        metrics = {m["key"]: m["value"] for m in data.get("metrics", [])}
        return ModelSource(
            name=name,
            version=str(version.get("version", "")),
            alias=alias,
            run_id=run_id,
            source_uri=_model_folder_uri(version.get("source", ""), run),
            dataset_version=tags.get("dataset_version"),
            test_accuracy=metrics.get("test_accuracy"),
            trained_at=_run_finished_at(run),
        )


def _run_finished_at(run: dict) -> datetime | None:
    """When the training run ended (or started, while it is still running)."""
    info = run.get("info", {})
    millis = info.get("end_time") or info.get("start_time")
    return datetime.fromtimestamp(int(millis) / 1000, tz=UTC) if millis else None


def _mlflow_message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:200]
    except ValueError:
        return response.text[:200]


def _model_folder_uri(source: str, run: dict) -> str:
    """The S3 folder holding the model files.

    The contract makes a version's source the run's `.../artifacts/model` S3 folder; a
    `runs:/` or `models:/` source (what other MLflow calls record) falls back to the
    run's artifact folder + `model`.
    """
    if source.startswith("s3://"):
        return source.rstrip("/")
    artifact_uri = run.get("info", {}).get("artifact_uri", "")
    if artifact_uri.startswith("s3://"):
        return artifact_uri.rstrip("/") + "/model"
    raise ModelLoadError("registry", f"cannot locate the model files of source {source!r}")


def s3_client(settings: Settings) -> Minio:
    access = settings.s3_access_key.get_secret_value() if settings.s3_access_key else None
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
    # The one S3 retry policy; a load that still fails is retried by the model manager.
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=60), retries=s3_retry())
    return Minio(settings.s3_endpoint, access, secret, secure=settings.s3_secure, http_client=http)


def download_model_files(settings: Settings, source_uri: str, folder: Path) -> None:
    """Fetch `model.onnx`, `preprocessing.json` and the novelty parameters it names (when
    it names any) from the source folder into `folder`."""
    location = S3Location.parse(source_uri)
    client = s3_client(settings)
    _fetch(client, location, SPEC_FILE, folder)
    names = [MODEL_FILE]
    try:
        spec = PreprocessingSpec.read(folder / SPEC_FILE)
    except ValueError:
        spec = None  # load_model_dir refuses it with the reason
    if spec is not None and spec.novelty is not None:
        names.append(spec.novelty.params_file)
    for name in names:
        _fetch(client, location, name, folder)


def _fetch(client: Minio, location: S3Location, name: str, folder: Path) -> None:
    key = f"{location.prefix}/{name}" if location.prefix else name
    try:
        client.fget_object(location.bucket, key, str(folder / name))
    except Exception as exc:  # S3Error, connection errors, timeouts
        raise ModelLoadError(
            "download", f"cannot download s3://{location.bucket}/{key}: {exc}"
        ) from exc
