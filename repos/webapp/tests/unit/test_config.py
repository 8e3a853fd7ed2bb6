import pytest
from pydantic import ValidationError

from plantops_webapp.config import Settings

pytestmark = pytest.mark.unit


def test_the_secret_key_has_no_default(monkeypatch):
    monkeypatch.delenv("PLANTOPS_WEBAPP_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="webapp_secret_key"):
        Settings()


def test_a_short_secret_key_is_refused():
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(webapp_secret_key="short")


def test_settings_come_from_plantops_variables(monkeypatch):
    monkeypatch.setenv("PLANTOPS_WEBAPP_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("PLANTOPS_API_URL", "http://api.example:8000")
    monkeypatch.setenv("PLANTOPS_WEBAPP_MAX_UPLOAD_BYTES", "1234")
    settings = Settings()
    assert settings.api_url == "http://api.example:8000"
    assert settings.webapp_max_upload_bytes == 1234


def test_feedback_needs_s3_credentials(monkeypatch):
    monkeypatch.delenv("PLANTOPS_S3_ACCESS_KEY", raising=False)
    monkeypatch.delenv("PLANTOPS_S3_SECRET_KEY", raising=False)
    assert not Settings(webapp_secret_key="k" * 32).feedback_enabled
    with_s3 = Settings(webapp_secret_key="k" * 32, s3_access_key="a", s3_secret_key="b")
    assert with_s3.feedback_enabled
