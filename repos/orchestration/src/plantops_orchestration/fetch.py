"""Fetching image bytes from http(s) URLs (through the mirror) and s3:// URIs, within limits.

Every failure becomes a `FetchError` with a reason a person can act on, and a
`retryable` flag: timeouts, resets and 5xx are worth another try (now, with
backoff, and in a later run); a 404 or an oversized body is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import urllib3
from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import (
    LocationValueError,
    MaxRetryError,
    NewConnectionError,
    TimeoutError,
)

from plantops_orchestration.config import Settings
from plantops_orchestration.layout import parse_s3_uri

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class FetchError(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str


def mirrored(url: str, prefix: str, base_url: str) -> str:
    """The URL to fetch: a canonical URL under `prefix` is served by the mirror, if any."""
    if base_url and prefix and url.startswith(prefix):
        return base_url.rstrip("/") + "/" + url[len(prefix) :].lstrip("/")
    return url


class Fetcher:
    """Thread-safe: one connection pool shared by the download threads."""

    def __init__(self, settings: Settings, s3_client: Callable[[], Minio]) -> None:
        self.settings = settings
        self._s3_client = s3_client
        self._http = urllib3.PoolManager(
            maxsize=settings.download_concurrency,
            # Only redirects are followed here; retries are ours, with backoff.
            retries=urllib3.Retry(total=5, connect=0, read=0, status=0, other=0, redirect=5),
            timeout=urllib3.Timeout(
                connect=settings.connect_timeout_s, read=settings.read_timeout_s
            ),
        )

    def fetch(self, url: str) -> Fetched:
        """Fetch with retries and exponential backoff on transient errors."""
        s = self.settings
        for attempt in range(s.download_retries + 1):
            try:
                return self._fetch_once(url)
            except FetchError as error:
                if not error.retryable or attempt == s.download_retries:
                    raise
                delay = s.retry_backoff_s * 2**attempt
                log.info("retrying %s in %.1f s: %s", url, delay, error.reason)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _fetch_once(self, url: str) -> Fetched:
        if url.startswith("s3://"):
            return self._fetch_s3(url)
        if url.startswith(("http://", "https://")):
            s = self.settings
            return self._fetch_http(mirrored(url, s.mirror_prefix, s.mirror_base_url))
        raise FetchError(f"unsupported URL scheme in {url!r}: use http(s):// or s3://", False)

    def _fetch_http(self, url: str) -> Fetched:
        limit = self.settings.max_download_bytes
        try:
            response = self._http.request("GET", url, preload_content=False)
        except LocationValueError as error:
            raise FetchError(f"invalid URL {url!r}", False) from error
        except MaxRetryError as error:
            raise _http_error(url, error.reason or error) from error
        except Urllib3Error as error:
            raise _http_error(url, error) from error
        try:
            if response.status != 200:
                raise FetchError(
                    f"HTTP {response.status} from {url}", response.status in TRANSIENT_STATUSES
                )
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise FetchError(f"body of {declared} bytes is over the limit of {limit}", False)
            data = self._read_capped(response, url, limit)
        except Urllib3Error as error:
            response.close()
            raise _http_error(url, error) from error
        except FetchError:
            response.close()
            raise
        finally:
            response.release_conn()
        return Fetched(data, response.headers.get("Content-Type", ""))

    def _read_capped(self, response, url: str, limit: int) -> bytes:
        deadline = time.monotonic() + self.settings.download_deadline_s
        parts, size = [], 0
        # read1: whatever has arrived (read() would block until CHUNK bytes, past the deadline).
        while chunk := response.read1(CHUNK):
            size += len(chunk)
            if size > limit:
                raise FetchError(f"body is over the limit of {limit} bytes", False)
            if time.monotonic() > deadline:
                raise FetchError(
                    f"download of {url} took over {self.settings.download_deadline_s:.0f} s", True
                )
            parts.append(chunk)
        return b"".join(parts)

    def _fetch_s3(self, uri: str) -> Fetched:
        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError as error:
            raise FetchError(str(error), False) from error
        limit = self.settings.max_download_bytes
        client = self._s3_client()
        response = None
        try:
            stat = client.stat_object(bucket, key)
            if (stat.size or 0) > limit:
                raise FetchError(f"object of {stat.size} bytes is over the limit of {limit}", False)
            response = client.get_object(bucket, key)
            data = response.read()
        except S3Error as error:
            missing = error.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject", "AccessDenied")
            raise FetchError(f"S3 {error.code} for {uri}", not missing) from error
        except Urllib3Error as error:
            raise FetchError(f"S3 unreachable for {uri}: {type(error).__name__}", True) from error
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        return Fetched(data, stat.content_type or "")


def _http_error(url: str, error: BaseException) -> FetchError:
    """Turn a urllib3 exception into a reason; every network failure may heal, so retry."""
    # urllib3 2 makes NewConnectionError a ConnectTimeoutError: test it first.
    if isinstance(error, NewConnectionError):
        return FetchError(f"network error: could not connect for {url}", True)
    if isinstance(error, TimeoutError):
        return FetchError(f"timed out fetching {url}", True)
    if "redirect" in str(error).lower():
        return FetchError(f"too many redirects from {url}", False)
    return FetchError(f"network error fetching {url}: {type(error).__name__}", True)
