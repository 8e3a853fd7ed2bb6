"""The drift check behind `plants_monitor`: the prediction log against the champion's reference.

One run:
1. the window: from the previous run's end (`monitoring/state.json`) to now minus
   `monitor_settle_s`, by the time each log object was written (S3 last-modified); the
   first run looks back `monitor_first_window_h`, no run further than `monitor_max_window_h`;
2. the records of that window (predictions/date=.../*.jsonl, the inference API's log)
   answered by the champion version; other versions are counted, not compared;
3. the champion's `reference.json` (MLflow alias -> version source -> S3);
4. four checks (`evaluate`), each drifting only when it is both significant and large:
   - out-of-distribution rate: the one-sided Fisher exact test of "the stream's share
     is no higher than the reference's validation photos' share" (both counted)
     rejects at `monitor_alpha` AND the rate is at least `monitor_ood_margin` above the
     reference's;
   - novelty scores and confidences: the two-sample KS test rejects at `monitor_alpha`
     AND its statistic D is at least `monitor_ks_min_statistic`;
   - predicted-label mix: PSI at least `monitor_psi_threshold` (0.25: the usual "large
     shift" rule);
   fewer than `monitor_min_records` records: "not enough data", never drift, and the
   window is kept open so the next run adds to it;
5. when there is drift, the accepted feedback waiting since the champion was trained
   (the webapp's "accepted since champion" query): retraining is asked for only when
   both are true;
6. the report (JSON) and its plot (SVG) to `monitoring/reports/<run time>/`, the pointer
   `monitoring/reports/latest.json`, an MLflow run in `plantops-monitoring`, the state.

The thresholds were fixed before any data was looked at; none is tuned on field-check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from plantops_orchestration import db, drift
from plantops_orchestration.config import Settings
from plantops_orchestration.contract_files import (
    PREDICTION_LOG_SCHEMA,
    REFERENCE_SCHEMA,
    first_problem,
)
from plantops_orchestration.drift_plot import drift_svg
from plantops_orchestration.storage import (
    StorageError,
    get_json,
    make_client,
    put_bytes,
    put_json,
)
from plantops_orchestration.tracking import MlflowRest, ModelVersion, split_s3_uri

log = logging.getLogger(__name__)

PREDICTIONS_PREFIX = "predictions"
STATE_KEY = "monitoring/state.json"
REPORTS_PREFIX = "monitoring/reports"
LATEST_REPORT_KEY = f"{REPORTS_PREFIX}/latest.json"
REFERENCE_FILE = "reference.json"
RECORD_FIELDS = (
    "ts", "request_id", "model_name", "model_version", "label", "confidence",
    "probabilities", "novelty_score", "out_of_distribution", "image_sha256", "latency_ms",
)  # fmt: skip


class MonitoringError(RuntimeError):
    """The check cannot run (no champion, a broken reference): the task fails and says why."""


@dataclass(frozen=True)
class Reference:
    """The champion's monitoring reference (ml-training's reference.json, format_version 1)."""

    labels: list[str]
    threshold: float | None
    false_alarm_rate: float | None
    label_mix: dict[str, float]
    novelty_scores: list[float]
    confidences: list[float]

    @classmethod
    def parse(cls, data: Any) -> Reference:
        """A reference.json checked against ml-training's contract (vendored)."""
        problem = first_problem(REFERENCE_SCHEMA, data)
        if problem is not None:
            raise MonitoringError(f"reference.json breaks {REFERENCE_SCHEMA} at {problem}")
        threshold, far = data["threshold"], data["false_alarm_rate"]
        return cls(
            labels=[str(label) for label in data["labels"]],
            threshold=None if threshold is None else float(threshold),
            false_alarm_rate=None if far is None else float(far),
            label_mix={str(k): float(v) for k, v in data["label_mix"].items()},
            novelty_scores=[float(v) for v in data["novelty_scores"]],
            confidences=[float(v) for v in data["confidences"]],
        )


@dataclass
class Window:
    start: datetime
    end: datetime
    objects: int = 0
    invalid_lines: int = 0


# ------------------------------------------------------------------ the statistics


def evaluate(records: list[dict], reference: Reference, settings: Settings) -> dict[str, Any]:
    """The four checks on the champion's records of one window (no I/O)."""
    n = len(records)
    base: dict[str, Any] = {"records": n, "min_records": settings.monitor_min_records}
    if n < settings.monitor_min_records:
        return {**base, "status": "not_enough_data", "drift": False, "checks": {}}
    scored = [r for r in records if r["novelty_score"] is not None]
    flagged = [r for r in scored if r["out_of_distribution"] is not None]
    checks: dict[str, Any] = {
        "ood_rate": None,
        "novelty_ks": None,
        "label_psi": None,
        "confidence_ks": None,
    }
    far = reference.false_alarm_rate
    if len(flagged) >= settings.monitor_min_records and far is not None:
        checks["ood_rate"] = _ood_check(flagged, reference, settings)
    if len(scored) >= settings.monitor_min_records and reference.novelty_scores:
        checks["novelty_ks"] = _ks_check(
            [float(r["novelty_score"]) for r in scored], reference.novelty_scores, settings
        )
    if reference.confidences:
        checks["confidence_ks"] = _ks_check(
            [float(r["confidence"]) for r in records], reference.confidences, settings
        )
    observed_mix = drift.label_fractions([str(r["label"]) for r in records])
    psi = drift.psi(observed_mix, reference.label_mix)
    checks["label_psi"] = {
        "psi": psi,
        "observed": observed_mix,
        "reference": reference.label_mix,
        "drift": psi >= settings.monitor_psi_threshold,
    }
    drifted = sorted(name for name, check in checks.items() if check and check["drift"])
    return {
        **base,
        "status": "drift" if drifted else "no_drift",
        "drift": bool(drifted),
        "drifted_checks": drifted,
        "checks": checks,
    }


def _ood_check(flagged: list[dict], reference: Reference, settings: Settings) -> dict[str, Any]:
    """The stream's out-of-distribution share against the validation photos' share.

    Both are counted, so the test is Fisher's exact test, not a binomial test against
    the reference rate: a reference of 40 photos with no false alarm measures a rate of
    0, and against a rate of 0 every flagged photo would be "significant" (an ordinary
    stream of new photos, 5 of 100 flagged, read as drift).
    """
    k = sum(bool(r["out_of_distribution"]) for r in flagged)
    n = len(flagged)
    far = reference.false_alarm_rate or 0.0
    reference_n = len(reference.novelty_scores)
    threshold = reference.threshold
    if threshold is not None:
        reference_k = sum(score > threshold for score in reference.novelty_scores)
    else:  # no threshold: the rate as the reference states it
        reference_k = round(far * reference_n)
    p_value = drift.fisher_greater(k, n, reference_k, reference_n)
    rate = k / n
    return {
        "observed": rate,
        "out_of_distribution": k,
        "scored": n,
        "reference_false_alarm_rate": far,
        "reference_out_of_distribution": reference_k,
        "reference_photos": reference_n,
        "test": "one-sided Fisher exact, against the reference photos' count",
        "p_value": p_value,
        "drift": p_value < settings.monitor_alpha and rate >= far + settings.monitor_ood_margin,
    }


def _ks_check(sample: list[float], reference: list[float], settings: Settings) -> dict[str, Any]:
    statistic, p_value = drift.ks_2samp(sample, reference)
    return {
        "statistic": statistic,
        "p_value": p_value,
        "sample_median": _median(sample),
        "reference_median": _median(reference),
        "drift": p_value < settings.monitor_alpha
        and statistic >= settings.monitor_ks_min_statistic,
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# ------------------------------------------------------------------ reading


def parse_record(line: str) -> dict | None:
    """One log line as a record of the API's contract (vendored), or None when it is not one
    (counted, skipped)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if first_problem(PREDICTION_LOG_SCHEMA, record) is not None:
        return None
    return record


def read_records(client: Minio, bucket: str, window: Window) -> list[dict]:
    """Every record in the log objects written within the window (start exclusive)."""
    records: list[dict] = []
    day = window.start.date()
    while day <= window.end.date():
        prefix = f"{PREDICTIONS_PREFIX}/date={day.isoformat()}/"
        for obj in _list(client, bucket, prefix):
            modified = obj.last_modified
            if modified is None or not (window.start < modified <= window.end):
                continue
            window.objects += 1
            for line in _read_text(client, bucket, obj.object_name).splitlines():
                if not line.strip():
                    continue
                record = parse_record(line)
                if record is None:
                    window.invalid_lines += 1
                else:
                    records.append(record)
        day += timedelta(days=1)
    return records


def _list(client: Minio, bucket: str, prefix: str) -> Iterable:
    try:
        return list(client.list_objects(bucket, prefix=prefix, recursive=True))
    except (S3Error, Urllib3Error, OSError) as error:
        raise StorageError(f"could not list s3://{bucket}/{prefix}: {error}") from error


def _read_text(client: Minio, bucket: str, key: str) -> str:
    try:
        response = client.get_object(bucket, key)
    except (S3Error, Urllib3Error, OSError) as error:
        raise StorageError(f"could not read s3://{bucket}/{key}: {error}") from error
    try:
        return response.read().decode("utf-8", errors="replace")
    finally:
        response.close()
        response.release_conn()


def load_reference(client: Minio, champion: ModelVersion) -> Reference | None:
    """The champion's reference.json, or None for a model exported without one."""
    bucket, prefix = split_s3_uri(champion.source_uri)
    key = f"{prefix}/{REFERENCE_FILE}" if prefix else REFERENCE_FILE
    data = get_json(client, bucket, key)
    return None if data is None else Reference.parse(data)


def next_window(state: dict | None, now: datetime, settings: Settings) -> Window:
    end = now - timedelta(seconds=settings.monitor_settle_s)
    oldest = end - timedelta(hours=settings.monitor_max_window_h)
    if state and state.get("window_start"):
        start = datetime.fromisoformat(state["window_start"])
    else:
        start = end - timedelta(hours=settings.monitor_first_window_h)
    return Window(start=max(start, oldest), end=end)


# ------------------------------------------------------------------ one run


def run_monitor(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Check the window since the previous run; write and log the report; return it."""
    now = now or datetime.now(UTC)
    client = make_client(settings)
    bucket = settings.s3_bucket
    window = next_window(get_json(client, bucket, STATE_KEY), now, settings)
    mlflow = MlflowRest(settings.mlflow_tracking_uri)
    try:
        champion = mlflow.model_version(settings.model_name, settings.model_alias)
        if champion is None:
            raise MonitoringError(
                f"MLflow has no {settings.model_name}@{settings.model_alias}: train a model first"
            )
        reference = load_reference(client, champion)
        records = read_records(client, bucket, window)
        served = [
            r
            for r in records
            if r["model_name"] == champion.name and str(r["model_version"]) == champion.version
        ]
        if reference is None:
            result: dict[str, Any] = {
                "records": len(served),
                "min_records": settings.monitor_min_records,
                "status": "no_reference",
                "drift": False,
                "checks": {},
            }
        else:
            result = evaluate(served, reference, settings)
        report: dict[str, Any] = {
            "drift": result.pop("drift"),
            "status": result.pop("status"),
            "retrain": False,
            **result,
            "window": {"start": _iso(window.start), "end": _iso(window.end)},
            "log_objects": window.objects,
            "invalid_lines": window.invalid_lines,
            "records_other_versions": len(records) - len(served),
            "model": {
                "name": champion.name,
                "version": champion.version,
                "trained_at": _iso(champion.trained_at) if champion.trained_at else None,
            },
            "accepted_feedback_since_champion": None,
            "generated_at": _iso(now),
        }
        if report["drift"]:
            waiting = _accepted_since(settings, champion.trained_at)
            report["accepted_feedback_since_champion"] = waiting
            report["retrain"] = waiting > 0
        report["reason"] = _reason(report)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        report["report_key"] = f"{REPORTS_PREFIX}/{stamp}/report.json"
        plot = _plot(report, served, reference)
        report["mlflow_run_id"] = _log_to_mlflow(mlflow, client, settings, report, plot)
    finally:
        mlflow.close()
    put_json(client, bucket, report["report_key"], report)
    put_bytes(client, bucket, f"{REPORTS_PREFIX}/{stamp}/drift.svg", plot.encode(), "image/svg+xml")
    put_json(client, bucket, LATEST_REPORT_KEY, {"report_key": report["report_key"]})
    # Not enough data: the window stays open, so the next run adds its records to these.
    keep_open = report["status"] == "not_enough_data"
    next_start = window.start if keep_open else window.end
    put_json(client, bucket, STATE_KEY, {"window_start": _iso(next_start), "last_run": _iso(now)})
    log.info("drift report: %s", json.dumps(summary(report), sort_keys=True))
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The one-line form `make monitor` prints: the decision and the statistics behind it."""
    keys = (
        "drift", "status", "retrain", "reason", "records", "min_records", "drifted_checks",
        "accepted_feedback_since_champion", "window", "model", "report_key", "mlflow_run_id",
    )  # fmt: skip
    out = {k: report[k] for k in keys if k in report}
    # The reference's own label mix is in the full report; the one line keeps what was seen.
    out["statistics"] = {
        name: {k: v for k, v in check.items() if k != "reference"}
        for name, check in (report.get("checks") or {}).items()
        if check
    }
    return out


def _reason(report: dict[str, Any]) -> str:
    if report["status"] == "not_enough_data":
        return (
            f"not enough data: {report['records']} records of the champion, "
            f"at least {report['min_records']} needed (the window stays open)"
        )
    if report["status"] == "no_reference":
        return "the champion has no reference.json: drift cannot be checked"
    if not report["drift"]:
        return "no drift"
    checks = ", ".join(report["drifted_checks"])
    waiting = report["accepted_feedback_since_champion"]
    if report["retrain"]:
        return f"drift ({checks}) and {waiting} accepted feedback items since the champion: retrain"
    return f"drift ({checks}), but no accepted feedback since the champion: report only"


def _accepted_since(settings: Settings, trained_at: datetime | None) -> int:
    moment = trained_at or datetime.fromtimestamp(0, tz=UTC)
    with db.connection(settings) as conn:
        return db.accepted_since(conn, moment)


def _plot(report: dict[str, Any], records: list[dict], reference: Reference | None) -> str:
    title = f"{report['model']['name']} v{report['model']['version']}: {report['reason']}"
    if reference is None:
        return drift_svg(title, [], [], None, [], [])
    return drift_svg(
        title,
        reference.novelty_scores,
        [float(r["novelty_score"]) for r in records if r["novelty_score"] is not None],
        reference.threshold,
        reference.confidences,
        [float(r["confidence"]) for r in records],
    )


def _log_to_mlflow(
    mlflow: MlflowRest, client: Minio, settings: Settings, report: dict[str, Any], plot: str
) -> str:
    experiment = mlflow.experiment_id(settings.monitor_experiment)
    run_id, artifact_uri = mlflow.start_run(
        experiment,
        f"monitor-{report['generated_at']}",
        {
            "model_name": report["model"]["name"],
            "model_version": report["model"]["version"],
            "status": report["status"],
            "drift": str(report["drift"]).lower(),
            "retrain": str(report["retrain"]).lower(),
        },
    )
    metrics: dict[str, float] = {
        "records": float(report["records"]),
        "drift": float(report["drift"]),
    }
    for name, check in (report.get("checks") or {}).items():
        if not check:
            continue
        for key in ("observed", "p_value", "statistic", "psi"):
            value = check.get(key)
            if isinstance(value, int | float):
                metrics[f"{name}_{key}"] = float(value)
    params = {"window_start": report["window"]["start"], "window_end": report["window"]["end"]}
    mlflow.log_batch(run_id, metrics, params)
    bucket, prefix = split_s3_uri(artifact_uri)
    body = json.dumps({**report, "mlflow_run_id": run_id}, indent=2, sort_keys=True).encode()
    put_bytes(client, bucket, f"{prefix}/report.json", body, "application/json")
    put_bytes(client, bucket, f"{prefix}/drift.svg", plot.encode(), "image/svg+xml")
    mlflow.end_run(run_id)
    return run_id


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
