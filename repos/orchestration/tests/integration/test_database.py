"""The plants_data table on a real MariaDB/MySQL: schema, seed, migrations, `add`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from plantops_orchestration import db
from plantops_orchestration.cli import app

pytestmark = pytest.mark.integration

CANONICAL = "https://raw.githubusercontent.com/btphan95/greenr-airflow/refs/heads/master/data/"


def count(conn, where: str = "1=1") -> int:
    cursor = conn.cursor()
    conn.commit()
    cursor.execute(f"SELECT COUNT(*) FROM plants_data WHERE {where}")
    return cursor.fetchone()[0]


def test_init_db_twice_gives_the_400_canonical_rows_with_no_url_s3(env, settings):
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(app, ["init-db"])
        assert result.exit_code == 0, result.output
    with db.connection(settings) as conn:
        assert count(conn) == 400
        assert count(conn, "url_s3 IS NULL") == 400
        assert count(conn, "status = 'new'") == 400
        assert count(conn, "label = 'dandelion'") == 200
        cursor = conn.cursor()
        cursor.execute("SELECT url_source FROM plants_data ORDER BY id")
        urls = [url for (url,) in cursor.fetchall()]
    assert urls[0] == f"{CANONICAL}dandelion/00000000.jpg"
    assert urls[199] == f"{CANONICAL}dandelion/00000199.jpg"
    assert urls[-1] == f"{CANONICAL}grass/00000199.jpg"
    assert "schema already up to date" in result.output


def test_migrations_upgrade_a_table_that_only_has_the_canonical_columns(env, settings):
    with db.connection(settings) as conn:
        db.run_script(conn, db.sql_file("01_schema.sql"))
        conn.cursor().execute(
            "INSERT INTO plants_data (url_source, label) VALUES ('http://x/1.jpg', 'grass')"
        )
        conn.commit()
        added = db.apply_migrations(conn)
        assert "column status" in added and "index ix_plants_data_sha256" in added
        assert db.apply_migrations(conn) == []  # idempotent
        assert db.status_counts(conn) == {"new": 1}


def test_add_inserts_once_and_refuses_a_relabel_or_a_bad_label(env, settings):
    runner = CliRunner()
    assert runner.invoke(app, ["init-db", "--no-seed"]).exit_code == 0
    url = "https://example.org/clover/1.jpg"
    first = runner.invoke(app, ["add", "--url", url, "--label", "clover"])
    again = runner.invoke(app, ["add", "--url", url, "--label", "clover"])
    relabel = runner.invoke(app, ["add", "--url", url, "--label", "grass"])
    bad_label = runner.invoke(app, ["add", "--url", "https://e.org/2.jpg", "--label", "Bad/Label"])
    bad_url = runner.invoke(app, ["add", "--url", "ftp://e.org/2.jpg", "--label", "grass"])
    assert first.exit_code == 0 and "added" in first.output
    assert again.exit_code == 0 and "already present" in again.output
    assert relabel.exit_code == 2 and "already row" in relabel.output
    assert bad_label.exit_code == 2 and "not valid" in bad_label.output
    assert bad_url.exit_code == 2 and "not an http(s)" in bad_url.output
    with db.connection(settings) as conn:
        assert count(conn) == 1
