"""The API as a real uvicorn process over real HTTP, and a schemathesis fuzz of its schema."""

from __future__ import annotations

import io
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import pytest
import schemathesis
from apiserver import running_api
from conftest import TEST_API_KEY, image_bytes
from hypothesis import HealthCheck, given, settings
from PIL import Image

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_url(colour_model, tmp_path_factory):
    env = {
        "PLANTOPS_MODEL_PATH": str(colour_model),
        "PLANTOPS_API_KEY": TEST_API_KEY,
        "PLANTOPS_MAX_UPLOAD_BYTES": "2000000",
    }
    log = tmp_path_factory.mktemp("uvicorn") / "api.log"
    with running_api(env, log) as url:
        yield url


def test_curl_style_upload_is_classified(api_url):
    response = httpx.post(
        f"{api_url}/v1/predict", files={"file": ("leaf.jpg", image_bytes((20, 200, 20)))}
    )
    assert response.status_code == 200
    assert response.json()["label"] == "green"


def test_phone_sized_photos_are_classified_in_both_routes(api_url):
    # A 12 Mpx EXIF-rotated phone JPEG (decoded at 1/4 scale) and the largest RGBA PNG the
    # budget takes, 9.4 Mpx (resized band by band): what it accepts is served, whatever
    # its size; 12 Mpx in RGBA is over it.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated_jpeg = io.BytesIO()
    Image.new("RGB", (4032, 3024), (20, 200, 20)).save(rotated_jpeg, "JPEG", exif=exif.tobytes())
    rgba_png = io.BytesIO()
    Image.new("RGBA", (3540, 2660), (200, 20, 20, 255)).save(rgba_png, "PNG")
    too_wide = io.BytesIO()
    Image.new("RGBA", (4032, 3024), (200, 20, 20, 255)).save(too_wide, "PNG")
    with httpx.Client(base_url=api_url, timeout=30) as http:
        one = http.post("/v1/predict", files={"file": ("phone.jpg", rotated_jpeg.getvalue())})
        assert one.status_code == 200, one.text
        assert one.json()["label"] == "green"
        files = [
            ("files", ("phone.jpg", rotated_jpeg.getvalue())),
            ("files", ("a.png", rgba_png.getvalue())),
        ]
        batch = http.post("/v1/predict/batch", files=files)
        assert batch.status_code == 200, batch.text
        labels = [item["prediction"]["label"] for item in batch.json()["results"]]
        assert labels == ["green", "red"]
        refused = http.post("/v1/predict", files={"file": ("big.png", too_wide.getvalue())})
        assert refused.status_code == 413
        assert "in mode RGBA" in refused.json()["message"]


def test_concurrent_requests_all_succeed_and_get_their_own_answer(api_url):
    colours = {"red": (220, 10, 10), "green": (10, 220, 10), "blue": (10, 10, 220)}
    jobs = [name for name in colours for _ in range(20)]

    def classify(name: str) -> str:
        files = {"file": (f"{name}.png", image_bytes(colours[name], fmt="PNG"))}
        response = http.post(f"{api_url}/v1/predict", files=files)
        response.raise_for_status()
        return response.json()["label"]

    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(classify, jobs))
    assert answers == jobs
    metrics = httpx.get(f"{api_url}/metrics").text
    assert "plantops_api_inference_batch_size_count" in metrics


def test_a_declared_oversized_body_is_refused_before_upload(api_url):
    # Only the headers are sent: the server answers 413 without reading a body.
    parsed = urlparse(api_url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 900000000\r\n\r\n"
        )
        reply = b""
        while chunk := sock.recv(4096):  # the server closes after its answer
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert '"error":"too_large"' in reply.replace(" ", "")


def test_garbage_multipart_is_a_4xx(api_url):
    response = httpx.post(
        f"{api_url}/v1/predict",
        content=b"--b\r\nthis is not multipart",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert 400 <= response.status_code < 500
    assert "message" in response.json()


def test_openapi_documents_the_versioned_routes(api_url):
    paths = httpx.get(f"{api_url}/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/predict/batch", "/v1/model", "/v1/model/reload"} <= set(paths)


def fuzz(operation, failures: list[str]) -> None:
    """Send schemathesis-generated requests to one operation; record any 5xx."""

    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy())
    def check(case) -> None:
        response = case.call(timeout=30)
        if response.status_code >= 500:
            failures.append(f"{operation.label}: {response.status_code} {response.text[:200]}")

    check()


def test_schemathesis_fuzz_finds_no_server_error(api_url):
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:
        fuzz(operation, failures)
    assert failures == []
