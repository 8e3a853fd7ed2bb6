"""S3 access for the image layers, through the `minio` client (the S3 client everywhere)."""

from __future__ import annotations

import io
import json
from typing import cast

import urllib3
from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from plantops_orchestration.config import Settings
from plantops_orchestration.s3_retry import s3_retry


class StorageError(RuntimeError):
    """S3 refused or could not be reached: an infrastructure fault, not a bad image.

    The run stops (Airflow retries the task); no row is marked for it.
    """


def make_client(settings: Settings) -> Minio:
    # minio's own default waits 5 minutes on a hung server; fail in seconds instead.
    http = urllib3.PoolManager(
        maxsize=max(10, settings.download_concurrency),
        timeout=urllib3.Timeout(connect=5, read=60),
        retries=s3_retry(),
    )
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        http_client=http,
    )


def put_bytes(
    client: Minio,
    bucket: str,
    key: str,
    data: bytes,
    content_type: str,
    metadata: dict[str, str] | None = None,
) -> None:
    """Store an object; returns only once S3 has acknowledged it (durable)."""
    try:
        client.put_object(
            bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            # dict is invariant: a dict[str, str] is a valid minio DictType, only read here.
            metadata=cast("dict[str, str | list[str] | tuple[str]] | None", metadata),
        )
    except (S3Error, Urllib3Error, OSError) as error:
        raise StorageError(f"could not store s3://{bucket}/{key}: {_describe(error)}") from error


def exists(client: Minio, bucket: str, key: str) -> bool:
    try:
        client.stat_object(bucket, key)
    except S3Error as error:
        if error.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            return False
        raise StorageError(f"could not check s3://{bucket}/{key}: {_describe(error)}") from error
    except (Urllib3Error, OSError) as error:
        raise StorageError(f"could not check s3://{bucket}/{key}: {_describe(error)}") from error
    return True


def get_json(client: Minio, bucket: str, key: str) -> dict | None:
    """The JSON object at `key`, or None when there is none."""
    try:
        response = client.get_object(bucket, key)
    except S3Error as error:
        if error.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            return None
        raise StorageError(f"could not read s3://{bucket}/{key}: {_describe(error)}") from error
    except (Urllib3Error, OSError) as error:
        raise StorageError(f"could not read s3://{bucket}/{key}: {_describe(error)}") from error
    try:
        return json.loads(response.read())
    finally:
        response.close()
        response.release_conn()


def put_json(client: Minio, bucket: str, key: str, value: dict) -> None:
    data = (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()
    put_bytes(client, bucket, key, data, "application/json")


def ensure_bucket(client: Minio, bucket: str) -> None:
    try:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
    except (S3Error, Urllib3Error, OSError) as error:
        raise StorageError(f"could not reach bucket {bucket}: {_describe(error)}") from error


def _describe(error: BaseException) -> str:
    if isinstance(error, S3Error):
        return f"S3 {error.code}"
    return type(error).__name__
