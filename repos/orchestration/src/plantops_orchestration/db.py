"""The plants_data table: schema, idempotent migrations, seed, and the pipeline's queries.

MySQL 8 (compose, Kubernetes) and MariaDB (this machine) both run this code, so
migrations check `information_schema` instead of using MariaDB-only
`ADD COLUMN IF NOT EXISTS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import mysql.connector

from plantops_orchestration.config import Settings

TABLE = "plants_data"

# Row states (the `status` column). See README.md, "Table".
NEW = "new"  # waiting for ingestion
STORED = "stored"  # raw/ and fmt/ objects exist, url_s3 set
DUPLICATE = "duplicate"  # same bytes as `duplicate_of`; url_s3 points at that row's object
FAILED = "failed"  # last_error says why; retried while `retryable` and attempts < max

# Review states (the `review_status` column, sql/migrations/0001_feedback_review.sql). Only
# accepted rows are ingested and enter a dataset; the web app writes feedback as pending.
ACCEPTED = "accepted"
PENDING_REVIEW = "pending"
REJECTED = "rejected"

# Which SQL migration files ran (name, time): each file runs once.
MIGRATIONS_TABLE = "plants_migrations"
# A column or index that already exists: a file that stopped halfway is being run again.
ALREADY_APPLIED_ERRNOS = {1060, 1061}  # ER_DUP_FIELDNAME, ER_DUP_KEYNAME

# A label becomes part of S3 keys and a class name: keep it to a safe alphabet.
LABEL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Column:
    name: str
    ddl: str


# The pipeline's columns, added in this order by `apply_migrations`. Append only.
PIPELINE_COLUMNS = (
    Column("status", f"VARCHAR(16) NOT NULL DEFAULT '{NEW}'"),
    Column("attempts", "INT NOT NULL DEFAULT 0"),
    Column("retryable", "BOOLEAN NOT NULL DEFAULT TRUE"),
    Column("last_error", "VARCHAR(1024) NULL"),
    Column("sha256", "CHAR(64) NULL"),
    Column("content_type", "VARCHAR(128) NULL"),
    Column("size_bytes", "INT NULL"),
    Column("width", "INT NULL"),
    Column("height", "INT NULL"),
    Column("duplicate_of", "BIGINT NULL"),
    Column("created_at", "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"),
    Column("updated_at", "TIMESTAMP NULL"),
    Column("stored_at", "TIMESTAMP NULL"),
)
PIPELINE_INDEXES = {
    "ix_plants_data_status": "(status)",
    "ix_plants_data_sha256": "(sha256)",
}


@dataclass(frozen=True)
class Row:
    id: int
    url_source: str
    label: str
    attempts: int


@dataclass(frozen=True)
class StoredImage:
    id: int
    url_s3: str
    label: str


def connect(settings: Settings):  # -> mysql.connector.MySQLConnection
    return mysql.connector.connect(
        host=settings.mysql_host,
        port=settings.mysql_port,
        user=settings.mysql_user,
        password=settings.mysql_password,
        database=settings.mysql_database,
        connection_timeout=10,
        autocommit=False,
    )


@contextmanager
def connection(settings: Settings) -> Iterator:
    conn = connect(settings)
    try:
        yield conn
    finally:
        conn.close()


# ------------------------------------------------------------------ schema


def sql_file(name: str) -> str:
    return resources.files("plantops_orchestration").joinpath("sql", name).read_text()


def run_script(conn, script: str) -> None:
    """Run a file of `;`-separated statements (`--` comment lines; no `;` in literals)."""
    cursor = conn.cursor()
    for statement in statements(script):
        cursor.execute(statement)
    conn.commit()


def existing_columns(conn) -> set[str]:
    cursor = conn.cursor()
    cursor.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (TABLE,),
    )
    return {name.lower() for (name,) in cursor.fetchall()}


def existing_indexes(conn) -> set[str]:
    cursor = conn.cursor()
    cursor.execute(
        "SELECT DISTINCT index_name FROM information_schema.statistics "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (TABLE,),
    )
    return {name.lower() for (name,) in cursor.fetchall()}


def apply_migrations(conn) -> list[str]:
    """Add the pipeline's missing columns and indexes; return what was added."""
    added = []
    cursor = conn.cursor()
    have = existing_columns(conn)
    for column in PIPELINE_COLUMNS:
        if column.name not in have:
            cursor.execute(f"ALTER TABLE {TABLE} ADD COLUMN {column.name} {column.ddl}")
            added.append(f"column {column.name}")
    indexes = existing_indexes(conn)
    for name, columns in PIPELINE_INDEXES.items():
        if name not in indexes:
            cursor.execute(f"CREATE INDEX {name} ON {TABLE} {columns}")
            added.append(f"index {name}")
    conn.commit()
    return added


def sql_migrations() -> list[tuple[str, str]]:
    """(name, script) of every file in sql/migrations, in name order."""
    folder = resources.files("plantops_orchestration").joinpath("sql", "migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text()) for f in files]


def statements(script: str) -> list[str]:
    """The `;`-separated statements of a script, without its `--` comment lines."""
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def apply_sql_migrations(conn) -> list[str]:
    """Run the sql/migrations files not run yet on this database; return their names."""
    cursor = conn.cursor()
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name VARCHAR(128) NOT NULL PRIMARY KEY, "
        "applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE = InnoDB"
    )
    cursor.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")
    done = {name for (name,) in cursor.fetchall()}
    applied = []
    for name, script in sql_migrations():
        if name in done:
            continue
        for statement in statements(script):
            try:
                cursor.execute(statement)
            except mysql.connector.Error as error:
                if error.errno not in ALREADY_APPLIED_ERRNOS:
                    raise
        cursor.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (%s)", (name,))
        conn.commit()
        applied.append(f"migration {name}")
    return applied


def init_db(conn, seed: bool = True) -> list[str]:
    """Create the table, run the migrations and (by default) insert the canonical rows."""
    run_script(conn, sql_file("01_schema.sql"))
    added = apply_migrations(conn) + apply_sql_migrations(conn)
    if seed:
        run_script(conn, sql_file("02_seed.sql"))
    return added


# ----------------------------------------------------------------- new rows


class RowConflict(ValueError):
    """The URL is already in the table with another label."""


def check_label(label: str) -> None:
    if not LABEL_PATTERN.match(label):
        raise ValueError(
            f"label {label!r} is not valid: use 1-64 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )


def check_url(url: str) -> None:
    if not re.match(r"^(https?://[^/\s]+/\S*|s3://[^/\s]+/\S+)$", url):
        raise ValueError(f"url {url!r} is not an http(s):// URL or an s3://bucket/key URI")
    if len(url) > 768:
        raise ValueError(f"url is {len(url)} characters long; at most 768 are stored")


def add_row(conn, url: str, label: str) -> tuple[int, bool]:
    """Insert a source row; return (id, created). The same URL and label twice is a no-op."""
    check_url(url)
    check_label(label)
    cursor = conn.cursor()
    cursor.execute(f"SELECT id, label FROM {TABLE} WHERE url_source = %s", (url,))
    found = cursor.fetchone()
    if found:
        row_id, existing_label = found
        if existing_label != label:
            raise RowConflict(
                f"{url} is already row {row_id} with label {existing_label!r}; rows are never "
                "relabelled by `add`"
            )
        return int(row_id), False
    # An operator adding a source is its reviewer: the row is accepted as it is added.
    cursor.execute(
        f"INSERT INTO {TABLE} (url_source, label, review_status) VALUES (%s, %s, %s)",
        (url, label, ACCEPTED),
    )
    conn.commit()
    return int(cursor.lastrowid), True


# --------------------------------------------------------------- ingestion


def pending_row_ids(conn, max_attempts: int) -> list[int]:
    """Accepted rows never ingested, and failed ones that may be tried again.

    Rows waiting for review or rejected are never fetched: their bytes stay where the web
    app put them until a reviewer accepts them.
    """
    cursor = conn.cursor()
    cursor.execute(
        f"SELECT id FROM {TABLE} WHERE review_status = %s AND (status = %s "
        "OR (status = %s AND retryable AND attempts < %s)) ORDER BY id",
        (ACCEPTED, NEW, FAILED, max_attempts),
    )
    return [int(row_id) for (row_id,) in cursor.fetchall()]


def rows_to_ingest(conn, row_ids: Iterable[int], max_attempts: int) -> list[Row]:
    """The given rows that are still pending (another run may have stored some since)."""
    ids = list(row_ids)
    if not ids:
        return []
    cursor = conn.cursor()
    marks = ",".join(["%s"] * len(ids))
    cursor.execute(
        f"SELECT id, url_source, label, attempts FROM {TABLE} WHERE id IN ({marks}) "
        "AND review_status = %s "
        "AND (status = %s OR (status = %s AND retryable AND attempts < %s)) ORDER BY id",
        (*ids, ACCEPTED, NEW, FAILED, max_attempts),
    )
    return [Row(int(i), url, label, int(n)) for i, url, label, n in cursor.fetchall()]


def stored_by_sha(conn, shas: Iterable[str]) -> dict[str, StoredImage]:
    """The row that first stored each of these contents, if any."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    cursor = conn.cursor()
    marks = ",".join(["%s"] * len(wanted))
    cursor.execute(
        f"SELECT sha256, id, url_s3, label FROM {TABLE} "
        f"WHERE status = %s AND sha256 IN ({marks}) ORDER BY id",
        (STORED, *wanted),
    )
    found: dict[str, StoredImage] = {}
    for sha, row_id, url_s3, label in cursor.fetchall():
        found.setdefault(sha, StoredImage(int(row_id), url_s3, label))
    return found


def mark_stored(conn, row_id: int, url_s3: str, image_facts: dict) -> None:
    cursor = conn.cursor()
    cursor.execute(
        f"UPDATE {TABLE} SET status = %s, url_s3 = COALESCE(url_s3, %s), sha256 = %s, "
        "content_type = %s, size_bytes = %s, width = %s, height = %s, last_error = NULL, "
        "duplicate_of = NULL, attempts = attempts + 1, stored_at = CURRENT_TIMESTAMP, "
        "updated_at = CURRENT_TIMESTAMP WHERE id = %s",
        (
            STORED,
            url_s3,
            image_facts["sha256"],
            image_facts["content_type"][:128],
            image_facts["size_bytes"],
            image_facts["width"],
            image_facts["height"],
            row_id,
        ),
    )


def mark_duplicate(conn, row_id: int, original: StoredImage, sha: str, note: str) -> None:
    cursor = conn.cursor()
    cursor.execute(
        f"UPDATE {TABLE} SET status = %s, url_s3 = COALESCE(url_s3, %s), sha256 = %s, "
        "duplicate_of = %s, last_error = %s, attempts = attempts + 1, "
        "stored_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP WHERE id = %s",
        (DUPLICATE, original.url_s3, sha, original.id, note[:1024], row_id),
    )


def mark_failed(conn, row_id: int, reason: str, retryable: bool) -> None:
    cursor = conn.cursor()
    cursor.execute(
        f"UPDATE {TABLE} SET status = %s, last_error = %s, retryable = %s, "
        "attempts = attempts + 1, updated_at = CURRENT_TIMESTAMP WHERE id = %s",
        (FAILED, reason[:1024], retryable, row_id),
    )


def dataset_images(conn) -> list[tuple[str, str]]:
    """(label, sha256) of every stored, accepted image: the content of the dataset."""
    cursor = conn.cursor()
    cursor.execute(
        f"SELECT label, sha256 FROM {TABLE} "
        "WHERE status = %s AND review_status = %s AND sha256 IS NOT NULL",
        (STORED, ACCEPTED),
    )
    return [(label, sha) for label, sha in cursor.fetchall()]


def status_counts(conn) -> dict[str, int]:
    cursor = conn.cursor()
    cursor.execute(f"SELECT status, COUNT(*) FROM {TABLE} GROUP BY status ORDER BY status")
    return {status: int(n) for status, n in cursor.fetchall()}


def accepted_since(conn, moment: datetime) -> int:
    """Feedback a reviewer accepted after `moment` (the champion's training time): what a
    retraining would add. The same count as the webapp's review queue shows."""
    utc = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    cursor = conn.cursor()
    cursor.execute(
        f"SELECT COUNT(*) FROM {TABLE} "
        "WHERE review_status = %s AND reviewed_at IS NOT NULL AND reviewed_at > %s",
        (ACCEPTED, utc),
    )
    (count,) = cursor.fetchone()
    return int(count)


def review_counts(conn) -> dict[str, int]:
    cursor = conn.cursor()
    cursor.execute(f"SELECT review_status, COUNT(*) FROM {TABLE} GROUP BY review_status ORDER BY 1")
    return {state: int(n) for state, n in cursor.fetchall()}


def failed_rows(conn, limit: int = 50) -> list[dict]:
    cursor = conn.cursor()
    cursor.execute(
        f"SELECT id, url_source, label, attempts, retryable, last_error FROM {TABLE} "
        "WHERE status = %s ORDER BY id LIMIT %s",
        (FAILED, limit),
    )
    keys = ("id", "url_source", "label", "attempts", "retryable", "last_error")
    return [dict(zip(keys, values, strict=True)) for values in cursor.fetchall()]
