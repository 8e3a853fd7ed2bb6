"""contracts/plants_data.sql is the table the migrations really leave, on a real MariaDB.

One database is migrated as `init-db` does it (01_schema.sql, the pipeline columns, the SQL
migrations); another is created from the contract file alone. Their information_schema
descriptions (columns in order with type, nullability, default and extra; indexes with their
columns; the table's engine and collation) must be the same.
"""

from __future__ import annotations

import pytest
from plantops_infra.testing import unique_name

from plantops_orchestration import db
from plantops_orchestration.contract_files import CONTRACTS_DIR

pytestmark = pytest.mark.integration


def describe(conn) -> dict[str, list[tuple]]:
    cursor = conn.cursor()
    cursor.execute(
        "SELECT column_name, column_type, is_nullable, column_default, extra "
        "FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = 'plants_data' ORDER BY ordinal_position"
    )
    columns = [tuple(row) for row in cursor.fetchall()]
    cursor.execute(
        "SELECT index_name, non_unique, seq_in_index, column_name "
        "FROM information_schema.statistics WHERE table_schema = DATABASE() "
        "AND table_name = 'plants_data' ORDER BY index_name, seq_in_index"
    )
    indexes = [tuple(row) for row in cursor.fetchall()]
    cursor.execute(
        "SELECT engine, table_collation FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = 'plants_data'"
    )
    table = [tuple(row) for row in cursor.fetchall()]
    return {"columns": columns, "indexes": indexes, "table": table}


@pytest.fixture
def two_databases(mysql_server):
    names = [unique_name("plantops_contract_"), unique_name("plantops_contract_")]
    for name in names:
        mysql_server.ensure_database(name)
    connections = [mysql_server.connect(name) for name in names]
    yield connections
    for conn in connections:
        conn.close()
    for name in names:
        mysql_server.drop_database(name)


def test_the_contract_file_is_the_table_the_migrations_leave(two_databases):
    migrated, from_contract = two_databases
    db.init_db(migrated, seed=False)
    db.run_script(from_contract, (CONTRACTS_DIR / "plants_data.sql").read_text())

    expected, actual = describe(migrated), describe(from_contract)
    for part in ("columns", "indexes", "table"):
        differing = sorted(set(expected[part]) ^ set(actual[part]))
        assert actual[part] == expected[part], (
            f"contracts/plants_data.sql differs from the migrated table ({part}): {differing}"
        )
    assert len(expected["columns"]) > 4  # the pipeline's and the review's columns are there
