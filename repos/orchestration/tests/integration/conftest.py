"""Fixtures of the ingestion tests: settings for the real servers, and a faulty web server.

The S3, MySQL and image-mirror servers come from `plantops_infra.testing`; the
web server here is a real HTTP server on loopback whose paths misbehave on
purpose (404, 500 then OK, too slow, HTML, truncated JPEG, oversized, redirect).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from plantops_orchestration import db
from plantops_orchestration.config import Settings, get_settings

from ..conftest import DAGS

READ_TIMEOUT_S = 1.0


def jpeg(seed: int, size: tuple[int, int] = (96, 64)) -> bytes:
    """A small, valid JPEG whose bytes differ for each seed."""
    image = Image.new("RGB", size, (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))
    image.putpixel((seed % size[0], 0), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


@dataclass
class FaultServer:
    """A loopback HTTP server; `requests` counts hits per path."""

    url: str
    requests: Counter = field(default_factory=Counter)
    # Called with the path before answering; a test uses it to stop S3 mid-run.
    on_request: list = field(default_factory=list)

    def total(self) -> int:
        return sum(self.requests.values())


def make_handler(server: FaultServer, max_bytes: int):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output readable
            pass

        def send(self, status: int, body: bytes, content_type: str = "image/jpeg") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path
            server.requests[path] += 1
            for hook in server.on_request:
                hook(path)
            name = path.rsplit("/", 1)[-1]
            seed = int("".join(c for c in name if c.isdigit()) or "0")
            if path.startswith("/img/"):  # /img/<n>.jpg: a good image
                self.send(200, jpeg(seed))
            elif path.startswith("/same/"):  # the same bytes under any name
                self.send(200, jpeg(4242))
            elif path.startswith("/missing/"):
                self.send(404, b"not found", "text/plain")
            elif path.startswith("/flaky/"):  # 500 the first time, then the image
                if server.requests[path] == 1:
                    self.send(500, b"try again", "text/plain")
                else:
                    self.send(200, jpeg(seed + 1000))
            elif path.startswith("/broken/"):  # 503 every time
                self.send(503, b"down", "text/plain")
            elif path.startswith("/slow/"):
                time.sleep(READ_TIMEOUT_S * 2.5)
                self.send(200, jpeg(seed))
            elif path.startswith("/trickle/"):  # each byte within the read timeout, forever
                body = jpeg(seed, (400, 300))
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for start in range(0, len(body), 64):
                        self.wfile.write(body[start : start + 64])
                        self.wfile.flush()
                        time.sleep(READ_TIMEOUT_S / 3)
                except OSError:
                    pass
            elif path.startswith("/html/"):
                self.send(200, b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html")
            elif path.startswith("/truncated/"):
                self.send(200, jpeg(seed, (400, 300))[:1500])
            elif path.startswith("/huge/"):  # declares and sends more than the limit
                self.send(200, b"\xff\xd8\xff" + b"\0" * (max_bytes + 10))
            elif path.startswith("/chunked-huge/"):  # no Content-Length, endless body
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for _ in range(max_bytes // 4096 + 10):
                        self.wfile.write(b"\0" * 4096)
                except OSError:
                    pass
                self.close_connection = True
            elif path.startswith("/redirect/"):
                self.send_response(302)
                self.send_header("Location", f"/img/{seed}.jpg")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path.startswith("/loop/"):
                self.send_response(302)
                self.send_header("Location", path)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send(404, b"no such route", "text/plain")

    return Handler


MAX_BYTES = 200_000


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), None)  # handler set below
    state = FaultServer(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = make_handler(state, MAX_BYTES)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def settings_env(mysql_database, s3_bucket, mirror: str = "") -> dict[str, str]:
    return {
        **mysql_database.env(),
        **s3_bucket.env(),
        "PLANTOPS_MIRROR_BASE_URL": mirror,
        "PLANTOPS_CONNECT_TIMEOUT_S": "2",
        "PLANTOPS_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        "PLANTOPS_DOWNLOAD_DEADLINE_S": str(READ_TIMEOUT_S * 2),
        "PLANTOPS_DOWNLOAD_RETRIES": "2",
        "PLANTOPS_RETRY_BACKOFF_S": "0.05",
        "PLANTOPS_MAX_DOWNLOAD_BYTES": str(MAX_BYTES),
        "PLANTOPS_DOWNLOAD_CONCURRENCY": "4",
        # These tests ingest a handful of photos per label; holding back small labels has
        # its own tests (test_review_state.py, unit/test_dataset.py).
        "PLANTOPS_DATASET_MIN_LABEL_IMAGES": "1",
    }


@pytest.fixture
def env(mysql_database, s3_bucket, image_mirror, monkeypatch) -> dict[str, str]:
    """PLANTOPS_* variables for a fresh database and bucket, set in this process too."""
    values = settings_env(mysql_database, s3_bucket, image_mirror)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


@pytest.fixture
def settings(env) -> Settings:
    return get_settings()


@pytest.fixture
def conn(settings):
    """A connection to the test database, with the table created (not seeded)."""
    connection = db.connect(settings)
    db.init_db(connection, seed=False)
    yield connection
    connection.close()


def add_rows(conn, rows: list[tuple[str, str]]) -> list[int]:
    return [db.add_row(conn, url, label)[0] for url, label in rows]


def row_by_id(conn, row_id: int) -> dict:
    cursor = conn.cursor(dictionary=True)
    conn.commit()  # see the other connections' commits (REPEATABLE READ snapshot)
    cursor.execute("SELECT * FROM plants_data WHERE id = %s", (row_id,))
    return cursor.fetchone()


def objects(s3_bucket) -> dict[str, str]:
    """Every object in the bucket: key -> etag + last-modified (changes if rewritten)."""
    client = s3_bucket.server.client()
    return {
        o.object_name: f"{o.etag}@{o.last_modified}"
        for o in client.list_objects(s3_bucket.name, recursive=True)
    }


# ------------------------------------------------------------------ Airflow itself

AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> dict[str, str]:
    """A throwaway AIRFLOW_HOME with its SQLite database migrated once per session."""
    return migrated_home(tmp_path_factory.mktemp("airflow"))


@pytest.fixture
def fresh_airflow_home(tmp_path_factory) -> dict[str, str]:
    """An AIRFLOW_HOME of its own: no Asset event, and no Asset of the same name with
    another test's bucket in its URI (Airflow keeps one active Asset per name)."""
    return migrated_home(tmp_path_factory.mktemp("airflow-fresh"))


def migrated_home(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def dags_test(airflow_home: dict, plantops_env: dict, dag_id: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [AIRFLOW, "dags", "test", dag_id],
        env={**airflow_home, **plantops_env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result
