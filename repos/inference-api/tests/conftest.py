"""Shared fixtures: small real ONNX models, test images and an app serving them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from modelkit import write_model
from PIL import Image

from plantops_inference_api.config import Settings
from plantops_inference_api.main import create_app

TEST_API_KEY = "test-api-key"


def image_bytes(
    colour: tuple[int, ...] = (220, 20, 20), size=(64, 48), fmt="JPEG", mode="RGB", **save
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, fmt, **save)
    return buffer.getvalue()


def make_settings(model_path: Path | str | None, **overrides) -> Settings:
    values = {
        "model_path": str(model_path) if model_path else None,
        "api_key": TEST_API_KEY,
        "model_retry_interval_s": 0.2,
        "model_poll_interval_s": 0.2,
        "log_level": "INFO",
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-label model answering by the crop's mean colour: red, green or blue."""
    return write_model(tmp_path_factory.mktemp("colour-model"))


@pytest.fixture
def client(colour_model: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(colour_model))) as test_client:
        yield test_client
