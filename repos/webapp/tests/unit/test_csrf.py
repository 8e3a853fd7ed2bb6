import pytest

from plantops_webapp import csrf

pytestmark = pytest.mark.unit
KEY = "unit-test-secret-key-0123456789"


def test_a_fresh_token_is_accepted_when_cookie_and_form_match():
    token = csrf.new_token(KEY)
    assert csrf.is_valid(KEY, token, token)


@pytest.mark.parametrize(
    ("cookie", "form"),
    [(None, "x.y"), ("x.y", None), ("", ""), ("a.b", "a.b")],
    ids=["no cookie", "no field", "empty", "unsigned"],
)
def test_missing_or_unsigned_tokens_are_refused(cookie, form):
    assert not csrf.is_valid(KEY, cookie, form)


def test_a_token_signed_with_another_key_is_refused():
    forged = csrf.new_token("another-key-of-an-attacker-1234")
    assert not csrf.is_valid(KEY, forged, forged)


def test_cookie_and_field_must_be_the_same_token():
    assert not csrf.is_valid(KEY, csrf.new_token(KEY), csrf.new_token(KEY))
