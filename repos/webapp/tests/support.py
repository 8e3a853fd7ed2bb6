"""Helpers the tests share: a tiny real ONNX model, the real inference API process, the table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEBAPP_DIR = Path(__file__).resolve().parents[1]
INFERENCE_API_DIR = WEBAPP_DIR.parent / "inference-api"
IMAGES_DIR = WEBAPP_DIR.parents[2] / "shared" / "datasets" / "greenr-airflow" / "data"

# Three labels on purpose: nothing in the web app may assume two.
LABELS = ["dandelion", "grass", "clover"]
TEST_SECRET_KEY = "webapp-test-secret-key-not-for-production"


def write_tiny_model(folder: Path, labels: list[str] = LABELS) -> Path:
    """A real ONNX classifier on mean colour (yellow-ish: dandelion, green: grass), per the
    model artifact contract: input `image` [N,3,H,W] float32, output `logits` [N,n_labels]."""
    weights = np.zeros((3, len(labels)), dtype=np.float32)
    weights[:, 0] = [4.0, 1.0, -4.0]  # red and little blue: yellow flowers
    weights[:, 1] = [-3.0, 4.0, -1.0]  # green above red
    bias = np.zeros(len(labels), dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["colour"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["colour", "weights"], ["scores"]),
            helper.make_node("Add", ["scores", "bias"], ["logits"]),
        ],
        "tiny-colour-classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(labels)])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    spec = {
        "format_version": 1,
        "input_name": "image",
        "output_name": "logits",
        "labels": labels,
        "resize_shorter_side": 72,
        "resample": "bilinear",
        "crop_size": 64,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    }
    (folder / "preprocessing.json").write_text(json.dumps(spec, indent=2))
    return folder


def photo(label: str = "dandelion", index: int = 0) -> Path:
    return IMAGES_DIR / label / f"{index:08d}.jpg"


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token_in(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


# The table as the orchestration component creates it: its schema file, then its SQL
# migrations in name order (the review columns come from 0001_feedback_review.sql). The
# pipeline's own columns (status, sha256, ...) are not needed here.
ORCHESTRATION_SQL = WEBAPP_DIR.parent / "orchestration" / "src" / "plantops_orchestration" / "sql"
ORIGIN = "http://testserver"  # the TestClient's site: every POST names it, as browsers do


def plants_data_scripts() -> list[Path]:
    schema = ORCHESTRATION_SQL / "01_schema.sql"
    if not schema.is_file():
        raise FileNotFoundError(
            f"{schema} is missing: the web app's tests use the orchestration component's schema"
        )
    return [schema, *sorted((ORCHESTRATION_SQL / "migrations").glob("*.sql"))]


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
