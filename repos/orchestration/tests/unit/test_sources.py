"""URL rules: mirror mapping, S3 URIs and keys, what `add` accepts."""

from __future__ import annotations

import pytest

from plantops_orchestration.config import CANONICAL_PREFIX, Settings
from plantops_orchestration.db import check_label, check_url
from plantops_orchestration.fetch import mirrored
from plantops_orchestration.layout import fmt_key, parse_s3_uri, raw_key

pytestmark = pytest.mark.unit


def test_canonical_urls_map_to_the_mirror_and_others_stay():
    url = f"{CANONICAL_PREFIX}grass/00000007.jpg"
    assert mirrored(url, CANONICAL_PREFIX, "http://127.0.0.1:8090/") == (
        "http://127.0.0.1:8090/grass/00000007.jpg"
    )
    assert mirrored(url, CANONICAL_PREFIX, "") == url  # no mirror: fetch the real URL
    assert mirrored("https://example.org/a.jpg", CANONICAL_PREFIX, "http://m/") == (
        "https://example.org/a.jpg"
    )


def test_keys_follow_the_contract():
    assert raw_key("grass", "ab" * 32, "png") == f"raw/grass/{'ab' * 32}.png"
    assert fmt_key("grass", "ab" * 32) == f"fmt/grass/{'ab' * 32}.jpg"
    assert parse_s3_uri("s3://plantops-data/feedback/x.jpg") == ("plantops-data", "feedback/x.jpg")
    with pytest.raises(ValueError):
        parse_s3_uri("s3://bucket-only")


@pytest.mark.parametrize("label", ["dandelion", "clover-2", "red_rose"])
def test_any_simple_label_is_accepted(label):
    check_label(label)


@pytest.mark.parametrize("label", ["", "Grass", "a/b", "../x", "x" * 65])
def test_labels_that_would_break_keys_are_refused(label):
    with pytest.raises(ValueError, match="not valid"):
        check_label(label)


@pytest.mark.parametrize("url", ["ftp://x/y.jpg", "s3://bucket", "https://", "/tmp/a.jpg"])
def test_urls_other_than_http_and_s3_are_refused(url):
    with pytest.raises(ValueError):
        check_url(url)


def test_splits_must_leave_room_for_a_test_split():
    with pytest.raises(ValueError, match="must be below 1"):
        Settings(
            mysql_user="u",
            mysql_password="p",
            s3_access_key="a",
            s3_secret_key="s",
            split_train=0.9,
            split_val=0.1,
        )
