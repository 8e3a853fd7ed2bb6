"""The content-addressed image cache against real S3."""

from __future__ import annotations

import pytest

from plantops_ml_training.dataset import DatasetError, Example, ImageCache

from .conftest import Split, put_dataset

pytestmark = pytest.mark.integration


@pytest.fixture
def uploaded(s3_bucket, images_dir) -> list[Example]:
    rows = put_dataset(s3_bucket.server.client(), s3_bucket.name, "v1", images_dir, Split(2, 1, 1))
    return [Example(**row) for row in rows]


def test_second_fetch_downloads_nothing(s3_bucket, uploaded, tmp_path):
    client = s3_bucket.server.client()
    cache = ImageCache(tmp_path)
    first = cache.fetch(client, s3_bucket.name, uploaded)
    for example in uploaded:  # the bucket loses the images: only the cache has them now
        client.remove_object(s3_bucket.name, example.key)
    assert cache.fetch(client, s3_bucket.name, uploaded) == first


def test_a_corrupt_cached_image_is_downloaded_again(s3_bucket, uploaded, tmp_path):
    cache = ImageCache(tmp_path)
    client = s3_bucket.server.client()
    paths = cache.fetch(client, s3_bucket.name, uploaded)
    victim = paths[uploaded[0].sha256]
    victim.write_bytes(victim.read_bytes()[:100])  # a truncated file
    cache.fetch(client, s3_bucket.name, uploaded)
    assert cache.is_valid(uploaded[0].sha256)


def test_a_corrupt_cached_image_that_s3_lost_too_is_a_clear_error(s3_bucket, uploaded, tmp_path):
    cache = ImageCache(tmp_path)
    client = s3_bucket.server.client()
    paths = cache.fetch(client, s3_bucket.name, uploaded)
    paths[uploaded[0].sha256].write_bytes(b"garbage")
    client.remove_object(s3_bucket.name, uploaded[0].key)
    with pytest.raises(DatasetError, match="does not exist"):
        cache.fetch(client, s3_bucket.name, uploaded)
