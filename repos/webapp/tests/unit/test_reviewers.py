import pytest

from plantops_webapp.reviewers import AccountsError, Reviewers, hash_password, read_accounts_file

pytestmark = pytest.mark.unit
KEY = "unit-test-secret-key-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def rita_hash() -> str:
    return hash_password("rita's password")


def test_the_lock_lifts_after_the_lockout_time(rita_hash):
    clock = Clock()
    reviewers = Reviewers({"rita": rita_hash}, KEY, 3600, 3, 600, clock=clock)
    results = [reviewers.sign_in("rita", "guess") for _ in range(3)]
    assert [r.locked_for_s for r in results] == [0, 0, 600]
    assert reviewers.sign_in("rita", "rita's password").reviewer is None  # locked
    clock.now += 601
    assert reviewers.sign_in("rita", "rita's password").reviewer == "rita"


def test_a_session_token_expires_and_dies_with_a_password_change(rita_hash):
    clock = Clock()
    reviewers = Reviewers({"rita": rita_hash}, KEY, 3600, 3, 600, clock=clock)
    token = reviewers.session_token("rita")
    assert reviewers.session_reviewer(token) == "rita"
    assert reviewers.session_reviewer(token.replace("rita.", "root.")) is None
    new_password = Reviewers({"rita": hash_password("new one")}, KEY, 3600, 3, 600, clock=clock)
    assert new_password.session_reviewer(token) is None
    other_key = Reviewers({"rita": rita_hash}, "another-key-0123456789", 3600, 3, 600, clock=clock)
    assert other_key.session_reviewer(token) is None
    clock.now += 3601
    assert reviewers.session_reviewer(token) is None


def test_a_malformed_accounts_file_names_the_line(tmp_path):
    accounts_file = tmp_path / "reviewers"
    accounts_file.write_text("# reviewers\nrita:$argon2id$v=19$x\nbob:plaintext\n")
    with pytest.raises(AccountsError, match=r"reviewers:3: expected"):
        read_accounts_file(accounts_file)
