"""Train/serve skew check: the API's probabilities against training's own evaluation.

Training logs `model/test_predictions.csv` (`key,sha256,label,prob_<label>...`) beside
the served model, computed with its preprocessing on the test split. This sends each
of those images (read from `PLANTOPS_S3_BUCKET` by key) to a running API and compares
every probability: they must agree within the tolerance.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import httpx

from plantops_inference_api.config import Settings
from plantops_inference_api.registry import S3Location, s3_client

PREDICTIONS_FILE = "test_predictions.csv"


@dataclass(frozen=True)
class SkewReport:
    images: int
    max_abs_diff: float
    worst_key: str | None
    version: str

    def ok(self, tolerance: float) -> bool:
        return self.images > 0 and self.max_abs_diff <= tolerance


def read_test_predictions(settings: Settings, model_folder_uri: str) -> list[dict[str, str]]:
    location = S3Location.parse(model_folder_uri)
    response = s3_client(settings).get_object(
        location.bucket, f"{location.prefix}/{PREDICTIONS_FILE}"
    )
    try:
        return list(csv.DictReader(io.StringIO(response.read().decode())))
    finally:
        response.close()
        response.release_conn()


def check_skew(settings: Settings, api_url: str, data_bucket: str, limit: int = 0) -> SkewReport:
    """Compare the API with the served version's `test_predictions.csv`."""
    with httpx.Client(base_url=api_url, timeout=60) as api:
        served = api.get("/v1/model").raise_for_status().json()
        rows = read_test_predictions(settings, served["source_uri"])
        rows = rows[:limit] if limit else rows
        client = s3_client(settings)
        worst, worst_key = 0.0, None
        for row in rows:
            image = client.get_object(data_bucket, row["key"])
            try:
                data = image.read()
            finally:
                image.close()
                image.release_conn()
            answer = api.post("/v1/predict", files={"file": (row["key"], data)}).raise_for_status()
            probabilities = answer.json()["probabilities"]
            for label, served_p in probabilities.items():
                diff = abs(served_p - float(row[f"prob_{label}"]))
                if diff > worst:
                    worst, worst_key = diff, row["key"]
    return SkewReport(len(rows), worst, worst_key, served["version"])
