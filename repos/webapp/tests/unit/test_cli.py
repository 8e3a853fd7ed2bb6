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


def test_add_reviewer_writes_an_argon2_hash_that_signs_in(tmp_path):
    from plantops_webapp.reviewers import Reviewers, read_accounts_file

    accounts_file = tmp_path / "reviewers"
    runner = CliRunner()
    first = runner.invoke(
        app,
        ["add-reviewer", "rita", "--file", str(accounts_file), "--password-stdin"],
        input="a long enough password\n",
    )
    assert first.exit_code == 0, first.output
    accounts = read_accounts_file(accounts_file)
    assert list(accounts) == ["rita"] and accounts["rita"].startswith("$argon2id$")
    assert "a long enough password" not in accounts_file.read_text()
    assert accounts_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    reviewers = Reviewers(accounts, "k" * 32, 60, 5, 60)
    assert reviewers.sign_in("rita", "a long enough password").reviewer == "rita"
    assert reviewers.sign_in("rita", "wrong").reviewer is None
    # Again with another password: the account is replaced, not duplicated.
    runner.invoke(
        app,
        ["add-reviewer", "rita", "--file", str(accounts_file), "--password-stdin"],
        input="another long password\n",
    )
    assert len(accounts_file.read_text().splitlines()) == 1


def test_add_reviewer_refuses_a_short_password_or_a_bad_name(tmp_path):
    accounts_file = tmp_path / "reviewers"
    runner = CliRunner()
    short = runner.invoke(
        app, ["add-reviewer", "rita", "--file", str(accounts_file), "--password-stdin"], input="x\n"
    )
    bad = runner.invoke(
        app,
        ["add-reviewer", "rita:root", "--file", str(accounts_file), "--password-stdin"],
        input="a long enough password\n",
    )
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    assert bad.exit_code == 2 and "reviewer name" in bad.output
    assert not accounts_file.exists()
