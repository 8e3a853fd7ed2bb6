"""Novelty over real HTTP (uvicorn): each prediction says whether the photo looks like
anything the model knows; a model without a novelty reference still serves (null fields).

The model is modelkit's mean-colour model with an `embedding` output: its "training
photos" are the pure label colours, so a red photo is familiar and a grey one is not.
"""

from __future__ import annotations

import httpx
import pytest
from apiserver import running_api
from conftest import TEST_API_KEY, image_bytes
from modelkit import write_model

pytestmark = pytest.mark.integration

RED, GREY = (230, 10, 10), (128, 128, 128)


@pytest.fixture(scope="module")
def novelty_api(tmp_path_factory):
    model = write_model(tmp_path_factory.mktemp("novelty-model"), novelty=True)
    env = {"PLANTOPS_MODEL_PATH": str(model), "PLANTOPS_API_KEY": TEST_API_KEY}
    with running_api(env, tmp_path_factory.mktemp("uvicorn-novelty") / "api.log") as url:
        yield url


@pytest.fixture(scope="module")
def legacy_api(colour_model, tmp_path_factory):
    env = {"PLANTOPS_MODEL_PATH": str(colour_model), "PLANTOPS_API_KEY": TEST_API_KEY}
    with running_api(env, tmp_path_factory.mktemp("uvicorn-legacy") / "api.log") as url:
        yield url


def predict(url: str, colour) -> dict:
    response = httpx.post(f"{url}/v1/predict", files={"file": ("p.png", image_bytes(colour))})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_familiar_photo_is_in_distribution_and_an_unknown_one_is_not(novelty_api):
    familiar, unknown = predict(novelty_api, RED), predict(novelty_api, GREY)
    assert familiar["label"] == "red"
    assert familiar["out_of_distribution"] is False
    assert familiar["novelty_score"] < 0.1
    assert unknown["out_of_distribution"] is True
    assert unknown["novelty_score"] > 0.5  # the model's threshold
    # The closest label and the probabilities are still there, unchanged in shape.
    assert unknown["label"] in {"red", "green", "blue"}
    assert sum(unknown["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_batch_predictions_carry_the_novelty_fields_per_file(novelty_api):
    files = [("files", ("a.png", image_bytes(RED))), ("files", ("b.png", image_bytes(GREY)))]
    response = httpx.post(f"{novelty_api}/v1/predict/batch", files=files)
    assert response.status_code == 200
    results = [item["prediction"] for item in response.json()["results"]]
    assert [r["out_of_distribution"] for r in results] == [False, True]
    assert results[0]["novelty_score"] < results[1]["novelty_score"]


def test_model_info_gives_the_threshold_and_its_false_alarm_rate(novelty_api):
    info = httpx.get(f"{novelty_api}/v1/model").json()
    assert info["novelty"] == {"method": "knn_cosine", "threshold": 0.5, "false_alarm_rate": 0.02}
    assert info["preprocessing"]["embedding_name"] == "embedding"


def test_a_model_without_a_novelty_reference_serves_with_null_fields(legacy_api):
    body = predict(legacy_api, GREY)
    assert body["label"] in {"red", "green", "blue"}
    assert body["novelty_score"] is None
    assert body["out_of_distribution"] is None
    assert httpx.get(f"{legacy_api}/v1/model").json()["novelty"] is None


def test_openapi_documents_the_novelty_fields(novelty_api):
    schemas = httpx.get(f"{novelty_api}/openapi.json").json()["components"]["schemas"]
    prediction = schemas["Prediction"]["properties"]
    assert "less familiar" in prediction["novelty_score"]["description"]
    assert "threshold" in prediction["out_of_distribution"]["description"]
    assert {"method", "threshold", "false_alarm_rate"} <= set(schemas["NoveltyInfo"]["properties"])
