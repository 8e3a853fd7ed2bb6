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


def store(per_visitor: int = 4, total_bytes: int = 10_000, clock=None) -> PendingUploads:
    return PendingUploads(per_visitor, total_bytes, ttl_s=10, clock=clock or Clock())


def test_an_upload_is_found_by_its_visitor_and_id_with_its_content_hash():
    uploads = store()
    upload_id = uploads.add("alice", b"bytes", JPEG, "a.jpg", PREDICTION)
    upload = uploads.get("alice", upload_id)
    assert upload is not None
    assert upload.sha256 == hashlib.sha256(b"bytes").hexdigest()
    assert uploads.get("alice", "not-an-id") is None


def test_another_visitor_cannot_open_an_upload_even_with_its_id():
    uploads = store()
    upload_id = uploads.add("alice", b"bytes", JPEG, "a.jpg", PREDICTION)
    assert uploads.get("mallory", upload_id) is None
    assert uploads.get("alice", upload_id) is not None


def test_ids_are_not_guessable_from_the_content():
    uploads = store()
    first = uploads.add("alice", b"same", JPEG, "a.jpg", PREDICTION)
    second = uploads.add("alice", b"same", JPEG, "a.jpg", PREDICTION)
    assert first != second
    assert hashlib.sha256(b"same").hexdigest() not in (first, second)


def test_a_visitor_over_their_count_loses_their_own_oldest_unused_upload():
    uploads = store(per_visitor=2)
    first = uploads.add("alice", b"1", JPEG, "1.jpg", PREDICTION)
    second = uploads.add("alice", b"2", JPEG, "2.jpg", PREDICTION)
    uploads.get("alice", first)  # used: now the most recent
    third = uploads.add("alice", b"3", JPEG, "3.jpg", PREDICTION)
    assert uploads.get("alice", second) is None
    assert uploads.get("alice", first) is not None
    assert uploads.get("alice", third) is not None


def test_a_flood_from_one_visitor_does_not_evict_another_visitors_upload():
    uploads = store(per_visitor=64, total_bytes=1_000)
    bobs = uploads.add("bob", b"b" * 100, JPEG, "bob.jpg", PREDICTION)
    for _ in range(200):  # far past the byte budget
        uploads.add("mallory", b"m" * 100, JPEG, "m.jpg", PREDICTION)
    assert uploads.get("bob", bobs) is not None
    assert uploads.count("mallory") == 9  # 900 of the 1,000 bytes; bob keeps his 100


def test_uploads_expire_after_their_time_to_live():
    clock = Clock()
    uploads = store(clock=clock)
    upload_id = uploads.add("alice", b"1", JPEG, "1.jpg", PREDICTION)
    clock.now = 9
    assert uploads.get("alice", upload_id) is not None
    clock.now = 20
    assert uploads.get("alice", upload_id) is None
