"""The inference API's answers, as far as the web app relies on them.

tests/unit/test_contracts.py checks them against the API's OpenAPI (vendored in
`contracts/vendored/inference-api/openapi.json`).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ModelRef(BaseModel):
    """Which model answered a prediction."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    name: str
    version: str
    alias: str  # the API always names the alias it serves (its ModelRef)


class Prediction(BaseModel):
    """`POST /v1/predict`: the label, its confidence and a probability per known label, and
    whether the photo looks like anything the model was trained on (null from an API or a
    model without novelty scoring: the page then shows the label as before)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    label: str
    confidence: float
    probabilities: dict[str, float]
    novelty_score: float | None = Field(
        default=None,
        description="How unlike the training photos this photo is (higher: less familiar). "
        "Null only for a model exported without a novelty reference.",
    )
    out_of_distribution: bool | None = Field(
        default=None,
        description="True when novelty_score is above the model's threshold: the photo does "
        "not look like any label the model knows. Null without a novelty reference.",
    )
    model: ModelRef

    @property
    def unfamiliar(self) -> bool:
        """The model says the photo is none of its labels (False when it cannot tell)."""
        return self.out_of_distribution is True

    def labels(self) -> list[str]:
        """The model's labels, in the API's order."""
        return list(self.probabilities)

    def ranked(self) -> list[tuple[str, float]]:
        """Labels from the most to the least probable, for the bars on the result page."""
        return sorted(self.probabilities.items(), key=lambda item: item[1], reverse=True)


class NoveltyInfo(BaseModel):
    """`GET /v1/model` `novelty`: how the model decides a photo is none of its labels."""

    model_config = ConfigDict(extra="ignore")

    method: str
    threshold: float
    # Share of in-distribution validation photos above the threshold.
    false_alarm_rate: float


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
    # Null (or absent, from an older API) for a model without a novelty reference.
    novelty: NoveltyInfo | None = None
