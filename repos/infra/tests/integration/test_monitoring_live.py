"""The dashboards and alert rules against a real Prometheus scraping a real API and web app.

Starts the inference API (its own venv, a tiny real ONNX model) and the web app (its own
venv, real S3 and MySQL from the fixtures for feedback), puts a short mixed load on them
(single and batch predictions, bad files, page loads, feedback), lets the Debian
`prometheus` scrape both every second with our rule file, then asks it every dashboard
panel's query and the state of every rule. Grafana itself cannot run here: its
dashboards are data, and their queries are what this test checks.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from plantops_infra.processes import ManagedProcess, free_port, http_ok, spawn, wait_until
from plantops_infra.servers import default_images_dir

pytestmark = pytest.mark.integration

INFRA = Path(__file__).resolve().parents[2]
REPOS = INFRA.parent
MONITORING = INFRA / "monitoring"
API_VENV = REPOS / "inference-api" / ".venv" / "bin"
WEBAPP_VENV = REPOS / "webapp" / ".venv" / "bin"
SQL_DIR = REPOS / "orchestration/src/plantops_orchestration/sql"
# shared/datasets/greenr-airflow/data beside the checkout, or PLANTOPS_IMAGES_DIR (CI).
IMAGES = default_images_dir(INFRA)
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
# A query comparing with yesterday has nothing to compare in a one-minute test.
NEEDS_HISTORY = re.compile(r"offset\s+1d")


def require(path: Path, how: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: {how}")
    return path


def images(count: int) -> list[tuple[str, bytes]]:
    folder = IMAGES if IMAGES is not None and IMAGES.is_dir() else None
    if folder is None:
        pytest.fail(f"the plant photos are missing ({IMAGES}): set PLANTOPS_IMAGES_DIR")
    paths = sorted(folder.glob("dandelion/*.jpg"))[: count // 2]
    paths += sorted(folder.glob("grass/*.jpg"))[: count - len(paths)]
    return [(p.name, p.read_bytes()) for p in paths]


# ------------------------------------------------------------------ HTTP helpers


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = "plantopsboundary7d1a"
    parts = []
    for name, value in fields.items():
        disposition = f'Content-Disposition: form-data; name="{name}"'
        parts.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
    for field, filename, data in files:
        header = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
        )
        parts.append(header.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def request(
    url: str, data: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes, dict]:
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


# ------------------------------------------------------------------ servers


def start(name: str, argv: list[str], env: dict, health: str, logs: Path) -> ManagedProcess:
    proc = spawn(name, argv, logs / f"{name}.log", env)
    wait_until(lambda: http_ok(health), name, 60, proc)
    return proc


@pytest.fixture(scope="module")
def api_url(tmp_path_factory) -> Iterator[str]:
    python = require(API_VENV / "python", "run `make setup` in repos/inference-api")
    folder = tmp_path_factory.mktemp("api")
    model_dir = folder / "model"
    script = Path(__file__).parent / "live" / "tiny_model.py"
    import subprocess

    subprocess.run([str(python), str(script), str(model_dir)], check=True, timeout=60)
    port = free_port()
    env = {
        "PLANTOPS_MODEL_PATH": str(model_dir),
        "PLANTOPS_API_HOST": "127.0.0.1",
        "PLANTOPS_API_PORT": str(port),
        "PLANTOPS_LOG_LEVEL": "WARNING",
    }
    argv = [str(API_VENV / "plantops-inference-api"), "serve"]
    url = f"http://127.0.0.1:{port}"
    proc = start("inference-api", argv, env, f"{url}/readyz", folder)
    yield url
    proc.stop()


@pytest.fixture(scope="module")
def webapp_url(api_url, tmp_path_factory, s3_server, mysql_server) -> Iterator[str]:
    require(WEBAPP_VENV / "plantops-webapp", "run `make setup` in repos/webapp")
    folder = tmp_path_factory.mktemp("webapp")
    bucket = f"monitoring-{int(time.time())}"
    s3_server.ensure_buckets(bucket)
    database = f"plantops_monitoring_{int(time.time())}"
    mysql_server.ensure_database(database)
    with mysql_server.connect(database) as conn:
        cursor = conn.cursor()
        schema = require(SQL_DIR / "01_schema.sql", "orchestration's plants_data schema")
        # The schema, then orchestration's SQL migrations (the review columns feedback fills).
        for script in [schema, *sorted((SQL_DIR / "migrations").glob("*.sql"))]:
            for statement in sql_statements(script.read_text()):
                cursor.execute(statement)
        conn.commit()
    port = free_port()
    env = {
        "PLANTOPS_API_URL": api_url,
        "PLANTOPS_WEBAPP_SECRET_KEY": "monitoring-test-secret-key",
        "PLANTOPS_S3_ENDPOINT": s3_server.endpoint,
        "PLANTOPS_S3_ACCESS_KEY": s3_server.access_key,
        "PLANTOPS_S3_SECRET_KEY": s3_server.secret_key,
        "PLANTOPS_S3_BUCKET": bucket,
        "PLANTOPS_MYSQL_HOST": mysql_server.host,
        "PLANTOPS_MYSQL_PORT": str(mysql_server.port),
        "PLANTOPS_MYSQL_USER": mysql_server.user,
        "PLANTOPS_MYSQL_PASSWORD": mysql_server.password,
        "PLANTOPS_MYSQL_DATABASE": database,
    }
    argv = [str(WEBAPP_VENV / "plantops-webapp"), "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    proc = start("webapp", argv, env, f"{url}/healthz", folder)
    yield url
    proc.stop()
    mysql_server.drop_database(database)


@pytest.fixture(scope="module")
def prometheus_url(api_url, webapp_url, tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: `make setup` in repos/infra installs it (apt)")
    folder = tmp_path_factory.mktemp("prometheus")
    rules = sorted(str(p) for p in (MONITORING / "prometheus" / "rules").glob("*.yml"))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rules,
        "scrape_configs": [
            {"job_name": "inference-api", "static_configs": [{"targets": [api_url[7:]]}]},
            {"job_name": "webapp", "static_configs": [{"targets": [webapp_url[7:]]}]},
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    proc = start("prometheus", argv, {}, f"{url}/-/ready", folder)
    yield url
    proc.stop()


# ------------------------------------------------------------------ load


def predict_one(api_url: str, name: str, data: bytes) -> int:
    body, content_type = multipart({}, [("file", name, data)])
    return request(f"{api_url}/v1/predict", body, {"Content-Type": content_type})[0]


def predict_batch(api_url: str, batch: list[tuple[str, bytes]]) -> int:
    body, content_type = multipart({}, [("files", n, d) for n, d in batch])
    return request(f"{api_url}/v1/predict/batch", body, {"Content-Type": content_type})[0]


def webapp_visit(webapp_url: str, name: str, data: bytes, verdict: str) -> int:
    """Upload page, upload, result page, feedback: what a user does in the browser (the
    visitor cookie, this site's Origin on each POST, each form's own CSRF token)."""
    status, page, headers = request(f"{webapp_url}/")
    cookie = next(value for key, value in headers.items() if key.lower() == "set-cookie")
    visitor = re.search(r"plantops_visitor=([^;]+)", cookie).group(1)
    site = {"Cookie": f"plantops_visitor={visitor}", "Origin": webapp_url}
    body, content_type = multipart({"csrf_token": csrf_token(page)}, [("file", name, data)])
    status, _, headers = request(
        f"{webapp_url}/predict", body, {**site, "Content-Type": content_type}
    )
    assert status == 303, f"webapp upload answered {status}"
    result_path = headers["location"] if "location" in headers else headers["Location"]
    _, result_page, _ = request(f"{webapp_url}{result_path}", headers=site)
    form = {"csrf_token": csrf_token(result_page), "verdict": verdict}
    if verdict == "wrong":
        form["label"] = "grass"
    body = urllib.parse.urlencode(form).encode()
    headers = {**site, "Content-Type": "application/x-www-form-urlencoded"}
    return request(f"{webapp_url}{result_path}/feedback", body, headers)[0]


def csrf_token(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def sql_statements(script: str) -> list[str]:
    """The `;`-separated statements of an orchestration SQL file, without `--` lines."""
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [statement for statement in code.split(";") if statement.strip()]


def mixed_load(api_url: str, webapp_url: str) -> None:
    """Single and batch predictions, bad files, page loads and feedback, 4 at a time."""
    photos = images(24)
    with ThreadPoolExecutor(max_workers=4) as pool:
        singles = list(pool.map(lambda p: predict_one(api_url, *p), photos))
        batches = [predict_batch(api_url, photos[i : i + 4]) for i in range(0, 12, 4)]
        bad = [predict_one(api_url, "notes.jpg", b"this is not an image") for _ in range(3)]
        visits = list(
            pool.map(
                lambda ip: webapp_visit(webapp_url, *ip[1], "correct" if ip[0] % 3 else "wrong"),
                enumerate(photos[:6]),
            )
        )
        for _ in range(5):
            request(f"{webapp_url}/")
    assert set(singles) == {200} and set(batches) == {200}, (singles, batches)
    assert all(400 <= s < 500 for s in bad), bad
    assert set(visits) == {200}, f"feedback answered {visits}"


@pytest.fixture(scope="module")
def loaded(api_url, webapp_url, prometheus_url) -> str:
    """Two rounds of load a few scrapes apart, so every counter has a rate, not just a value.

    Prometheus scrapes for the first time about 10 s after it starts, and a labelled
    series only exists from its first increment on: the first round creates the series,
    the second moves them.
    """
    wait_for_data(prometheus_url, 'min(up{job=~"inference-api|webapp"}) == 1')
    mixed_load(api_url, webapp_url)
    time.sleep(2.5)
    mixed_load(api_url, webapp_url)
    wait_for_data(prometheus_url, "sum(rate(plantops_api_predictions_total[1m])) > 0")
    wait_for_data(prometheus_url, "sum(rate(plantops_webapp_feedback_total[1m])) > 0")
    wait_for_data(prometheus_url, "plantops:api_low_confidence_share:rate1h > 0")
    # NaN (0/0 before the rates move) is filtered by the comparison.
    wait_for_data(prometheus_url, "count(plantops:api_predicted_label_share:rate1h >= 0) == 2")
    return prometheus_url


def wait_for_data(prometheus_url: str, expr: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not query(prometheus_url, expr):
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus had no data for {expr!r} after {timeout:.0f} s")
        time.sleep(0.5)


def query(prometheus_url: str, expr: str) -> list[dict]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body, _ = request(url)
    payload = json.loads(body)
    assert status == 200 and payload["status"] == "success", f"{expr!r}: {payload}"
    return payload["data"]["result"]


def panel_queries() -> list[tuple[str, str, str]]:
    found = []
    for dashboard in DASHBOARDS:
        for panel in json.loads(dashboard.read_text())["panels"]:
            for target in panel["targets"]:
                found.append((dashboard.stem, panel["title"], target["expr"]))
    return found


# ------------------------------------------------------------------ the checks


def test_every_dashboard_panel_query_returns_data(loaded):
    pending = []
    for dashboard, title, expr in panel_queries():
        if NEEDS_HISTORY.search(expr):
            query(loaded, expr)  # still a valid query; data only after a day
        else:
            pending.append((dashboard, title, expr))
    # A few more scrapes for a series that appeared late (1 s apart); a wrong query stays empty.
    for _ in range(5):
        pending = [(d, t, e) for d, t, e in pending if not query(loaded, e)]
        if not pending:
            break
        time.sleep(1)
    empty = [f"{d} / {t}: {e}" for d, t, e in pending]
    targets = json.loads(request(f"{loaded}/api/v1/targets")[1])["data"]["activeTargets"]
    scrapes = [(t["labels"]["job"], t["health"], t["lastError"]) for t in targets]
    assert not empty, f"panels without data (targets {scrapes}):\n" + "\n".join(empty)


def test_a_query_on_a_renamed_metric_returns_nothing(loaded):
    """The check above can fail: a typo in a metric name gives an empty result."""
    assert query(loaded, "sum(rate(plantops_api_requestz_total[1m]))") == []


def test_every_rule_evaluates(loaded):
    _, body, _ = request(f"{loaded}/api/v1/rules")
    groups = json.loads(body)["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    expected = [
        rule
        for group in yaml.safe_load((MONITORING / "prometheus/rules/plantops.yml").read_text())[
            "groups"
        ]
        for rule in group["rules"]
    ]
    assert len(rules) == len(expected)
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
        assert not rule["lastEvaluation"].startswith("0001"), f"{rule['name']} never evaluated"


def test_a_healthy_stack_fires_no_alert(loaded):
    firing = query(loaded, 'ALERTS{alertstate="firing"}')
    assert firing == [], firing


def test_recorded_shares_describe_the_load(loaded):
    shares = query(loaded, "plantops:api_predicted_label_share:rate1h")
    labels = {s["metric"]["label"] for s in shares}
    assert labels == {"dandelion", "grass"}
    assert abs(sum(float(s["value"][1]) for s in shares) - 1.0) < 1e-6, shares
    low = query(loaded, "plantops:api_low_confidence_share:rate1h")
    assert 0.0 <= float(low[0]["value"][1]) <= 1.0  # a share, not NaN
