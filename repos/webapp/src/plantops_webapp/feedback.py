"""Feedback closes the loop: a confirmed or corrected photo goes to S3 and, pending review,
into `plants_data`.

The object key is `feedback/<sha256>.<ext>` and the row's `url_source` is
`s3://<bucket>/feedback/<sha256>.<ext>`, with `url_s3` left NULL and `review_status`
`pending`: ingestion takes the row only after a reviewer accepts it (review.py). The row
keeps what the visitor proposed, what the model said (label, confidence, version), when,
and a pseudonymous submitter id (visitors.py). The same content is stored once: the key is
derived from the bytes and `url_source` is unique in the table. A submitter may have at
most `webapp_max_pending_reviews` rows waiting; the same photo again counts once.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import mysql.connector
import urllib3
from minio import Minio
from minio.error import S3Error
from mysql.connector import errorcode

from plantops_webapp.config import Settings
from plantops_webapp.pending import PendingUpload
from plantops_webapp.s3_retry import s3_retry

FEEDBACK_PREFIX = "feedback/"


PENDING_REVIEW = "pending"


class FeedbackUnavailable(Exception):
    """S3 or MySQL could not take the feedback; nothing was added to the dataset."""


class TooManyPending(Exception):
    """The submitter already has the most items allowed waiting for review."""

    def __init__(self, pending: int) -> None:
        super().__init__(f"{pending} items waiting for review")
        self.pending = pending


class Verdict(StrEnum):
    CORRECT = "correct"
    CORRECTED = "corrected"  # another of the model's labels
    PROPOSED = "proposed"  # a label name the model does not know (labels.py)


@dataclass(frozen=True)
class FeedbackOutcome:
    url_source: str
    label: str
    # False when the same photo was already sent (then `label` is the stored one).
    added: bool


@dataclass(frozen=True)
class Submission:
    """One piece of feedback: the photo, the label proposed, who (pseudonymously) sent it."""

    upload: PendingUpload
    label: str
    submitter_id: str


def feedback_key(upload: PendingUpload) -> str:
    return f"{FEEDBACK_PREFIX}{upload.sha256}.{upload.image_format.extension}"


class FeedbackStore:
    """Writes feedback to the S3 bucket and the MySQL table named in the settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        self._s3 = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=secret,
            secure=settings.s3_secure,
            # Fail within seconds, not minutes: the user is waiting on the page.
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=3, read=15),
                retries=s3_retry(),
            ),
        )

    def save(self, submission: Submission) -> FeedbackOutcome:
        """Store the photo (idempotent), then add its pending row unless the photo is known.

        A known photo changes nothing; a new one is refused (TooManyPending) before anything
        is stored when its submitter is at the cap. The object goes before the row: a row
        must never point at a missing object. A failure between the two leaves only an
        object that the next identical feedback reuses.
        """
        upload = submission.upload
        key = feedback_key(upload)
        url_source = f"s3://{self._settings.s3_bucket}/{key}"
        try:
            with self._connect() as connection:
                known = _stored_label(connection, url_source)
                if known is not None:
                    return FeedbackOutcome(url_source=url_source, label=known, added=False)
                pending = _pending_count(connection, submission.submitter_id)
                if pending >= self._settings.webapp_max_pending_reviews:
                    raise TooManyPending(pending)
                self._put_object(key, upload)
                added, stored_label = _insert_row(connection, url_source, submission)
        except mysql.connector.Error as exc:
            raise FeedbackUnavailable("The dataset database cannot be reached.") from exc
        return FeedbackOutcome(url_source=url_source, label=stored_label, added=added)

    def photo(self, url_source: str) -> bytes | None:
        """The bytes of a feedback photo named by its row's `url_source`, if it is ours."""
        prefix = f"s3://{self._settings.s3_bucket}/{FEEDBACK_PREFIX}"
        if not url_source.startswith(prefix):
            return None
        key = url_source.removeprefix(f"s3://{self._settings.s3_bucket}/")
        try:
            response = self._s3.get_object(self._settings.s3_bucket, key)
        except S3Error:
            return None
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise FeedbackUnavailable("The image store cannot be reached.") from exc
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    @contextmanager
    def database(self) -> Iterator:
        """A connection to the `plants_data` database for the review queue; a database
        failure becomes FeedbackUnavailable."""
        try:
            with self._connect() as connection:
                yield connection
        except mysql.connector.Error as exc:
            raise FeedbackUnavailable("The dataset database cannot be reached.") from exc

    def _put_object(self, key: str, upload: PendingUpload) -> None:
        try:
            self._s3.put_object(
                self._settings.s3_bucket,
                key,
                io.BytesIO(upload.image),
                length=len(upload.image),
                content_type=upload.image_format.media_type,
            )
        except (S3Error, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            # ValueError: the minio client's own errors (e.g. a bad endpoint). Either way the
            # photo is not stored and no row is written.
            raise FeedbackUnavailable("The image store cannot be reached.") from exc

    def _connect(self):
        s = self._settings
        return mysql.connector.connect(
            host=s.mysql_host,
            port=s.mysql_port,
            user=s.mysql_user,
            password=s.mysql_password.get_secret_value(),
            database=s.mysql_database,
            connection_timeout=5,
            # Times are written and read in UTC, whatever the server's zone.
            time_zone="+00:00",
            # The pure-Python protocol, not the C extension: the webapp opens connections
            # from several request threads at once, and under such load the extension
            # once crashed the whole process with a segfault (kernel log: "segfault ... in
            # _mysql_connector.cpython-311"), dropping every request in flight. A few
            # queries per feedback do not need its speed.
            use_pure=True,
        )


def _stored_label(connection, url_source: str) -> str | None:
    cursor = connection.cursor()
    try:
        cursor.execute("SELECT label FROM plants_data WHERE url_source = %s", (url_source,))
        row = cursor.fetchone()
        return str(row[0]) if row else None
    finally:
        cursor.close()


def _pending_count(connection, submitter_id: str) -> int:
    cursor = connection.cursor()
    try:
        cursor.execute(
            "SELECT COUNT(*) FROM plants_data WHERE review_status = %s AND submitter_id = %s",
            (PENDING_REVIEW, submitter_id),
        )
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()


def _insert_row(connection, url_source: str, submission: Submission) -> tuple[bool, str]:
    """Insert the pending row; on a duplicate keep the existing row and return its label."""
    prediction = submission.upload.prediction
    label = submission.label
    cursor = connection.cursor()
    try:
        cursor.execute(
            "INSERT INTO plants_data (url_source, label, review_status, proposed_label, "
            "model_label, model_confidence, model_version, submitter_id, submitted_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CURRENT_TIMESTAMP)",
            (
                url_source,
                label,
                PENDING_REVIEW,
                label,
                prediction.label,
                prediction.confidence,
                prediction.model.version[:64],
                submission.submitter_id,
            ),
        )
        connection.commit()
        return True, label
    except mysql.connector.IntegrityError as exc:
        if exc.errno != errorcode.ER_DUP_ENTRY:
            raise
        connection.rollback()
        cursor.execute("SELECT label FROM plants_data WHERE url_source = %s", (url_source,))
        row = cursor.fetchone()
        return False, str(row[0]) if row else label
    finally:
        cursor.close()
