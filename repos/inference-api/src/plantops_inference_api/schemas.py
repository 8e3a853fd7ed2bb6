"""The wire types of the API (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable code, e.g. invalid_image, too_large.")
    message: str = Field(description="What went wrong and what to do about it.")


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str


class Prediction(BaseModel):
    label: str = Field(description="The most probable label.")
    confidence: float = Field(description="The probability of `label`.")
    probabilities: dict[str, float] = Field(description="Every label the model knows; sums to 1.")
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


class BatchItem(BaseModel):
    index: int = Field(description="Position of the file in the request.")
    filename: str | None
    prediction: Prediction | None = None
    error: ErrorResponse | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem] = Field(description="One result per file, in request order.")


class NoveltyInfo(BaseModel):
    method: str = Field(description="How novelty_score is computed, e.g. knn_cosine.")
    threshold: float = Field(description="out_of_distribution is true above this score.")
    false_alarm_rate: float = Field(
        description="Share of the validation photos (labels the model knows) above the "
        "threshold, measured when the model was trained."
    )


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str | None
    source_uri: str | None
    dataset_version: str | None
    test_accuracy: float | None
    trained_at: datetime | None = Field(description="When the training run ended.")
    labels: list[str]
    input_size: list[int] = Field(description="[channels, height, width] of one model input.")
    preprocessing: dict = Field(description="The model's preprocessing.json.")
    loaded_at: datetime
    novelty: NoveltyInfo | None = Field(
        default=None,
        description="The novelty threshold and its validation false-alarm rate; null for a "
        "model exported without a novelty reference (its predictions' novelty fields are null).",
    )


class ReloadResponse(BaseModel):
    reloaded: bool = Field(description="False when the alias still points at the serving version.")
    model: ModelInfo


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_version: str | None = None
    reason: str | None = None
