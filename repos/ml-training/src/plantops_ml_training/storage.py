"""The S3 client training reads datasets and images with, and the bucket check."""

from __future__ import annotations

import urllib3
from minio import Minio
from minio.error import S3Error

from plantops_ml_training.config import Settings
from plantops_ml_training.dataset import DatasetError
from plantops_ml_training.s3_retry import s3_retry


def s3_client(settings: Settings) -> Minio:
    """A `minio` client that gives up after seconds, not minutes, when S3 is down."""
    if not settings.s3_access_key or settings.s3_secret_key is None:
        raise DatasetError("Set PLANTOPS_S3_ACCESS_KEY and PLANTOPS_S3_SECRET_KEY.")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        retries=s3_retry(),
    )
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        http_client=http,
    )


def check_bucket(client: Minio, settings: Settings) -> None:
    try:
        exists = client.bucket_exists(settings.s3_bucket)
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
        raise DatasetError(
            f"S3 at {settings.s3_endpoint} cannot be used ({exc}). Start the stack "
            "(`make up`) or check PLANTOPS_S3_ENDPOINT and the credentials."
        ) from exc
    if not exists:
        raise DatasetError(f"S3 bucket {settings.s3_bucket!r} does not exist.")
