import pytest

from plantops_webapp import csrf

pytestmark = pytest.mark.unit
KEY = "unit-test-secret-key-0123456789"
SESSION = "visitor-session-id-0123456789abc"


def test_the_token_of_a_session_and_purpose_is_accepted():
    token = csrf.token(KEY, SESSION, csrf.UPLOAD)
    assert csrf.is_valid(KEY, SESSION, csrf.UPLOAD, token)


@pytest.mark.parametrize(
    ("session", "purpose", "key"),
    [
        ("another-visitor-session-00000000", csrf.UPLOAD, KEY),
        (SESSION, csrf.feedback_purpose("upload-1"), KEY),
        (SESSION, csrf.UPLOAD, "another-key-of-an-attacker-1234"),
    ],
    ids=["another session", "another form", "another key"],
)
def test_a_token_is_worthless_for_another_session_form_or_key(session, purpose, key):
    token = csrf.token(key, session, purpose)
    assert not csrf.is_valid(KEY, SESSION, csrf.UPLOAD, token)


def test_feedback_tokens_are_bound_to_their_upload():
    token = csrf.token(KEY, SESSION, csrf.feedback_purpose("upload-1"))
    assert csrf.is_valid(KEY, SESSION, csrf.feedback_purpose("upload-1"), token)
    assert not csrf.is_valid(KEY, SESSION, csrf.feedback_purpose("upload-2"), token)


@pytest.mark.parametrize("form_token", [None, "", 42, "x" * 64])
def test_a_missing_or_made_up_token_is_refused(form_token):
    assert not csrf.is_valid(KEY, SESSION, csrf.UPLOAD, form_token)
