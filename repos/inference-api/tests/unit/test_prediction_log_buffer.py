"""The prediction log's bounded buffer and the rolling novelty gauges, without a server.

(S3 itself is in tests/integration/test_prediction_log.py; here nothing is flushed.)
"""

from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest

from plantops_inference_api.config import Settings
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.prediction_log import NoveltyWindow, PredictionLog
from plantops_inference_api.schemas import ModelRef, Prediction

pytestmark = pytest.mark.unit


def settings(**overrides) -> Settings:
    values = {"s3_access_key": "ak", "s3_secret_key": "sk", **overrides}
    return Settings(**values)


def prediction(novelty: float | None, ood: bool | None) -> Prediction:
    return Prediction(
        label="grass",
        confidence=0.9,
        probabilities={"grass": 0.9, "dandelion": 0.1},
        model=ModelRef(name="m", version="1", alias="champion"),
        novelty_score=novelty,
        out_of_distribution=ood,
    )


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    assert value is not None, f"{name} {labels} is not exported"
    return value


def test_a_full_buffer_drops_the_oldest_records_and_counts_them():
    metrics = Metrics()
    log = PredictionLog(
        settings(prediction_log_buffer_records=3, prediction_log_flush_records=2), metrics
    )
    log._client = log._make_client()  # what start() does; no request is made by it
    for n in range(5):
        log.append({"ts": "2026-12-01T00:00:00Z", "n": n})
    assert [record["n"] for record in log._buffer] == [2, 3, 4]
    counted = sample(
        metrics, "plantops_api_prediction_log_dropped_total", {"reason": "buffer_full"}
    )
    assert counted == 2
    assert sample(metrics, "plantops_api_prediction_log_buffered") == 3


def test_without_s3_credentials_the_log_is_off_and_records_nothing():
    metrics = Metrics()
    log = PredictionLog(Settings(), metrics)
    assert not log.enabled
    log.append({"ts": "2026-12-01T00:00:00Z"})
    assert len(log._buffer) == 0


def test_the_buffer_must_hold_at_least_one_flush():
    with pytest.raises(ValueError, match="BUFFER_RECORDS must be at least"):
        settings(prediction_log_buffer_records=10, prediction_log_flush_records=50)


def test_a_flush_interval_over_30_s_is_refused():
    with pytest.raises(ValueError, match="30"):
        settings(prediction_log_flush_interval_s=60)


def test_the_rolling_ood_ratio_covers_the_last_n_scored_predictions():
    metrics = Metrics()
    assert math.isnan(sample(metrics, "plantops_api_out_of_distribution_ratio"))
    window = NoveltyWindow(4, metrics)
    window.observe(prediction(None, None))  # a legacy model: not counted either way
    assert math.isnan(sample(metrics, "plantops_api_out_of_distribution_ratio"))
    for ood in (True, True, False, False, False, True):
        window.observe(prediction(2.0 if ood else 0.2, ood))
    # The window keeps the last four: False, False, False, True.
    assert sample(metrics, "plantops_api_out_of_distribution_ratio") == pytest.approx(0.25)
    assert sample(metrics, "plantops_api_out_of_distribution_window_size") == 4
    assert sample(metrics, "plantops_api_novelty_score_count") == 6
    assert sample(metrics, "plantops_api_novelty_score_bucket", {"le": "0.25"}) == 3
    assert b"plantops_api_prediction_log_dropped_total" in generate_latest(metrics.registry)
