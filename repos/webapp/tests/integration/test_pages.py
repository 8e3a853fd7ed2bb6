"""Routes against a real inference API process serving a tiny ONNX model (no mocks)."""

import io
import re

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.support import LABELS, csrf_token_in, photo

pytestmark = pytest.mark.integration


def upload(client: TestClient, data: bytes, name: str = "plant.jpg", media_type="image/jpeg"):
    token = csrf_token_in(client.get("/").text)
    files = {"file": (name, data, media_type)}
    return client.post("/predict", data={"csrf_token": token}, files=files, follow_redirects=False)


def result_of(client: TestClient, data: bytes, name: str = "plant.jpg"):
    answer = upload(client, data, name)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"], client.get(answer.headers["location"])


def test_a_photo_gives_label_confidence_a_bar_per_label_and_the_model(webapp, inference_api):
    image = photo("dandelion", 3).read_bytes()
    expected = httpx.post(f"{inference_api}/v1/predict", files={"file": ("p.jpg", image)}).json()
    location, page = result_of(webapp, image)
    assert page.status_code == 200
    shown = re.search(r'id="predicted-label">([^<]+)<', page.text).group(1)
    assert shown == expected["label"]
    assert f"{expected['confidence'] * 100:.1f}%" in page.text
    meters = re.findall(r'<meter [^>]*value="([0-9.e-]+)"', page.text)
    assert len(meters) == len(LABELS)
    assert sorted(float(v) for v in meters) == pytest.approx(
        sorted(expected["probabilities"].values())
    )
    assert f"version {expected['model']['version']}" in page.text
    image_answer = webapp.get(f"{location}/image")
    assert image_answer.headers["content-type"] == "image/jpeg"
    assert image_answer.content == image


def api_predictions_asked(api_url: str) -> float:
    """How many POST /v1/predict the API has answered, from its own metrics."""
    metrics = httpx.get(f"{api_url}/metrics").text
    pattern = r'plantops_api_requests_total\{[^}]*route="/v1/predict"[^}]*\} ([0-9.e+]+)'
    return sum(float(v) for v in re.findall(pattern, metrics))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "name"),
    [(b"these are not the pixels you are looking for\n", "notes.txt"), (None, "leaf.bmp")],
    ids=["text", "bmp"],
)
def test_a_file_the_page_cannot_show_is_refused_without_asking_the_api(
    webapp, inference_api, data, name
):
    if data is None:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (20, 200, 20)).save(buffer, "BMP")
        data = buffer.getvalue()
    before = api_predictions_asked(inference_api)
    answer = upload(webapp, data, name, "application/octet-stream")
    assert answer.status_code == 415
    assert 'role="alert"' in answer.text
    assert f"{name} cannot be shown here: upload a JPEG, PNG, WebP or GIF image." in answer.text
    assert '<form class="upload-form"' in answer.text  # the user can try again right there
    assert api_predictions_asked(inference_api) == before


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (4000, 1)),
        Image.new("L", (1, 30000)),
        Image.new("1", (4000, 4000)),
        Image.new("RGBA", (3650, 2740)),  # 10 Mpx: within RGB's budget, over RGBA's
    ],
    ids=["4000x1", "1x30000", "16-mpx-in-a-tiny-file", "10-mpx-rgba"],
)
def test_an_image_over_the_apis_budget_gets_its_message_without_asking_it(
    webapp, inference_api, image
):
    data = png(image)
    api = httpx.post(f"{inference_api}/v1/predict", files={"file": ("p.png", data)})
    assert api.status_code in (413, 422)
    before = api_predictions_asked(inference_api)
    answer = upload(webapp, data, "p.png", "image/png")
    assert answer.status_code == api.status_code
    assert api.json()["message"] in answer.text
    assert api_predictions_asked(inference_api) == before


def test_a_hostile_file_name_is_shown_escaped(webapp):
    name = "<script>alert(1)</script>.jpg"
    _, page = result_of(webapp, photo().read_bytes(), name)
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in page.text


def test_a_low_confidence_prediction_carries_a_notice(inference_api):
    from plantops_webapp.main import create_app
    from tests.conftest import make_settings, site_client

    # With a threshold of 100%, every prediction is "low confidence".
    settings = make_settings(inference_api, webapp_low_confidence=1.0)
    with site_client(create_app(settings)) as client:
        _, page = result_of(client, photo().read_bytes())
    assert 'id="low-confidence"' in page.text
    assert "not sure" in page.text


def test_a_confident_prediction_has_no_low_confidence_notice(inference_api):
    from plantops_webapp.main import create_app
    from tests.conftest import make_settings, site_client

    settings = make_settings(inference_api, webapp_low_confidence=0.0)
    with site_client(create_app(settings)) as client:
        _, page = result_of(client, photo().read_bytes())
    assert 'id="low-confidence"' not in page.text


def test_the_model_page_shows_what_the_api_serves(webapp, inference_api):
    info = httpx.get(f"{inference_api}/v1/model").json()
    page = webapp.get("/model")
    assert page.status_code == 200
    assert f'id="model-name">{info["name"]}<' in page.text
    assert f'id="model-version">{info["version"]}<' in page.text
    assert ", ".join(LABELS) in page.text
    assert " \N{MULTIPLICATION SIGN} ".join(str(n) for n in info["input_size"]) in page.text
    assert info["loaded_at"][:10] in page.text  # "Serving since" that day
    assert "/tmp/" not in page.text  # where the artifacts live is not for users


def test_readiness_follows_the_api(webapp):
    ready = webapp.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


def test_metrics_count_requests_and_predictions_by_label(webapp):
    _, page = result_of(webapp, photo().read_bytes())
    label = re.search(r'id="predicted-label">([^<]+)<', page.text).group(1)
    metrics = webapp.get("/metrics").text
    assert f'plantops_webapp_predictions_total{{label="{label}"}} 1.0' in metrics
    assert 'route="/predict"' in metrics and 'status="303"' in metrics
    assert "plantops_webapp_request_duration_seconds_bucket" in metrics
