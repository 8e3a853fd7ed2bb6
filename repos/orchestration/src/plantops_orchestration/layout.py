"""The S3 key scheme of the image layers (docs/architecture.md, "S3 layout")."""

from __future__ import annotations

LATEST_KEY = "agg/latest.json"


def raw_key(label: str, sha256: str, ext: str) -> str:
    """Bytes exactly as fetched, addressed by their content."""
    return f"raw/{label}/{sha256}.{ext}"


def fmt_key(label: str, sha256: str) -> str:
    """The normalised JPEG of the raw image with this sha256."""
    return f"fmt/{label}/{sha256}.jpg"


def manifest_key(dataset_version: str) -> str:
    return f"agg/{dataset_version}/manifest.csv"


def stats_key(dataset_version: str) -> str:
    return f"agg/{dataset_version}/stats.json"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"{uri!r} has no bucket or no key")
    return bucket, key
