"""How the web app reads the inference API's answers (httpx responses built in memory)."""

import httpx
import pytest

from plantops_webapp.api_client import error_message
from plantops_webapp.schemas import Prediction

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": "invalid_image", "message": "Not an image."}, "Not an image."),
        ({"detail": "Too big."}, "Too big."),
        ({"detail": [{"loc": ["body", "file"], "msg": "Field required"}]}, "Field required"),
        ({"status": "not ready", "reason": "no model yet"}, "no model yet"),
    ],
)
def test_the_message_is_found_in_each_error_shape(body, expected):
    assert error_message(httpx.Response(422, json=body)) == expected


def test_an_error_without_json_still_says_what_happened():
    message = error_message(httpx.Response(418, text="<html>teapot</html>"))
    assert "HTTP 418" in message


def test_labels_are_ranked_from_most_to_least_probable():
    prediction = Prediction(
        label="b",
        confidence=0.5,
        probabilities={"a": 0.2, "b": 0.5, "c": 0.3},
        model={"name": "m", "version": "3", "alias": "champion"},
    )
    assert [label for label, _ in prediction.ranked()] == ["b", "c", "a"]


def test_times_are_shown_in_utc():
    from datetime import datetime, timedelta, timezone

    from plantops_webapp.rendering import utc_time

    paris = timezone(timedelta(hours=1))
    assert utc_time(datetime(2026, 11, 27, 22, 30, tzinfo=paris)) == "2026-11-27 21:30 UTC"
    assert utc_time(datetime(2026, 11, 27, 21, 30)) == "2026-11-27 21:30 UTC"
