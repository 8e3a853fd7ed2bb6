import pytest
from typer.testing import CliRunner

from plantops_webapp.cli import app
from plantops_webapp.config import get_settings

pytestmark = pytest.mark.unit


def test_serve_without_a_secret_key_says_which_variable_is_missing(monkeypatch):
    monkeypatch.delenv("PLANTOPS_WEBAPP_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["serve"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "PLANTOPS_WEBAPP_SECRET_KEY: Field required" in result.output
