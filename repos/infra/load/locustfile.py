"""Locust load test of a running PlantOps stack: the inference API and the web app.

    make load API_URL=http://127.0.0.1:8000 WEBAPP_URL=http://127.0.0.1:8080 \
              MIRROR_URL=http://127.0.0.1:8090/ USERS=10 SPAWN_RATE=5 DURATION=60s

Photos come from the image mirror (PLANTOPS_MIRROR_URL, the plant photos served by
`make up`), or from a local folder (PLANTOPS_IMAGES_DIR). At start each photo is also
re-encoded as PNG, WebP and a small and a large JPEG, so requests carry a realistic mix
of formats and sizes. A small share of requests sends bad files (text named .jpg, a
truncated JPEG, an empty file): the API must refuse them with a 4xx, which counts as
success here; anything else counts as a failure.

Two kinds of users: `ApiUser` (single and batch predictions against the API, the host
given with --host) and `WebappUser` (page loads and uploads through the web form,
PLANTOPS_WEBAPP_URL). Web users never submit feedback: that would add rows to
plants_data.
"""

from __future__ import annotations

import io
import os
import random
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from locust import HttpUser, between, events, task
from PIL import Image

LABELS = ("dandelion", "grass")
PHOTOS_PER_LABEL = int(os.environ.get("PLANTOPS_LOAD_PHOTOS_PER_LABEL", "20"))
BATCH_SIZE = 4


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    content_type: str


PHOTOS: list[Photo] = []
BAD_FILES = [
    Photo("notes.jpg", b"this is a shopping list, not a photo", "image/jpeg"),
    Photo("empty.png", b"", "image/png"),
]


def fetch_originals() -> list[tuple[str, bytes]]:
    """The first photos of each label, from a local folder or the mirror."""
    folder = os.environ.get("PLANTOPS_IMAGES_DIR")
    mirror = os.environ.get("PLANTOPS_MIRROR_URL", "http://127.0.0.1:8090/")
    originals = []
    for label in LABELS:
        for index in range(PHOTOS_PER_LABEL):
            relative = f"{label}/{index:08d}.jpg"
            if folder:
                data = (Path(folder) / relative).read_bytes()
            else:
                with urllib.request.urlopen(mirror + relative, timeout=10) as response:
                    data = response.read()
            originals.append((relative.replace("/", "-"), data))
    return originals


def variants(name: str, data: bytes) -> list[Photo]:
    """The photo as sent, plus PNG, WebP, a small JPEG and a large JPEG of it."""
    stem = name.rsplit(".", 1)[0]
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = [Photo(name, data, "image/jpeg")]

    def encode(img: Image.Image, fmt: str, suffix: str, mime: str) -> None:
        buffer = io.BytesIO()
        img.save(buffer, format=fmt)
        out.append(Photo(f"{stem}{suffix}", buffer.getvalue(), mime))

    encode(image, "PNG", ".png", "image/png")
    encode(image, "WEBP", ".webp", "image/webp")
    encode(image.resize((160, 120)), "JPEG", "-small.jpg", "image/jpeg")
    large = image.resize((image.width * 3, image.height * 3))
    encode(large, "JPEG", "-large.jpg", "image/jpeg")
    return out


@events.test_start.add_listener
def load_photos(**_kwargs) -> None:
    if PHOTOS:
        return
    for name, data in fetch_originals():
        PHOTOS.extend(variants(name, data))
    # A truncated JPEG: a real photo cut in half.
    half = PHOTOS[0].data[: len(PHOTOS[0].data) // 2]
    BAD_FILES.append(Photo("truncated.jpg", half, "image/jpeg"))


def expect_refusal(response) -> None:
    """A bad file must get a clear 4xx; a 2xx or a 5xx is a failure."""
    if 400 <= response.status_code < 500:
        response.success()
    else:
        response.failure(f"bad file answered {response.status_code}, expected a 4xx")


class ApiUser(HttpUser):
    """A client of the inference API (--host)."""

    weight = 3
    wait_time = between(0.1, 0.5)

    @task(10)
    def predict(self) -> None:
        photo = random.choice(PHOTOS)
        files = {"file": (photo.name, photo.data, photo.content_type)}
        self.client.post("/v1/predict", files=files, name="/v1/predict")

    @task(2)
    def predict_batch(self) -> None:
        batch = random.sample(PHOTOS, BATCH_SIZE)
        files = [("files", (p.name, p.data, p.content_type)) for p in batch]
        self.client.post("/v1/predict/batch", files=files, name="/v1/predict/batch")

    @task(1)
    def bad_file(self) -> None:
        photo = random.choice(BAD_FILES)
        files = {"file": (photo.name, photo.data, photo.content_type)}
        with self.client.post(
            "/v1/predict", files=files, name="/v1/predict [bad file]", catch_response=True
        ) as response:
            expect_refusal(response)

    @task(1)
    def model_info(self) -> None:
        self.client.get("/v1/model", name="/v1/model")


class WebappUser(HttpUser):
    """A person using the web page: the upload form, an upload, the model page."""

    weight = 1
    wait_time = between(1, 3)
    # Absolute URLs: --host (the API) would otherwise override a class attribute.
    base = os.environ.get("PLANTOPS_WEBAPP_URL", "http://127.0.0.1:8080").rstrip("/")
    csrf_field = re.compile(r'name="csrf_token" value="([^"]+)"')

    @task(3)
    def upload_page(self) -> None:
        self.client.get(f"{self.base}/", name="webapp /")

    @task(2)
    def upload_photo(self) -> None:
        page = self.client.get(f"{self.base}/", name="webapp /")
        match = self.csrf_field.search(page.text)
        if match is None:
            return
        photo = random.choice(PHOTOS)
        files = {"file": (photo.name, photo.data, photo.content_type)}
        # Follows the redirect to the result page, as a browser does.
        self.client.post(
            f"{self.base}/predict",
            data={"csrf_token": match.group(1)},
            files=files,
            name="webapp /predict -> /results/{id}",
        )

    @task(1)
    def model_page(self) -> None:
        self.client.get(f"{self.base}/model", name="webapp /model")
