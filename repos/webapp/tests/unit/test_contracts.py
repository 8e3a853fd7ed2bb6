"""The web app against the contracts it vendors: the API's OpenAPI and image formats.

The response models of schemas.py mirror what the web app reads of the API's answers;
they are checked against the OpenAPI snapshot the API tests itself against, so a drift
(a field renamed, made optional, retyped) fails here instead of on a page.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel

from plantops_webapp import schemas
from plantops_webapp.images import ACCEPTED_FORMATS, sniff

pytestmark = pytest.mark.unit

VENDORED = Path(schemas.__file__).resolve().parent / "contracts" / "vendored" / "inference-api"
OPENAPI = json.loads((VENDORED / "openapi.json").read_text())
FORMATS = json.loads((VENDORED / "image-formats.json").read_text())["formats"]

# Each model of schemas.py and the API schema component it reads.
MIRRORS = [
    (schemas.Prediction, "Prediction"),
    (schemas.ModelRef, "ModelRef"),
    (schemas.ModelInfo, "ModelInfo"),
]


def json_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a (sub)schema allows ('null' included), `$ref` as 'object'."""
    if "anyOf" in schema:
        return set().union(*(json_types(option) for option in schema["anyOf"]))
    if "$ref" in schema:
        return {"object"}
    kind = schema.get("type")
    found = set(kind) if isinstance(kind, list) else {kind}
    if schema.get("format") == "date-time":
        found = {"date-time" if k == "string" else k for k in found}
    return found


def api_component(name: str) -> dict[str, Any]:
    return OPENAPI["components"]["schemas"][name]


@pytest.mark.parametrize(("model", "component"), MIRRORS, ids=[c for _, c in MIRRORS])
def test_every_field_the_web_app_reads_is_in_the_api_answer_with_a_type_it_accepts(
    model: type[BaseModel], component: str
):
    api = api_component(component)
    ours = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for field in model.model_fields:
        assert field in api["properties"], f"{component}.{field} is not in the API's answer"
        api_types = json_types(api["properties"][field])
        our_types = json_types(ours["properties"][field])
        # float in our model accepts the API's integers too (JSON numbers).
        if "number" in our_types:
            our_types |= {"integer"}
        assert api_types <= our_types, f"{component}.{field}: API {api_types}, ours {our_types}"


@pytest.mark.parametrize(("model", "component"), MIRRORS, ids=[c for _, c in MIRRORS])
def test_the_web_app_requires_exactly_what_the_api_always_sends(
    model: type[BaseModel], component: str
):
    """Required here only what the API requires; what the API always sends (required and
    never null) required here too, except ModelInfo's details, optional for an older API."""
    api = api_component(component)
    api_required = set(api.get("required", []))
    ours = {name for name, field in model.model_fields.items() if field.is_required()}
    assert ours <= api_required, f"{component}: we require {ours - api_required}, the API not"
    always = {
        name
        for name in api_required & set(model.model_fields)
        if "null" not in json_types(api["properties"][name])
    }
    tolerated = {"labels", "input_size", "loaded_at"} if component == "ModelInfo" else set()
    assert always - tolerated <= ours, f"{component}: {always - tolerated - ours} not required here"


def test_trained_at_means_the_same_on_both_sides():
    described = api_component("ModelInfo")["properties"]["trained_at"]["description"]
    assert described == "When the training run ended."


def test_the_web_app_takes_the_api_formats_that_browsers_show():
    assert [f.media_type for f in ACCEPTED_FORMATS] == [
        fmt["media_type"] for fmt in FORMATS if fmt["shown_by_browsers"]
    ]
    for fmt in FORMATS:
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, fmt["pillow"])
        found = sniff(buffer.getvalue())
        if fmt["shown_by_browsers"]:
            assert found is not None and found.media_type == fmt["media_type"]
        else:
            assert found is None, f"{fmt['name']} is taken but not every browser shows it"


def test_the_formats_are_the_ones_the_api_states_in_its_openapi():
    states = OPENAPI["paths"]["/v1/predict"]["post"]["x-accepted-formats"]
    assert states == FORMATS
