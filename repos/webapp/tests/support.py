"""Helpers the tests share: a tiny real ONNX model, the real inference API process, the table."""

from __future__ import annotations

import os
import re
from pathlib import Path

from plantops_infra.testing import write_tiny_model as build_tiny_model

WEBAPP_DIR = Path(__file__).resolve().parents[1]
INFERENCE_API_DIR = WEBAPP_DIR.parent / "inference-api"
# PLANTOPS_IMAGES_DIR as everywhere else, else the shared folder beside the checkout.
IMAGES_DIR = Path(
    os.environ.get("PLANTOPS_IMAGES_DIR")
    or WEBAPP_DIR.parents[2] / "shared" / "datasets" / "greenr-airflow" / "data"
)

# Three labels on purpose: nothing in the web app may assume two.
LABELS = ["dandelion", "grass", "clover"]
TEST_SECRET_KEY = "webapp-test-secret-key-not-for-production"


def write_tiny_model(folder: Path, labels: list[str] = LABELS) -> Path:
    """A real ONNX classifier on mean colour (yellow-ish: dandelion, green: grass), per the
    model artifact contract, from the one builder of plantops_infra.testing."""
    weights = [[0.0] * len(labels) for _ in range(3)]
    for channel, (dandelion, grass) in enumerate([(4.0, -3.0), (1.0, 4.0), (-4.0, -1.0)]):
        # red and little blue: yellow flowers; green above red: grass
        weights[channel][0], weights[channel][1] = dandelion, grass
    return build_tiny_model(folder, labels, weights=weights, resize_shorter_side=72, crop_size=64)


def photo(label: str = "dandelion", index: int = 0) -> Path:
    return IMAGES_DIR / label / f"{index:08d}.jpg"


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token_in(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


# The table as the orchestration's migrations leave it: its contract, vendored
# (orchestration checks its file against a really migrated database).
PLANTS_DATA_SQL = WEBAPP_DIR / "contracts" / "vendored" / "orchestration" / "plants_data.sql"
ORIGIN = "http://testserver"  # the TestClient's site: every POST names it, as browsers do


def plants_data_scripts() -> list[Path]:
    if not PLANTS_DATA_SQL.is_file():
        raise FileNotFoundError(f"{PLANTS_DATA_SQL} is missing: run `make contracts`")
    return [PLANTS_DATA_SQL]


def sql_statements(script: str) -> list[str]:
    """The `;`-separated statements of one of those files, without `--` comment lines."""
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [statement for statement in code.split(";") if statement.strip()]


def create_plants_data(connection) -> None:
    cursor = connection.cursor()
    for script in plants_data_scripts():
        for statement in sql_statements(script.read_text()):
            cursor.execute(statement)
    connection.commit()
    cursor.close()


def plants_rows(connection, columns: str = "id, url_source, url_s3, label") -> list[tuple]:
    cursor = connection.cursor()
    cursor.execute(f"SELECT {columns} FROM plants_data ORDER BY id")
    rows = cursor.fetchall()
    cursor.close()
    connection.commit()  # end the snapshot so the next read sees new rows
    return rows
