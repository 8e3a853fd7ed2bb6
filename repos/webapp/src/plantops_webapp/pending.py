"""Uploads waiting for feedback: kept in memory between the result page and the feedback form.

Nothing is written to S3 until the user confirms or corrects the label, so photos that
get no feedback are never stored. Each visitor (cookie + client address) has a shelf of
its own: at most `per_visitor` uploads, the oldest going first, and an upload id opens
only its own visitor's shelf. The whole store is bounded in bytes; past the budget the
oldest upload of the visitor holding the most bytes goes, so a visitor who floods the
store evicts their own uploads, not someone else's. Uploads also expire after `ttl_s`.
With several replicas, feedback must reach the replica that showed the result (sticky
sessions), or the user is asked to upload again.
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
    """Thread-safe per-visitor shelves of uploads keyed by an unguessable id."""

    def __init__(
        self,
        per_visitor: int,
        total_bytes: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shelves: dict[str, OrderedDict[str, PendingUpload]] = {}
        self._bytes: dict[str, int] = {}
        self._per_visitor = per_visitor
        self._total_bytes = total_bytes
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()

    def add(
        self,
        visitor: str,
        image: bytes,
        image_format: ImageFormat,
        filename: str,
        prediction: Prediction,
    ) -> str:
        upload_id = secrets.token_urlsafe(16)
        upload = PendingUpload(image, image_format, filename, prediction, self._clock())
        with self._lock:
            shelf = self._shelves.setdefault(visitor, OrderedDict())
            shelf[upload_id] = upload
            self._bytes[visitor] = self._bytes.get(visitor, 0) + len(image)
            while len(shelf) > self._per_visitor:
                self._drop_oldest(visitor)
            while sum(self._bytes.values()) > self._total_bytes:
                self._drop_oldest(max(self._bytes, key=self._bytes.__getitem__))
        return upload_id

    def get(self, visitor: str, upload_id: str) -> PendingUpload | None:
        with self._lock:
            shelf = self._shelves.get(visitor)
            upload = shelf.get(upload_id) if shelf else None
            if shelf is None or upload is None:
                return None
            if self._clock() - upload.created_at > self._ttl_s:
                self._remove(visitor, upload_id)
                return None
            shelf.move_to_end(upload_id)
            return upload

    def count(self, visitor: str) -> int:
        with self._lock:
            return len(self._shelves.get(visitor, ()))

    def _drop_oldest(self, visitor: str) -> None:
        self._remove(visitor, next(iter(self._shelves[visitor])))

    def _remove(self, visitor: str, upload_id: str) -> None:
        shelf = self._shelves[visitor]
        upload = shelf.pop(upload_id)
        self._bytes[visitor] -= len(upload.image)
        if not shelf:
            del self._shelves[visitor]
            del self._bytes[visitor]
