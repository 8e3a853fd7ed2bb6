"""Prometheus metrics of the web app, in a registry per app so tests do not share counters.

Labels are bounded: the route template (never the raw path), the method, the status
code, and for feedback the model's own labels (every proposed new name counts as
"(new)") and a three-valued verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class WebappMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "plantops_webapp_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "plantops_webapp_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "plantops_webapp_predictions_total",
            "Predictions shown to users, by predicted label.",
            ["label"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "plantops_webapp_feedback_total",
            "Feedback received, by the label given ((new) for a proposed new label) and the "
            "verdict (correct, corrected or proposed).",
            ["label", "verdict"],
            registry=self.registry,
        )
        self.api_errors = Counter(
            "plantops_webapp_api_errors_total",
            "Calls to the inference API that failed, by kind (unavailable, busy or rejected).",
            ["kind"],
            registry=self.registry,
        )
