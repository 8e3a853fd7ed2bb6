"""The inference API's answers, as far as the web app relies on them.

tests/unit/test_contracts.py checks them against the API's OpenAPI (vendored in
`contracts/vendored/inference-api/openapi.json`).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ModelRef(BaseModel):
    """Which model answered a prediction."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    name: str
    version: str
    alias: str  # the API always names the alias it serves (its ModelRef)


class Prediction(BaseModel):
    """`POST /v1/predict`: the label, its confidence and a probability per known label."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    label: str
    confidence: float
    probabilities: dict[str, float]
    model: ModelRef

    def ranked(self) -> list[tuple[str, float]]:
        """Labels from the most to the least probable, for the bars on the result page."""
        return sorted(self.probabilities.items(), key=lambda item: item[1], reverse=True)


class ModelInfo(BaseModel):
    """`GET /v1/model`: the served model. Fields beyond name, version and alias are optional so
    an older API still gives a page; fields not listed here (the artifact location, the
    preprocessing spec) are not shown to users."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    name: str
    version: str
    alias: str
    run_id: str | None = None
    dataset_version: str | None = None
    test_accuracy: float | None = None
    labels: list[str] = []
    input_size: list[int] = []
    # When the training run ended (the API's `trained_at`); shown when the API provides it.
    trained_at: datetime | None = None
    loaded_at: datetime | None = None
