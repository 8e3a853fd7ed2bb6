"""Uploads waiting for feedback: kept in memory between the result page and the feedback form.

Nothing is written to S3 until the user confirms or corrects the label, so photos that
get no feedback are never stored. The store is bounded (count and age): an old result
page asks the user to upload again. With several replicas, feedback must reach the
replica that showed the result (sticky sessions), or the user is asked to upload again.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from plantops_webapp.images import ImageFormat
from plantops_webapp.schemas import Prediction


@dataclass(frozen=True)
class PendingUpload:
    """One uploaded image with the prediction shown for it."""

    image: bytes
    image_format: ImageFormat
    filename: str
    prediction: Prediction
    created_at: float
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.image).hexdigest())


class PendingUploads:
    """A thread-safe LRU of uploads keyed by an unguessable id."""

    def __init__(
        self, max_items: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: OrderedDict[str, PendingUpload] = OrderedDict()
        self._max_items = max_items
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()

    def add(
        self, image: bytes, image_format: ImageFormat, filename: str, prediction: Prediction
    ) -> str:
        upload_id = secrets.token_urlsafe(16)
        upload = PendingUpload(image, image_format, filename, prediction, self._clock())
        with self._lock:
            self._items[upload_id] = upload
            while len(self._items) > self._max_items:
                self._items.popitem(last=False)
        return upload_id

    def get(self, upload_id: str) -> PendingUpload | None:
        with self._lock:
            upload = self._items.get(upload_id)
            if upload is None:
                return None
            if self._clock() - upload.created_at > self._ttl_s:
                del self._items[upload_id]
                return None
            self._items.move_to_end(upload_id)
            return upload
