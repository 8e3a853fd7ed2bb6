"""Reviewer accounts, sign-in with lockout, and the signed session cookie.

Accounts are `name -> argon2id hash` (argon2-cffi), from PLANTOPS_WEBAPP_REVIEWERS (JSON)
and the file PLANTOPS_WEBAPP_REVIEWERS_FILE (`name:hash` lines, written by
`plantops-webapp add-reviewer`); the file is read at start-up. No password is stored.

Sign-in costs one argon2 verification whether the name exists or not (a dummy hash for an
unknown name), so the answer time does not tell which names exist. After
`max_failures` failed attempts on a name within `lockout_s`, that name is locked for
`lockout_s`, even with the right password, and the message is the same for a name that
does not exist. The failure counts live in this replica's memory.

The session cookie is `name.expiry.HMAC(secret key, name, expiry, account hash)`: it works
on every replica and across restarts, it cannot be forged without the key, it expires, and
changing a reviewer's password (or removing the account) ends their sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)

SESSION_COOKIE = "plantops_reviewer"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

_hasher = PasswordHasher()
# Verified against when the name is unknown, so that answer takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("plantops-no-such-reviewer")


class AccountsError(ValueError):
    """The reviewer accounts file or setting cannot be read."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def read_accounts_file(path: Path) -> dict[str, str]:
    accounts: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise AccountsError(f"cannot read the reviewers file {path}: {exc.strerror}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, password_hash = line.strip().partition(":")
        if not NAME_PATTERN.match(name) or not password_hash.startswith("$argon2"):
            raise AccountsError(f"{path}:{number}: expected `name:$argon2id$...`")
        accounts[name] = password_hash
    return accounts


def write_account(path: Path, name: str, password_hash: str) -> None:
    """Add or replace one `name:hash` line; the file is readable by its owner only."""
    if not NAME_PATTERN.match(name):
        raise AccountsError("a reviewer name is 1-64 characters from A-Z, a-z, 0-9, _ . @ -")
    accounts = read_accounts_file(path) if path.exists() else {}
    accounts[name] = password_hash
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{n}:{h}\n" for n, h in sorted(accounts.items()))
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def load_accounts(from_env: dict[str, str], file: Path | None) -> dict[str, str]:
    """The accounts of the setting and the file. A file that does not exist yet gives none
    (logged: nobody can review, so nothing new trains); an unreadable or malformed one stops
    the start-up with the line at fault."""
    accounts = dict(from_env)
    if file is not None and not file.exists():
        logger.warning("reviewers file %s does not exist: no reviewer accounts from it", file)
    elif file is not None:
        accounts.update(read_accounts_file(file))
    for name in accounts:
        if not NAME_PATTERN.match(name):
            raise AccountsError(f"reviewer name {name!r} is not valid")
    return accounts


@dataclass(frozen=True)
class SignInResult:
    reviewer: str | None
    locked_for_s: int = 0


class Reviewers:
    """The accounts, the failure counts, and the session tokens."""

    def __init__(
        self,
        accounts: dict[str, str],
        secret_key: str,
        session_s: float,
        max_failures: int,
        lockout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = accounts
        self._secret = secret_key.encode()
        self._session_s = session_s
        self._max_failures = max_failures
        self._lockout_s = lockout_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._accounts)

    def sign_in(self, name: str, password: str) -> SignInResult:
        """Check the password; count a failure; refuse while the name is locked."""
        key = name.strip().lower()[:64]
        locked = self._locked_for(key)
        if locked:
            return SignInResult(None, locked)
        stored = self._accounts.get(name)
        ok = _verify(stored or _DUMMY_HASH, password) and stored is not None
        if ok:
            with self._lock:
                self._failures.pop(key, None)
            return SignInResult(name)
        return SignInResult(None, self._record_failure(key))

    def _locked_for(self, key: str) -> int:
        with self._lock:
            until = self._locked_until.get(key, 0.0)
            if until <= self._clock():
                self._locked_until.pop(key, None)
                return 0
            return max(1, int(until - self._clock()))

    def _record_failure(self, key: str) -> int:
        """Count the failure; the lock's length in seconds when this one locks the name."""
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < self._lockout_s]
            recent.append(now)
            if len(recent) < self._max_failures:
                self._failures[key] = recent[-self._max_failures :]
                return 0
            self._failures.pop(key, None)
            self._locked_until[key] = now + self._lockout_s
            return int(self._lockout_s)

    def session_token(self, name: str) -> str:
        expires = int(self._clock() + self._session_s)
        return f"{name}.{expires}.{self._signature(name, expires)}"

    def session_reviewer(self, token: str | None) -> str | None:
        """The reviewer a session cookie names, if it is genuine, current, and still valid."""
        if not token or token.count(".") < 2:
            return None
        name, expires_text, signature = token.rsplit(".", 2)
        if name not in self._accounts or not expires_text.isdigit():
            return None
        expires = int(expires_text)
        if expires < self._clock():
            return None
        if not hmac.compare_digest(signature, self._signature(name, expires)):
            return None
        return name

    def _signature(self, name: str, expires: int) -> str:
        account = hashlib.sha256(self._accounts.get(name, "").encode()).hexdigest()
        message = f"reviewer-session\n{name}\n{expires}\n{account}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
