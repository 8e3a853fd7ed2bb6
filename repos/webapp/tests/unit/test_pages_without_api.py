"""Pages when the inference API is down: friendly 503s, never a stack trace.

The API URL points at a loopback port where nothing listens: a real refused connection.
"""

import pytest
from fastapi.testclient import TestClient
from plantops_infra.processes import free_port

from plantops_webapp.main import create_app
from tests.conftest import make_settings, site_client
from tests.support import csrf_token_in, photo

pytestmark = pytest.mark.unit


@pytest.fixture
def client():
    settings = make_settings(f"http://127.0.0.1:{free_port()}", webapp_max_upload_bytes=200_000)
    with site_client(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def upload(client: TestClient, data: bytes, name: str = "plant.jpg", token: str | None = None):
    if token is None:
        token = csrf_token_in(client.get("/").text)
    files = {"file": (name, data, "image/jpeg")}
    return client.post("/predict", data={"csrf_token": token}, files=files)


def test_the_upload_page_states_types_and_size_limit(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "JPEG, PNG, WebP or GIF" in page.text
    assert "0.190735 MB" in page.text or "0.19" in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert '<label for="file">' in page.text


def test_every_page_carries_the_security_headers(client):
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # no inline script: the CSP would block it


def test_api_down_gives_a_friendly_503_page(client):
    answer = upload(client, photo().read_bytes())
    assert answer.status_code == 503
    assert "Predictions are unavailable right now" in answer.text
    assert "cannot be reached" in answer.text
    assert "Traceback" not in answer.text


def test_model_page_and_readiness_say_503_when_the_api_is_down(client):
    assert client.get("/model").status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not ready"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_an_upload_without_the_csrf_token_is_refused(client):
    answer = upload(client, photo().read_bytes(), token="forged.token")
    assert answer.status_code == 403
    assert "This form has expired" in answer.text


def test_a_file_over_the_limit_is_refused_with_413(client):
    answer = upload(client, b"\xff\xd8\xff" + b"0" * 400_000)
    assert answer.status_code == 413
    assert "larger than" in answer.text
    assert 'role="alert"' in answer.text


def test_an_unknown_page_is_a_404_page_and_an_old_result_says_upload_again(client):
    assert client.get("/nope").status_code == 404
    expired = client.get("/results/unknown-id")
    assert expired.status_code == 404
    assert "upload the photo again" in expired.text


def test_metrics_use_route_templates_not_raw_paths(client):
    client.get("/results/some-random-id")
    metrics = client.get("/metrics").text
    assert 'route="/results/{upload_id}"' in metrics
    assert "some-random-id" not in metrics


def test_uploads_past_the_limit_get_a_friendly_429_page():
    settings = make_settings(f"http://127.0.0.1:{free_port()}", webapp_uploads_per_minute=2)
    with site_client(create_app(settings), raise_server_exceptions=False) as limited:
        codes = [upload(limited, photo().read_bytes()).status_code for _ in range(3)]
        refused = upload(limited, photo().read_bytes())
    assert codes == [503, 503, 429]  # the API is down; the limit applies before it is called
    assert "Please slow down" in refused.text and "Traceback" not in refused.text
    assert int(refused.headers["retry-after"]) > 0


def test_a_cross_site_upload_is_refused(client):
    token = csrf_token_in(client.get("/").text)
    files = {"file": ("plant.jpg", photo().read_bytes(), "image/jpeg")}
    answer = client.post(
        "/predict",
        data={"csrf_token": token},
        files=files,
        headers={"origin": "https://attacker.example"},
    )
    assert answer.status_code == 403
    assert "not sent from this site" in answer.text


def test_the_visitor_cookie_is_httponly_and_lax(client):
    cookie = client.get("/").headers["set-cookie"]
    assert cookie.startswith("plantops_visitor=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/").headers.get("set-cookie") is None  # kept, not renewed each time
