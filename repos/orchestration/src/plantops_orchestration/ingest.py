"""The ingestion pipeline as plain functions: select, fetch + validate, store, build agg/.

The Airflow DAG `plants_ingest` calls these one task each; `plantops-data ingest`
and the benchmark call them in a row. Each step is idempotent: objects are
content-addressed, and a row is marked stored only after S3 acknowledged its
objects, so a crash at any point leaves nothing pointing at a missing object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from plantops_orchestration import db, storage
from plantops_orchestration.config import Settings
from plantops_orchestration.dataset import build_dataset
from plantops_orchestration.fetch import Fetcher, FetchError
from plantops_orchestration.images import CheckedImage, ImageLimits, InvalidImage
from plantops_orchestration.images import check_and_normalise as check_image
from plantops_orchestration.layout import (
    LATEST_KEY,
    fmt_key,
    manifest_key,
    raw_key,
    s3_uri,
    stats_key,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A row whose bytes were fetched and validated, not yet stored."""

    row: db.Row
    image: CheckedImage
    raw: bytes
    content_type: str


@dataclass(frozen=True)
class Failed:
    row: db.Row
    reason: str
    retryable: bool


@dataclass
class IngestReport:
    rows: int = 0
    stored: int = 0
    objects_written: int = 0
    duplicates: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    def as_dict(self, max_listed: int = 100) -> dict:
        """Counts, and the first `max_listed` failures and duplicates (XCom stays small)."""
        return {
            "rows": self.rows,
            "stored": self.stored,
            "objects_written": self.objects_written,
            "duplicate_count": len(self.duplicates),
            "failed_count": len(self.failed),
            "duplicates": self.duplicates[:max_listed],
            "failed": self.failed[:max_listed],
        }


def limits_of(settings: Settings) -> ImageLimits:
    return ImageLimits(
        min_side=settings.min_image_side,
        max_pixels=settings.max_image_pixels,
        fmt_max_side=settings.fmt_max_side,
        jpeg_quality=settings.fmt_jpeg_quality,
    )


# ------------------------------------------------------------------ select


def select_rows(settings: Settings) -> list[int]:
    """Ids of the rows to ingest now: new ones and failed ones with attempts left."""
    with db.connection(settings) as conn:
        return db.pending_row_ids(conn, settings.max_attempts)


# ---------------------------------------------------------- fetch and store


def prepare(row: db.Row, fetcher: Fetcher, limits: ImageLimits) -> Prepared | Failed:
    """Fetch and validate one row; never raises for a bad source."""
    try:  # rows inserted by hand skipped `plantops-data add`'s checks
        db.check_label(row.label)
        db.check_url(row.url_source)
    except ValueError as error:
        return Failed(row, str(error), retryable=False)
    try:
        fetched = fetcher.fetch(row.url_source)
        image = check_image(fetched.data, limits)
    except FetchError as error:
        return Failed(row, error.reason, error.retryable)
    except InvalidImage as error:
        return Failed(row, str(error), retryable=False)
    except Exception as error:  # one odd source must not stop the other rows
        log.exception("unexpected error on row %s (%s)", row.id, row.url_source)
        return Failed(row, f"unexpected error: {type(error).__name__}", retryable=True)
    return Prepared(row, image, fetched.data, fetched.content_type)


def ingest_rows(settings: Settings, row_ids: Sequence[int]) -> IngestReport:
    """Fetch, validate and store the given rows; raise StorageError if S3 fails.

    Work goes in chunks so memory stays bounded whatever the number of rows.
    """
    client = storage.make_client(settings)
    fetcher = Fetcher(settings, lambda: client)
    limits = limits_of(settings)
    report = IngestReport()
    with db.connection(settings) as conn:
        rows = db.rows_to_ingest(conn, row_ids, settings.max_attempts)
        report.rows = len(rows)
        if rows:
            storage.ensure_bucket(client, settings.s3_bucket)
        with ThreadPoolExecutor(settings.download_concurrency) as pool:
            for chunk in chunks(rows, settings.download_concurrency * 4):
                outcomes = list(pool.map(lambda row: prepare(row, fetcher, limits), chunk))
                _store_chunk(settings, conn, client, pool, outcomes, report)
    log.info(
        "ingested %d rows: %d stored, %d duplicates, %d failed",
        report.rows,
        report.stored,
        len(report.duplicates),
        len(report.failed),
    )
    return report


def _store_chunk(settings, conn, client, pool, outcomes, report: IngestReport) -> None:
    """Record failures, store each new content once, mark the rows; commit per chunk."""
    for outcome in outcomes:
        if isinstance(outcome, Failed):
            db.mark_failed(conn, outcome.row.id, outcome.reason, outcome.retryable)
            report.failed.append(
                {"id": outcome.row.id, "url": outcome.row.url_source, "reason": outcome.reason}
            )
    conn.commit()
    prepared = [o for o in outcomes if isinstance(o, Prepared)]
    known = db.stored_by_sha(conn, (p.image.sha256 for p in prepared))
    firsts: dict[str, Prepared] = {}
    for item in prepared:  # in id order: the lowest id stores the content
        if item.image.sha256 not in known:
            firsts.setdefault(item.image.sha256, item)
    outage = threading.Event()  # once S3 fails, the rest of the chunk does not try
    results = list(
        pool.map(lambda item: _store_objects(settings, client, item, outage), firsts.values())
    )
    for item, error in zip(firsts.values(), results, strict=True):
        if error is None:
            url = s3_uri(
                settings.s3_bucket, raw_key(item.row.label, item.image.sha256, item.image.ext)
            )
            db.mark_stored(conn, item.row.id, url, _facts(item))
            known[item.image.sha256] = db.StoredImage(item.row.id, url, item.row.label)
            report.stored += 1
            report.objects_written += 2
    conn.commit()
    failure = next((error for error in results if error is not None), None)
    if failure is not None:
        raise failure
    for item in prepared:
        original = known[item.image.sha256]
        if original.id != item.row.id:
            note = _duplicate_note(item, original)
            db.mark_duplicate(conn, item.row.id, original, item.image.sha256, note)
            report.duplicates.append({"id": item.row.id, "duplicate_of": original.id, "note": note})
    conn.commit()


def _store_objects(
    settings: Settings, client, item: Prepared, outage: threading.Event
) -> storage.StorageError | None:
    """Put raw/ then fmt/; return the error instead of raising, so the chunk can finish."""
    if outage.is_set():
        return storage.StorageError("not stored: S3 failed earlier in this chunk")
    label, sha = item.row.label, item.image.sha256
    metadata = {
        "source-url": _ascii(item.row.url_source),
        "source-content-type": _ascii(item.content_type),
    }
    try:
        storage.put_bytes(
            client,
            settings.s3_bucket,
            raw_key(label, sha, item.image.ext),
            item.raw,
            item.content_type or "application/octet-stream",
            metadata,
        )
        storage.put_bytes(
            client, settings.s3_bucket, fmt_key(label, sha), item.image.fmt_jpeg, "image/jpeg"
        )
    except storage.StorageError as error:
        outage.set()
        return error
    return None


def _facts(item: Prepared) -> dict:
    return {
        "sha256": item.image.sha256,
        "content_type": item.content_type,
        "size_bytes": len(item.raw),
        "width": item.image.width,
        "height": item.image.height,
    }


def _duplicate_note(item: Prepared, original: db.StoredImage) -> str:
    note = f"same content as row {original.id}; stored once"
    if original.label != item.row.label:
        note += (
            f"; LABEL CONFLICT: row {original.id} says {original.label!r}, this row says "
            f"{item.row.label!r} (the dataset keeps {original.label!r})"
        )
    return note


def _ascii(text: str) -> str:
    """S3 user metadata travels in HTTP headers: keep it printable ASCII."""
    return text.encode("ascii", "backslashreplace").decode()[:1024]


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -------------------------------------------------------------------- agg/


@dataclass(frozen=True)
class DatasetResult:
    version: str | None
    images: int
    written: bool
    # Labels left out for too few accepted photos: {label: {"images", "train", "reason"}}.
    held_back: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "dataset_version": self.version,
            "images": self.images,
            "written": self.written,
            "held_back": self.held_back,
        }


def build_agg(settings: Settings) -> DatasetResult:
    """Write agg/<version>/manifest.csv and stats.json unless that version exists.

    Labels with fewer than `dataset_min_label_images` accepted photos are held back
    (dataset.py). They change no version, so when the version exists its stats.json is
    rewritten if what is held back changed: it always says what the last build left out.
    """
    with db.connection(settings) as conn:
        images = db.dataset_images(conn)
    if not images:
        log.warning("no stored image yet: no dataset version")
        return DatasetResult(None, 0, False)
    dataset = build_dataset(
        images, settings.split_train, settings.split_val, settings.dataset_min_label_images
    )
    held_back = dataset.stats["held_back"]
    for label, why in held_back.items():
        log.warning("label %r held back from the dataset: %s", label, why["reason"])
    kept = dataset.stats["images"]
    if not kept:
        log.warning("every label is held back: no dataset version")
        return DatasetResult(None, 0, False, held_back)
    client = storage.make_client(settings)
    bucket = settings.s3_bucket
    if storage.exists(client, bucket, manifest_key(dataset.version)):
        stored = storage.get_json(client, bucket, stats_key(dataset.version))
        if stored != dataset.stats:
            storage.put_json(client, bucket, stats_key(dataset.version), dataset.stats)
        return DatasetResult(dataset.version, kept, False, held_back)
    # Stats first, manifest last: the manifest's presence means the version is complete.
    storage.put_json(client, bucket, stats_key(dataset.version), dataset.stats)
    storage.put_bytes(
        client, bucket, manifest_key(dataset.version), dataset.manifest_csv, "text/csv"
    )
    log.info("wrote dataset %s (%d images)", dataset.version, kept)
    return DatasetResult(dataset.version, kept, True, held_back)


def latest_version(settings: Settings) -> str | None:
    client = storage.make_client(settings)
    pointer = storage.get_json(client, settings.s3_bucket, LATEST_KEY)
    return (pointer or {}).get("dataset_version")


def publish_latest(settings: Settings, version: str) -> bool:
    """Point agg/latest.json at `version`; False when it already did (nothing written)."""
    if latest_version(settings) == version:
        return False
    client = storage.make_client(settings)
    storage.put_json(client, settings.s3_bucket, LATEST_KEY, {"dataset_version": version})
    return True


def run_all(settings: Settings) -> dict:
    """The whole pipeline without Airflow (CLI, benchmark): select, ingest, build, publish."""
    report = ingest_rows(settings, select_rows(settings))
    dataset = build_agg(settings)
    published = bool(dataset.version and publish_latest(settings, dataset.version))
    return {**report.as_dict(), **dataset.as_dict(), "published": published}
