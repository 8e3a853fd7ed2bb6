"""The contracts this API owns: the OpenAPI snapshot and the accepted image formats."""

from __future__ import annotations

import io
import json

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from PIL import Image

from plantops_inference_api.contract_files import CONTRACTS_DIR, accepted_formats
from plantops_inference_api.main import create_app
from plantops_inference_api.preprocessing import ImageBudget, decode_image

pytestmark = pytest.mark.unit


def test_the_served_openapi_is_the_snapshot_consumers_are_tested_against():
    with TestClient(create_app(make_settings(None))) as client:
        served = client.get("/openapi.json").json()
    snapshot = json.loads((CONTRACTS_DIR / "openapi.json").read_text())
    assert served == snapshot, (
        "The API's OpenAPI changed: run `make -C repos/inference-api contracts`, then "
        "`make contracts` at the umbrella to refresh the consumers' copies."
    )


def test_the_openapi_states_the_accepted_formats_of_predict():
    snapshot = json.loads((CONTRACTS_DIR / "openapi.json").read_text())
    for path in ("/v1/predict", "/v1/predict/batch"):
        assert snapshot["paths"][path]["post"]["x-accepted-formats"] == accepted_formats()


@pytest.mark.parametrize("fmt", accepted_formats(), ids=lambda fmt: fmt["name"])
def test_every_format_of_the_contract_is_decoded(fmt):
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, fmt["pillow"])
    image = decode_image(buffer.getvalue(), ImageBudget(10_000, 10.0))
    assert image.size == (40, 30)
