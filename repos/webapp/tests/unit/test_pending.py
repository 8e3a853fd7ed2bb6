import hashlib

import pytest

from plantops_webapp.images import JPEG
from plantops_webapp.pending import PendingUploads
from plantops_webapp.schemas import Prediction

pytestmark = pytest.mark.unit

PREDICTION = Prediction(
    label="grass",
    confidence=0.9,
    probabilities={"grass": 0.9, "dandelion": 0.1},
    model={"name": "m", "version": "1", "alias": "champion"},
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_upload_is_found_by_its_id_with_its_content_hash():
    store = PendingUploads(max_items=4, ttl_s=60)
    upload_id = store.add(b"bytes", JPEG, "a.jpg", PREDICTION)
    upload = store.get(upload_id)
    assert upload is not None
    assert upload.sha256 == hashlib.sha256(b"bytes").hexdigest()
    assert store.get("not-an-id") is None


def test_ids_are_not_guessable_from_the_content():
    store = PendingUploads(max_items=4, ttl_s=60)
    first = store.add(b"same", JPEG, "a.jpg", PREDICTION)
    second = store.add(b"same", JPEG, "a.jpg", PREDICTION)
    assert first != second
    assert hashlib.sha256(b"same").hexdigest() not in (first, second)


def test_the_oldest_unused_upload_is_dropped_when_full():
    store = PendingUploads(max_items=2, ttl_s=60)
    first = store.add(b"1", JPEG, "1.jpg", PREDICTION)
    second = store.add(b"2", JPEG, "2.jpg", PREDICTION)
    store.get(first)  # used: now the most recent
    third = store.add(b"3", JPEG, "3.jpg", PREDICTION)
    assert store.get(second) is None
    assert store.get(first) is not None
    assert store.get(third) is not None


def test_uploads_expire_after_their_time_to_live():
    clock = Clock()
    store = PendingUploads(max_items=2, ttl_s=10, clock=clock)
    upload_id = store.add(b"1", JPEG, "1.jpg", PREDICTION)
    clock.now = 9
    assert store.get(upload_id) is not None
    clock.now = 20
    assert store.get(upload_id) is None
