"""Feedback closes the loop: a confirmed or corrected photo goes to S3 and into `plants_data`.

The object key is `feedback/<sha256>.<ext>` and the row's `url_source` is
`s3://<bucket>/feedback/<sha256>.<ext>`, with `url_s3` left NULL so the next ingestion
run validates and formats it like any other source. The same content is stored once:
the key is derived from the bytes and `url_source` is unique in the table.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum

import mysql.connector
import urllib3
from minio import Minio
from minio.error import S3Error
from mysql.connector import errorcode

from plantops_webapp.config import Settings
from plantops_webapp.pending import PendingUpload

FEEDBACK_PREFIX = "feedback/"


class FeedbackUnavailable(Exception):
    """S3 or MySQL could not take the feedback; nothing was added to the dataset."""


class Verdict(StrEnum):
    CORRECT = "correct"
    CORRECTED = "corrected"


@dataclass(frozen=True)
class FeedbackOutcome:
    url_source: str
    label: str
    # False when the same photo was already in the dataset (then `label` is the stored one).
    added: bool


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
                retries=urllib3.Retry(total=2, backoff_factor=0.2),
            ),
        )

    def save(self, upload: PendingUpload, label: str) -> FeedbackOutcome:
        """Store the photo (idempotent), then add its row unless the photo is already known.

        The object goes first: a row must never point at a missing object. A failure
        between the two leaves only an object that the next identical feedback reuses.
        """
        key = feedback_key(upload)
        url_source = f"s3://{self._settings.s3_bucket}/{key}"
        self._put_object(key, upload)
        try:
            with self._connect() as connection:
                added, stored_label = _insert_row(connection, url_source, label)
        except mysql.connector.Error as exc:
            raise FeedbackUnavailable("The dataset database cannot be reached.") from exc
        return FeedbackOutcome(url_source=url_source, label=stored_label, added=added)

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
        )


def _insert_row(connection, url_source: str, label: str) -> tuple[bool, str]:
    """Insert (url_source, label); on a duplicate keep the existing row and return its label."""
    cursor = connection.cursor()
    try:
        cursor.execute(
            "INSERT INTO plants_data (url_source, label) VALUES (%s, %s)", (url_source, label)
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
