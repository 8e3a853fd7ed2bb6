"""Helpers the tests share: a tiny real ONNX model, the real inference API process, the table."""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


# What the stand-in's model says about its novelty threshold (numbers made up, shape per i17).
STAND_IN_NOVELTY = {"method": "knn-cosine", "threshold": 0.4213, "false_alarm_rate": 0.02}


class NoveltyStandIn:
    """A stand-in for the inference API's novelty scoring (issue 17, in the API's own branch):
    a real HTTP server on loopback in front of the real inference API that passes every
    request through and, on `POST /v1/predict` answers, sets `novelty_score` and
    `out_of_distribution` to what the test chose. Label, confidence, probabilities and
    model come from the real API on the tiny model, which has no novelty reference.

    `verdict` None makes the fields null, as a legacy model's answer has them. On
    `GET /v1/model` it sets `novelty` (method, threshold, false_alarm_rate) likewise.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.verdict: tuple[float, bool] | None = (9.25, True)
        # `GET /v1/model`'s `novelty` block (None: a model without a novelty reference).
        self.model_novelty: dict | None = dict(STAND_IN_NOVELTY)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.forward(self)

            def do_POST(self) -> None:
                stand_in.forward(self)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {"Content-Type": handler.headers.get("Content-Type", "")} if body else {}
        request = urllib.request.Request(
            self.upstream + handler.path, data=body, headers=headers, method=handler.command
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, content = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, content = error.code, error.read()
        if handler.path == "/v1/predict" and status == 200:
            prediction = json.loads(content)
            score, flagged = self.verdict if self.verdict else (None, None)
            prediction |= {"novelty_score": score, "out_of_distribution": flagged}
            content = json.dumps(prediction).encode()
        if handler.path == "/v1/model" and status == 200:
            info = json.loads(content) | {"novelty": self.model_novelty}
            content = json.dumps(info).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
