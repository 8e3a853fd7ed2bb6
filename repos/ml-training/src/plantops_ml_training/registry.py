"""The MLflow model registry: versions, the `challenger`/`champion` aliases and the gate.

A new version always becomes `challenger`. The gate moves `champion` to it only if its
test accuracy is at least the floor and at least the current champion's accuracy on
the *same* test images (the champion's ONNX model is re-evaluated, so a dataset change
never compares numbers from different test sets), **and** it is not worse than the
champion on the field check, compared photo by photo: the photos the champion gets
right and the challenger wrong may outnumber the reverse by at most a tolerance (one
grass photo is 3.7 points of grass recall, so a plain accuracy difference is noise).
Every move of `champion` is recorded in the registered model's `champion_history` tag,
which `rollback` walks back.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from plantops_ml_training.config import REGISTERED_MODEL
from plantops_ml_training.field_check import PairedComparison

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"


class RegistryError(Exception):
    """MLflow cannot do what was asked; the message says what to do."""


def check_tracking_server(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (seconds, not minutes of client retries) when MLflow does not answer."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RegistryError(
            f"MLflow tracking server {uri} does not answer ({exc}). Start the stack "
            "(`make up`) or set PLANTOPS_MLFLOW_TRACKING_URI."
        ) from exc


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def gate(
    candidate_accuracy: float,
    champion_accuracy: float | None,
    floor: float,
    field: PairedComparison | None = None,
    tolerance: int = 2,
) -> Decision:
    """Whether a candidate should become champion, and why (pure: no MLflow).

    `field` pairs the candidate with the champion on the field check; None when there
    is no champion or no field check (the caller says which in the reason).
    """
    if candidate_accuracy < floor:
        return Decision(False, f"test accuracy {candidate_accuracy:.4f} is below the floor {floor}")
    if champion_accuracy is None:
        return Decision(True, f"no champion yet; test accuracy {candidate_accuracy:.4f} >= floor")
    if candidate_accuracy < champion_accuracy:
        return Decision(
            False,
            f"test accuracy {candidate_accuracy:.4f} < champion's {champion_accuracy:.4f} "
            "on the same test split",
        )
    on_test = (
        f"test accuracy {candidate_accuracy:.4f} >= champion's {champion_accuracy:.4f} "
        f"on the same test split, and >= floor {floor}"
    )
    if field is None:
        return Decision(True, on_test)
    if field.worse_beyond(tolerance):
        return Decision(False, f"worse than the champion on the {field.describe(tolerance)}")
    return Decision(True, f"{on_test}; not worse on the {field.describe(tolerance)}")


def _alias_version(client: MlflowClient, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def champion(client: MlflowClient) -> ModelVersion | None:
    return _alias_version(client, CHAMPION)


def register_challenger(client: MlflowClient, run_id: str, artifact_uri: str) -> ModelVersion:
    """Create a model version from the run's `model/` folder and make it `challenger`."""
    try:
        client.get_registered_model(REGISTERED_MODEL)
    except MlflowException:
        client.create_registered_model(
            REGISTERED_MODEL,
            description="PlantOps image classifier: ONNX model + preprocessing.json.",
        )
    version = client.create_model_version(
        REGISTERED_MODEL, source=f"{artifact_uri.rstrip('/')}/model", run_id=run_id
    )
    client.set_registered_model_alias(REGISTERED_MODEL, CHALLENGER, version.version)
    return version


def _history(client: MlflowClient) -> list[str]:
    tags = client.get_registered_model(REGISTERED_MODEL).tags
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def set_champion(client: MlflowClient, version: str, reason: str) -> None:
    """Point `champion` at a version, remember the move and record why on the version."""
    client.get_model_version(REGISTERED_MODEL, version)  # raises if it does not exist
    history = [v for v in _history(client) if v != version] + [version]
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    client.set_registered_model_tag(REGISTERED_MODEL, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(REGISTERED_MODEL, version, "promotion_reason", reason)


def promote(client: MlflowClient, version: str) -> str:
    """Make a version champion by hand (no gate): the escape hatch for an operator."""
    try:
        set_champion(client, version, "promoted by hand (plantops-train promote)")
    except MlflowException as exc:
        raise RegistryError(
            f"Model version {version} of {REGISTERED_MODEL} does not exist."
        ) from exc
    return version


def rollback(client: MlflowClient) -> str:
    """Move `champion` back to the version that held it before; return that version."""
    current = champion(client)
    history = _history(client)
    if current is None or len(history) < 2:
        raise RegistryError("Nothing to roll back to: there is no earlier champion.")
    history = [v for v in history if v != current.version]
    previous = history[-1]
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, previous)
    client.set_registered_model_tag(REGISTERED_MODEL, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(REGISTERED_MODEL, current.version, "rolled_back", "true")
    return previous
