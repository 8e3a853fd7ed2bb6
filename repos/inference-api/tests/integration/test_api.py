"""The app in process (TestClient): predictions, bad input, readiness, reload, metrics."""

from __future__ import annotations

import io
import shutil
import time

import pytest
from conftest import TEST_API_KEY, image_bytes, make_settings
from fastapi.testclient import TestClient
from modelkit import write_model
from PIL import Image

from plantops_inference_api.main import create_app

pytestmark = pytest.mark.integration

RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)


def post_image(client: TestClient, data: bytes, name="photo.jpg", content_type="image/jpeg"):
    return client.post("/v1/predict", files={"file": (name, data, content_type)})


def assert_client_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert len(body["message"]) > 10
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize(("colour", "label"), [(RED, "red"), (GREEN, "green"), (BLUE, "blue")])
def test_predict_answers_the_label_and_every_probability(client, colour, label):
    response = post_image(client, image_bytes(colour))
    assert response.status_code == 200
    body = response.json()
    assert body["label"] == label
    assert set(body["probabilities"]) == {"red", "green", "blue"}
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert body["confidence"] == max(body["probabilities"].values())
    assert body["model"] == {"name": "plantops-classifier", "version": "local", "alias": "local"}


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "BMP"])
def test_other_formats_are_read_whatever_the_client_claims(client, fmt):
    response = post_image(client, image_bytes(GREEN, fmt=fmt), "notes.txt", "text/plain")
    assert response.status_code == 200
    assert response.json()["label"] == "green"


def test_grayscale_cmyk_and_rgba_photos_are_handled(client):
    assert post_image(client, image_bytes(128, mode="L")).status_code == 200
    cmyk_red = image_bytes((0, 255, 255, 0), mode="CMYK")
    assert post_image(client, cmyk_red).json()["label"] == "red"
    rgba = image_bytes((*BLUE, 255), fmt="PNG", mode="RGBA")
    assert post_image(client, rgba).json()["label"] == "blue"


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (b"hello, I am text", "a.txt", "text/plain"),
        (b"hello, I am text", "a.jpg", "image/jpeg"),  # a lie about the content type
        (b"%PDF-1.4\n%%EOF\n", "doc.pdf", "application/pdf"),
        (b"<html><body>hi</body></html>", "page.html", "text/html"),
    ],
    ids=["text", "text-claiming-jpeg", "pdf", "html"],
)
def test_not_an_image_is_a_422_with_a_message(client, data, name, content_type):
    assert_client_error(post_image(client, data, name, content_type), 422, "invalid_image")


def test_an_empty_file_is_a_422(client):
    body = assert_client_error(post_image(client, b""), 422, "invalid_image")
    assert "empty" in body["message"]


def test_a_truncated_jpeg_is_a_422(client):
    whole = image_bytes(RED, size=(300, 300))
    body = assert_client_error(post_image(client, whole[: -len(whole) // 3]), 422, "invalid_image")
    assert "truncated" in body["message"]


def test_a_missing_field_is_a_422_that_names_it(client):
    body = assert_client_error(client.post("/v1/predict"), 422, "invalid_request")
    assert "'file'" in body["message"]
    wrong_name = client.post("/v1/predict", files={"image": ("a.jpg", image_bytes(), "image/jpeg")})
    assert_client_error(wrong_name, 422, "invalid_request")


def test_a_form_field_instead_of_a_file_is_a_422(client):
    response = client.post("/v1/predict", data={"file": "not a file"})
    assert_client_error(response, 422, "invalid_request")


def test_a_decompression_bomb_is_a_413(client):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, "PNG")
    body = assert_client_error(post_image(client, buffer.getvalue(), "bomb.png"), 413, "too_large")
    assert "pixels" in body["message"]


@pytest.fixture
def small_limit_client(colour_model):
    settings = make_settings(colour_model, max_upload_bytes=20_000, max_batch_size=3)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def noisy_png(size: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_file_over_the_size_limit_is_a_413(small_limit_client):
    big = noisy_png(200)  # about 120 KB
    assert len(big) > 100_000
    body = assert_client_error(post_image(small_limit_client, big, "big.png"), 413, "too_large")
    assert "bytes" in body["message"]


def test_a_chunked_body_over_the_limit_is_a_413(small_limit_client):
    big = noisy_png(200)

    def chunks():
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]
        yield b"\r\n--xyz--\r\n"

    response = small_limit_client.post(
        "/v1/predict",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert_client_error(response, 413, "too_large")


def test_batch_gives_one_result_per_file_in_order_with_per_file_errors(client):
    files = [
        ("files", ("r.jpg", image_bytes(RED), "image/jpeg")),
        ("files", ("bad.txt", b"nope", "text/plain")),
        ("files", ("b.png", image_bytes(BLUE, fmt="PNG"), "image/png")),
    ]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["filename"] for r in results] == ["r.jpg", "bad.txt", "b.png"]
    assert results[0]["prediction"]["label"] == "red"
    assert results[1]["prediction"] is None
    assert results[1]["error"]["error"] == "invalid_image"
    assert results[2]["prediction"]["label"] == "blue"


def test_batch_over_the_maximum_is_a_413(small_limit_client):
    files = [("files", (f"{i}.jpg", image_bytes(), "image/jpeg")) for i in range(4)]
    body = assert_client_error(
        small_limit_client.post("/v1/predict/batch", files=files), 413, "too_many_files"
    )
    assert "at most 3" in body["message"]


def test_batch_with_one_file_over_the_limit_fails_only_that_file(small_limit_client):
    files = [
        ("files", ("big.png", noisy_png(200), "image/png")),
        ("files", ("g.jpg", image_bytes(GREEN), "image/jpeg")),
    ]
    results = small_limit_client.post("/v1/predict/batch", files=files).json()["results"]
    assert results[0]["error"]["error"] == "too_large"
    assert results[1]["prediction"]["label"] == "green"


def test_model_endpoint_describes_the_loaded_model(client, colour_model):
    body = client.get("/v1/model").json()
    assert body["labels"] == ["red", "green", "blue"]
    assert body["input_size"] == [3, 32, 32]
    assert body["source_uri"] == str(colour_model)
    assert body["preprocessing"]["resize_shorter_side"] == 40
    assert body["loaded_at"]


def test_not_ready_until_the_model_folder_appears_then_ready(tmp_path):
    folder = tmp_path / "model"
    with TestClient(create_app(make_settings(folder))) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "missing" in ready.json()["reason"]
        assert_client_error(post_image(client, image_bytes()), 503, "model_not_ready")
        write_model(folder)
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/readyz").json()["status"] == "ready"
        assert post_image(client, image_bytes(RED)).json()["label"] == "red"


def test_reload_needs_the_api_key(client):
    assert_client_error(client.post("/v1/model/reload"), 401, "not_authorized")
    wrong = client.post("/v1/model/reload", headers={"X-API-Key": "guess"})
    assert_client_error(wrong, 401, "not_authorized")
    right = client.post("/v1/model/reload", headers={"X-API-Key": TEST_API_KEY})
    assert right.status_code == 200
    assert right.json()["model"]["labels"] == ["red", "green", "blue"]


def test_reload_is_disabled_without_a_configured_key(colour_model):
    with TestClient(create_app(make_settings(colour_model, api_key=None))) as client:
        response = client.post("/v1/model/reload", headers={"X-API-Key": ""})
        assert_client_error(response, 403, "reload_disabled")


def test_a_broken_model_on_reload_keeps_the_old_one_serving(tmp_path):
    folder = write_model(tmp_path / "model")
    with TestClient(create_app(make_settings(folder))) as client:
        (folder / "model.onnx").write_bytes(b"garbage")
        response = client.post("/v1/model/reload", headers={"X-API-Key": TEST_API_KEY})
        body = assert_client_error(response, 503, "reload_failed")
        assert "keeps serving" in body["message"]
        assert client.get("/readyz").status_code == 200
        assert post_image(client, image_bytes(GREEN)).json()["label"] == "green"
        metrics = client.get("/metrics").text
        assert 'plantops_api_model_load_failures_total{stage="verify"} 1.0' in metrics


def test_a_new_model_folder_with_other_labels_is_served_after_reload(tmp_path):
    folder = write_model(tmp_path / "model")
    with TestClient(create_app(make_settings(folder))) as client:
        shutil.rmtree(folder)
        write_model(folder, labels=("rouge", "vert", "bleu", "jaune"))
        client.post("/v1/model/reload", headers={"X-API-Key": TEST_API_KEY})
        body = post_image(client, image_bytes(GREEN)).json()
        assert body["label"] == "vert"
        assert set(body["probabilities"]) == {"rouge", "vert", "bleu", "jaune"}


def test_metrics_use_route_templates_and_count_labels(client):
    post_image(client, image_bytes(RED))
    post_image(client, b"junk")
    client.get("/no/such/path/12345")
    text = client.get("/metrics").text
    assert 'route="/v1/predict",status="200"' in text
    assert 'route="/v1/predict",status="422"' in text
    assert 'route="unmatched",status="404"' in text
    assert "12345" not in text
    assert 'plantops_api_predictions_total{label="red"} 1.0' in text
    assert "plantops_api_prediction_confidence_bucket" in text
    assert (
        'plantops_api_model_info{alias="local",name="plantops-classifier",version="local"} 1.0'
        in text
    )
    assert 'plantops_api_rejected_images_total{error="invalid_image"} 1.0' in text
    assert "plantops_api_model_ready 1.0" in text


def test_unknown_paths_and_methods_are_json_errors(client):
    assert_client_error(client.get("/v2/predict"), 404, "not_found")
    assert_client_error(client.get("/v1/predict"), 405, "method_not_allowed")


def test_a_batch_without_files_names_the_field(client):
    body = assert_client_error(client.post("/v1/predict/batch"), 422, "invalid_request")
    assert "'files'" in body["message"]


def test_a_hanging_registry_does_not_hold_up_start_up():
    # A server that accepts connections and never answers: the first load hangs.
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    settings = make_settings(
        None,
        mlflow_tracking_uri=f"http://127.0.0.1:{port}",
        mlflow_timeout_s=4,  # the hung attempt ends (and the test with it) after 4 s
        startup_wait_s=0.5,
    )
    started = time.monotonic()
    try:
        with TestClient(create_app(settings)) as client:
            assert time.monotonic() - started < 3
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["reason"] == "the model is loading"
    finally:
        silent.close()


def test_metrics_can_be_restricted_to_networks(colour_model):
    # TestClient's client address is "testclient": in no network.
    settings = make_settings(colour_model, metrics_allowed_networks="10.0.0.0/8, 127.0.0.1")
    with TestClient(create_app(settings)) as client:
        assert_client_error(client.get("/metrics"), 403, "metrics_forbidden")
        assert client.get("/healthz").status_code == 200


def test_a_bad_metrics_network_is_refused_at_start(colour_model):
    with pytest.raises(ValueError, match="not-a-network"):
        make_settings(colour_model, metrics_allowed_networks="10.0.0.0/8,not-a-network")


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _hostile_images() -> dict[str, bytes]:
    return {
        "wide.png": _png(Image.new("L", (4000, 1))),
        "tall.png": _png(Image.new("L", (1, 30000))),
        "huge.png": _png(Image.new("1", (8000, 8000))),  # 64 Mpx in about 8 KB
    }


def test_hostile_images_are_refused_with_a_clear_4xx(client):
    expected = {"wide.png": 422, "tall.png": 422, "huge.png": 413}
    for name, data in _hostile_images().items():
        response = post_image(client, data, name, "image/png")
        body = assert_client_error(
            response, expected[name], "bad_aspect_ratio" if expected[name] == 422 else "too_large"
        )
        assert "Crop it first" in body["message"] or "Resize it first" in body["message"]


def test_hostile_images_in_a_batch_fail_alone(client):
    frames = [Image.new("RGB", (40, 30), (0, 0, 200 + i % 2)) for i in range(300)]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    files = [("files", (n, d, "image/png")) for n, d in _hostile_images().items()]
    files.append(("files", ("animated.gif", animated.getvalue(), "image/gif")))
    results = client.post("/v1/predict/batch", files=files).json()["results"]
    assert [r["error"]["error"] if r["error"] else None for r in results] == [
        "bad_aspect_ratio",
        "bad_aspect_ratio",
        "too_large",
        None,
    ]
    assert results[3]["prediction"]["label"] == "blue"  # its first frame
