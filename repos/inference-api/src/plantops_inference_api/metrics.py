"""Prometheus metrics of one app, with bounded labels only.

Labels are route templates (never raw paths), HTTP methods and status codes, the
model's own labels and a fixed set of load stages. Each app has its own registry, so
several apps in one process (tests) never clash.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# Novelty scores have the scale of the model's method (a distance, an energy): wide,
# roughly logarithmic bounds cover them all; the threshold is in GET /v1/model.
NOVELTY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "plantops_api_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "plantops_api_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "plantops_api_predictions_total",
            "Predictions by predicted label.",
            ["label"],
            registry=r,
        )
        self.confidence = Histogram(
            "plantops_api_prediction_confidence",
            "Probability of the predicted label.",
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.rejected_images = Counter(
            "plantops_api_rejected_images_total",
            "Images refused, by error code.",
            ["error"],
            registry=r,
        )
        self.batch_size = Histogram(
            "plantops_api_inference_batch_size",
            "Images per onnxruntime run (requests that arrived together).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        # Admission and the stages of a prediction (modelled on kserve's per-step
        # histograms), so that a slow p99 can be told apart: decoding, waiting, inference.
        self.admission_rejected = Counter(
            "plantops_api_admission_rejected_total",
            "Prediction requests refused with 503 because the server was full.",
            registry=r,
        )
        self.in_flight = Gauge(
            "plantops_api_requests_in_flight",
            "Prediction requests admitted and not yet answered (served or queued).",
            registry=r,
        )
        self.queue_depth = Gauge(
            "plantops_api_inference_queue_depth",
            "Preprocessed images waiting for an onnxruntime run.",
            registry=r,
        )
        self.stage_latency = Histogram(
            "plantops_api_stage_duration_seconds",
            "Time per image in each stage: preprocess (decode and preprocess, with the wait "
            "for a decode thread), queue (waiting for a batch), inference (its batch's run).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Info("plantops_api_model", "The model version serving now.", registry=r)
        self.model_ready = Gauge(
            "plantops_api_model_ready", "1 when a model is loaded and serving.", registry=r
        )
        self.model_loads = Counter(
            "plantops_api_model_loads_total", "Model versions loaded and swapped in.", registry=r
        )
        self.model_load_failures = Counter(
            "plantops_api_model_load_failures_total",
            "Failed model loads by stage (registry, download, verify).",
            ["stage"],
            registry=r,
        )
        # Novelty (prediction_log.NoveltyWindow): NaN until a scored prediction arrives,
        # so a model without a novelty reference reads "unknown", never "0 %".
        self.ood_ratio = Gauge(
            "plantops_api_out_of_distribution_ratio",
            "Share of out-of-distribution answers among the last PLANTOPS_NOVELTY_WINDOW "
            "predictions that carry a novelty score.",
            registry=r,
        )
        self.ood_ratio.set(float("nan"))
        self.ood_window_size = Gauge(
            "plantops_api_out_of_distribution_window_size",
            "Scored predictions in that window (it fills up to PLANTOPS_NOVELTY_WINDOW).",
            registry=r,
        )
        self.novelty_score = Histogram(
            "plantops_api_novelty_score",
            "Novelty score of each prediction (model without a novelty reference: none).",
            buckets=NOVELTY_BUCKETS,
            registry=r,
        )
        # The prediction log (prediction_log.py).
        self.log_written = Counter(
            "plantops_api_prediction_log_written_total",
            "Prediction records written to S3.",
            registry=r,
        )
        self.log_dropped = Counter(
            "plantops_api_prediction_log_dropped_total",
            "Prediction records lost: buffer_full (oldest dropped), s3_error (a failed "
            "flush), shutdown (the last flush timed out).",
            ["reason"],
            registry=r,
        )
        for reason in ("buffer_full", "s3_error", "shutdown"):
            self.log_dropped.labels(reason=reason)  # 0 from the start: rate() works at once
        self.log_buffered = Gauge(
            "plantops_api_prediction_log_buffered",
            "Prediction records waiting for the next flush.",
            registry=r,
        )
