"""Every service image started as its Kubernetes manifest starts it, against real servers.

Each container gets the uid, the read-only root filesystem, the dropped capabilities and
the CPU and memory limits its manifest sets (read from k8s/, never copied here), and the
manifest's own arguments. Then one real call each:

- mlflow: `/health` and a model registered through its registry API;
- inference-api: `/readyz` once the champion is loaded from that MLflow and S3, one prediction;
- webapp: the upload page, one photo through its form to a result page;
- airflow: `plantops-data init-db` as the plants-data-init Job runs it; the four roles of
  the Helm values (dag-processor, scheduler, triggerer, api-server), the DAGs parsed with
  no import error and the api-server reporting the other roles healthy;
- infra tooling: `plantops-infra --help`;
- ml-training: `plantops-train --help`, and one tiny training run as the
  plants_train pod runs it, against S3 and its own MLflow server: registered, promoted.

Last, every long-running container must still run 60 s after its start, never
OOM-killed, its peak memory under its limit (figures in reports/images/peaks.json).

Compose's third-party images (mysql, minio) cannot be pulled on the development
machines: S3 and MySQL are the fixtures' real SeaweedFS and MariaDB on loopback, and the
containers share the host's network to reach them. The names the manifests use for
them (`mysql:3306`) are rewritten to those servers' addresses, ports to free ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from plantops_infra.images import (
    INFRA,
    K8S,
    REPOS,
    Container,
    Deployment,
    deployment,
    engine,
    expand,
    from_pod,
    image,
    run_detached,
    run_flags,
    run_once,
    trainer_deployment,
    write_env_file,
)
from plantops_infra.processes import free_port
from plantops_infra.servers import default_images_dir
from plantops_infra.testing import unique_name

from .conftest import wanted

pytestmark = pytest.mark.images

API_PYTHON = REPOS / "inference-api/.venv/bin/python"
TINY_MODEL = INFRA / "tests/integration/live/tiny_model.py"
SQL_DIR = REPOS / "orchestration/src/plantops_orchestration/sql"
MODEL_NAME = "plantops-classifier"  # the API's default PLANTOPS_MODEL_NAME
API_KEY = "image-smoke-api-key"
STAY_UP_S = 60.0
STARTED: dict[str, tuple[Container, Deployment]] = {}


@dataclass(frozen=True)
class Service:
    url: str
    container: Container
    deployed: Deployment


# ------------------------------------------------------------------ helpers


def http(url: str, data: bytes | None = None, headers: dict | None = None):
    """(status, body, headers) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def wait_for(container: Container, url: str, timeout: float = 180.0) -> None:
    """Until `url` answers 200; fails with the container's logs if it dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = container.state()
        if not state["running"]:
            pytest.fail(
                f"{container.name} stopped ({state}) before {url} answered:\n{container.logs()}"
            )
        with contextlib.suppress(OSError):
            if http(url)[0] == 200:
                return
        time.sleep(1)
    pytest.fail(f"{url} did not answer 200 in {timeout:.0f} s:\n{container.logs()}")


def photos_dir() -> Path:
    folder = default_images_dir(INFRA)
    if folder is None or not folder.is_dir():
        pytest.fail(
            "the plant photos are missing: shared/datasets/greenr-airflow/data beside the "
            "checkout, or PLANTOPS_IMAGES_DIR"
        )
    return folder


def photo(label: str) -> tuple[str, bytes]:
    path = sorted((photos_dir() / label).glob("*.jpg"))[0]
    return path.name, path.read_bytes()


# A reviewer account as a deployment's Secret gives it (argon2id of the password
# "image-smoke-reviewer-password", made with `plantops-webapp add-reviewer`'s hasher).
SMOKE_REVIEWER_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$sC6MKAz3k8E3ciDLbctmSQ"
    "$XvEPu4xayWE3pV8yyeNA3uRnAHKWyUP1l06yOtVT/SM"
)


def multipart(fields: dict[str, str], name: str, data: bytes, field: str = "file"):
    boundary = "plantopsimagesmoke"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )
    parts += [head.encode() + data + b"\r\n", f"--{boundary}--\r\n".encode()]
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def json_line(output: str) -> list | None:
    """The JSON list an `airflow ... --output json` prints after its warnings (same stream)."""
    lines = [line for line in output.splitlines() if line.startswith("[")]
    return json.loads(lines[-1]) if lines else None


def provided(dep: Deployment, env: dict[str, str]) -> dict[str, str]:
    """The manifest's literal env, then ours; every name it takes from a Secret must be given."""
    missing = [name for name in dep.env_refs if name not in env]
    assert not missing, f"the manifest reads {missing}, which the smoke does not provide"
    return {**dep.env, **env}


def started(name: str, dep: Deployment, container: Container) -> Container:
    STARTED[name] = (container, dep)
    return container


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def register_tiny_model(tracking_uri: str, s3, folder: Path) -> str:
    """A real ONNX model logged to S3 and registered with alias champion, as training does."""
    if not API_PYTHON.exists():
        pytest.fail(
            f"{API_PYTHON} is missing: run `make setup` in repos/inference-api (it has onnx)"
        )
    model_dir = folder / "model"
    subprocess.run([str(API_PYTHON), str(TINY_MODEL), str(model_dir)], check=True, timeout=120)
    import mlflow
    from mlflow import MlflowClient

    s3_env = {
        "MLFLOW_S3_ENDPOINT_URL": s3.url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with environ(s3_env):
        mlflow.set_tracking_uri(tracking_uri)
        client = MlflowClient(tracking_uri)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(model_dir), artifact_path="model")
        client.create_registered_model(MODEL_NAME)
        version = client.create_model_version(
            MODEL_NAME, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        client.set_registered_model_alias(MODEL_NAME, "champion", version.version)
    return str(version.version)


def helm_role(role: str) -> Deployment:
    """An Airflow role as the Helm values run it: the chart's image, uid and the role's limits."""
    values = yaml.safe_load((K8S / "airflow/values.yaml").read_text())
    pod = {"securityContext": values["securityContexts"]["pod"]}
    airflow = values["images"]["airflow"]
    container = {
        "image": f"{airflow['repository']}:{airflow['tag']}",
        "securityContext": values["securityContexts"]["containers"],
        "resources": values[role]["resources"],
        "env": values["env"],
    }
    return from_pod(pod, container)


# ------------------------------------------------------------------ the images themselves


@pytest.mark.parametrize("name", [i.name for i in wanted()])
def test_image_runs_as_the_non_root_user_its_deployment_names(built, name):
    img = image(name)
    user = engine("image", "inspect", "--format", "{{.Config.User}}", img.reference_name).stdout
    uid = user.strip().split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{img.reference_name} runs as {user.strip()!r}"
    if img.manifest is not None:
        assert int(uid) == deployment(img).user, "the image's USER differs from its manifest's"


# ------------------------------------------------------------------ mlflow


@pytest.fixture(scope="module")
def mlflow_service(built, mysql_server, s3_server, tmp_path_factory) -> Iterator[Service]:
    dep = deployment(image("mlflow"))
    folder = tmp_path_factory.mktemp("mlflow-image")
    database, bucket = unique_name("plantops_mlflow_img_"), unique_name("mlflow-img-")
    mysql_server.ensure_database(database)
    s3_server.ensure_buckets(bucket)
    env = provided(
        dep,
        {
            "PLANTOPS_MYSQL_USER": mysql_server.user,
            "PLANTOPS_MYSQL_PASSWORD": mysql_server.password,
            "PLANTOPS_MLFLOW_DATABASE": database,
            "PLANTOPS_MLFLOW_BUCKET": bucket,
            "MLFLOW_S3_ENDPOINT_URL": s3_server.url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": s3_server.access_key,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        },
    )
    port = free_port()
    args = [
        a.replace("@mysql:3306/", f"@{mysql_server.host}:{mysql_server.port}/")
        .replace("--port=5000", f"--port={port}")
        .replace("--host=0.0.0.0", "--host=127.0.0.1")
        for a in expand(dep.args, env)
    ]
    env_file = write_env_file(folder / "env", env)
    container = run_detached("plantops-smoke-mlflow", dep.image, run_flags(dep), env_file, args)
    started("mlflow", dep, container)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(container, f"{url}/health")
        yield Service(url, container, dep)
    finally:
        container.rm()
        mysql_server.drop_database(database)


@pytest.fixture(scope="module")
def champion(mlflow_service, s3_server, tmp_path_factory) -> str:
    return register_tiny_model(mlflow_service.url, s3_server, tmp_path_factory.mktemp("tiny"))


def test_mlflow_answers_health_and_its_registry(mlflow_service, champion):
    assert http(f"{mlflow_service.url}/health")[:2] == (200, b"OK")
    alias = f"registered-models/alias?name={MODEL_NAME}&alias=champion"
    status, body, _ = http(f"{mlflow_service.url}/api/2.0/mlflow/{alias}")
    assert status == 200, body
    assert json.loads(body)["model_version"]["version"] == champion


# ------------------------------------------------------------------ inference-api


@pytest.fixture(scope="module")
def api_service(built, mlflow_service, champion, s3_server, tmp_path_factory) -> Iterator[Service]:
    dep = deployment(image("inference-api"))
    port = free_port()
    env = provided(
        dep,
        {
            "PLANTOPS_API_HOST": "127.0.0.1",
            "PLANTOPS_API_PORT": str(port),
            "PLANTOPS_MLFLOW_TRACKING_URI": mlflow_service.url,
            "PLANTOPS_S3_ENDPOINT": s3_server.endpoint,
            "PLANTOPS_S3_SECURE": "false",
            "PLANTOPS_S3_ACCESS_KEY": s3_server.access_key,
            "PLANTOPS_S3_SECRET_KEY": s3_server.secret_key,
            "PLANTOPS_API_KEY": API_KEY,
        },
    )
    env_file = write_env_file(tmp_path_factory.mktemp("api-image") / "env", env)
    container = run_detached("plantops-smoke-api", dep.image, run_flags(dep), env_file)
    started("inference-api", dep, container)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(container, f"{url}/readyz")
        yield Service(url, container, dep)
    finally:
        container.rm()


def test_inference_api_is_ready_with_the_champion_and_predicts(api_service, champion):
    status, body, _ = http(f"{api_service.url}/readyz")
    assert status == 200, body
    name, data = photo("dandelion")
    status, body, _ = http(f"{api_service.url}/v1/predict", *multipart({}, name, data))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["label"] in {"dandelion", "grass"}, answer
    assert answer["model"]["version"] == champion, answer


# ------------------------------------------------------------------ webapp


@pytest.fixture(scope="module")
def webapp_service(
    built, api_service, mysql_server, s3_server, tmp_path_factory
) -> Iterator[Service]:
    dep = deployment(image("webapp"))
    database, bucket = unique_name("plantops_webapp_img_"), unique_name("webapp-img-")
    mysql_server.ensure_database(database)
    s3_server.ensure_buckets(bucket)
    with mysql_server.connect(database) as conn:
        conn.cursor().execute((SQL_DIR / "01_schema.sql").read_text())
        conn.commit()
    port = free_port()
    env = provided(
        dep,
        {
            "PLANTOPS_WEBAPP_PORT": str(port),
            "PLANTOPS_API_URL": api_service.url,
            "PLANTOPS_S3_ENDPOINT": s3_server.endpoint,
            "PLANTOPS_S3_SECURE": "false",
            "PLANTOPS_S3_BUCKET": bucket,
            "PLANTOPS_S3_ACCESS_KEY": s3_server.access_key,
            "PLANTOPS_S3_SECRET_KEY": s3_server.secret_key,
            "PLANTOPS_MYSQL_HOST": mysql_server.host,
            "PLANTOPS_MYSQL_PORT": str(mysql_server.port),
            "PLANTOPS_MYSQL_USER": mysql_server.user,
            "PLANTOPS_MYSQL_PASSWORD": mysql_server.password,
            "PLANTOPS_MYSQL_DATABASE": database,
            "PLANTOPS_WEBAPP_SECRET_KEY": "image-smoke-webapp-secret-key-0123456789",
            "PLANTOPS_WEBAPP_REVIEWERS": json.dumps({"smoke": SMOKE_REVIEWER_HASH}),
        },
    )
    env_file = write_env_file(tmp_path_factory.mktemp("webapp-image") / "env", env)
    container = run_detached("plantops-smoke-webapp", dep.image, run_flags(dep), env_file)
    started("webapp", dep, container)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(container, f"{url}/healthz")
        yield Service(url, container, dep)
    finally:
        container.rm()
        mysql_server.drop_database(database)


def test_webapp_serves_the_upload_page_and_a_prediction_through_its_form(webapp_service):
    status, page, page_headers = http(f"{webapp_service.url}/")
    assert status == 200 and b"<form" in page, page[:500]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    # As a browser does: the visitor cookie the page set (the token is bound to it), and
    # the page's own origin on the POST.
    visitor = (page_headers.get("set-cookie") or page_headers["Set-Cookie"]).split(";")[0]
    cookie = {"Cookie": visitor}
    body, headers = multipart({"csrf_token": token}, *photo("grass"))
    status, answer, response_headers = http(
        f"{webapp_service.url}/predict",
        body,
        {**cookie, **headers, "Origin": webapp_service.url},
    )
    assert status == 303, answer[:500]
    location = response_headers.get("location") or response_headers["Location"]
    status, result, _ = http(f"{webapp_service.url}{location}", headers=cookie)
    assert status == 200, result[:500]
    assert b"dandelion" in result.lower() or b"grass" in result.lower(), result[:500]


# ------------------------------------------------------------------ airflow


def test_airflow_image_runs_the_plants_data_init_job(built, mysql_server, s3_bucket, tmp_path):
    """The Job of k8s/base/plants-data-init.yaml: its command, uid 50000, its limits.

    Like its `envFrom` (the whole ConfigMap and Secret), it gets the S3 settings too.
    """
    dep = deployment(image("airflow"))
    database = unique_name("plantops_init_img_")
    mysql_server.ensure_database(database)
    env = {
        **s3_bucket.env(),
        "PLANTOPS_MYSQL_HOST": mysql_server.host,
        "PLANTOPS_MYSQL_PORT": str(mysql_server.port),
        "PLANTOPS_MYSQL_USER": mysql_server.user,
        "PLANTOPS_MYSQL_PASSWORD": mysql_server.password,
        "PLANTOPS_MYSQL_DATABASE": database,
    }
    try:
        result = run_once(
            dep.image, run_flags(dep), write_env_file(tmp_path / "env", env), dep.command
        )
        assert result.returncode == 0, result.stdout + result.stderr
        with mysql_server.connect(database) as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT COUNT(*) FROM plants_data")
            assert cursor.fetchone()[0] == 400
    finally:
        mysql_server.drop_database(database)


# The Helm values' roles, each its own container as each is its own pod; they meet only
# in the metadata database, a SQLite file in a folder all four mount (on the cluster it is
# MySQL: Airflow 3 supports MySQL 8, not the MariaDB the development machines have).
AIRFLOW_ROLES = {
    "dagProcessor": "airflow db migrate >/tmp/migrate.log 2>&1 && exec airflow dag-processor",
    "scheduler": "airflow db check-migrations -t 240 && exec airflow scheduler",
    "triggerer": "airflow db check-migrations -t 240 && exec airflow triggerer",
    "apiServer": "airflow db check-migrations -t 240 && exec airflow api-server",
}


@pytest.fixture(scope="module")
def airflow_service(built, tmp_path_factory) -> Iterator[Service]:
    """Airflow's four roles under the Helm values' limits and uid, the api-server's URL.

    The dag-processor migrates the database, then parses the baked DAGs; the scheduler,
    triggerer and api-server wait for the migration. Ports are free ones (the host's
    network is shared with whatever else runs here, an `airflow standalone` among them).
    """
    folder = tmp_path_factory.mktemp("airflow-image")
    database = folder / "db"
    database.mkdir()
    database.chmod(0o777)  # uid 50000 writes the SQLite file and its journal
    api_port = free_port()
    env = {
        **helm_role("apiServer").env,  # the values' literal env, the same for every role
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////opt/airflow/db/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": unique_name("smoke-jwt-"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }
    env_file = write_env_file(folder / "env", env)
    containers: list[tuple[Container, Deployment]] = []
    try:
        for role, command in AIRFLOW_ROLES.items():
            dep = helm_role(role)
            flags = [
                *run_flags(dep),
                "--tmpfs=/opt/airflow/logs:rw,mode=1777,size=64m",
                f"--volume={database}:/opt/airflow/db:rw",
            ]
            name = f"plantops-smoke-airflow-{role.lower()}"
            container = run_detached(name, dep.image, flags, env_file, ["bash", "-c", command])
            containers.append((container, dep))
            started(f"airflow-{role}", dep, container)
        dag_processor, deployed = containers[0]
        yield Service(f"http://127.0.0.1:{api_port}", dag_processor, deployed)
    finally:
        for container, _ in containers:
            container.rm()


def test_airflow_dag_processor_parses_every_dag_without_import_errors(airflow_service):
    container = airflow_service.container
    deadline = time.monotonic() + 240
    dags: list[str] = []
    while time.monotonic() < deadline:
        state = container.state()
        assert state["running"], f"the dag-processor stopped ({state}):\n{container.logs()}"
        listed = engine(
            "exec", container.name, "airflow", "dags", "list", "--output", "json", check=False
        )
        if listed.returncode == 0 and json_line(listed.stdout) is not None:
            dags = sorted(d["dag_id"] for d in json_line(listed.stdout))
            if {"plants_ingest", "plants_train"} <= set(dags):
                break
        time.sleep(3)
    errors = engine(
        "exec",
        container.name,
        "airflow",
        "dags",
        "list-import-errors",
        "--output",
        "json",
        check=False,
    )
    assert {"plants_ingest", "plants_train"} <= set(dags), (
        f"DAGs seen: {dags}\n{errors.stdout}\n{container.logs()}"
    )
    assert errors.returncode == 0, errors.stderr
    assert json_line(errors.stdout) == [], errors.stdout


def test_airflow_api_server_reports_scheduler_triggerer_and_dag_processor_healthy(
    airflow_service,
):
    """The roles found each other through the metadata database: each heartbeats, and the
    api-server (what the webapp's "retrain now" and the UI talk to) reports them healthy."""
    url = f"{airflow_service.url}/api/v2/monitor/health"
    deadline = time.monotonic() + 240
    health: dict = {}
    while time.monotonic() < deadline:
        for name, (container, _) in STARTED.items():
            if name.startswith("airflow-") and not container.state()["running"]:
                pytest.fail(f"{name} stopped ({container.state()}):\n{container.logs()}")
        with contextlib.suppress(OSError, ValueError):
            status, body, _ = http(url)
            health = json.loads(body) if status == 200 else {}
        roles = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        if all(health.get(r, {}).get("status") == "healthy" for r in roles):
            return
        time.sleep(3)
    logs = {n: c.logs()[-3000:] for n, (c, _) in STARTED.items() if n.startswith("airflow-")}
    pytest.fail(f"not every Airflow role is healthy in 240 s: {health}\n{logs}")


# ------------------------------------------------------------------ tools


def test_infra_tooling_image_shows_its_help_read_only(built):
    img = image("infra")
    flags = ["--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]
    result = engine(
        "run", "--rm", "--no-healthcheck", *flags, img.reference_name, "--help", check=False
    )
    assert result.returncode == 0, result.stderr
    assert "rollout" in result.stdout and "stack" in result.stdout


# ------------------------------------------------------------------ ml-training

# A recipe that trains in seconds (the ml-training suite's own tiny recipe): the run must
# go through every step a real one does, its accuracy is not the point.
TINY_RECIPE = """\
backbone: efficientnet-lite0
image_size: 64
frozen_epochs: 0
epochs: 1
batch_size: 8
seed: 0
accuracy_floor: 0.0
"""
TINY_SPLIT = {"train": 8, "val": 2, "test": 2}  # photos per label


def put_tiny_dataset(s3, bucket: str, version: str) -> int:
    """fmt/ photos and agg/<version>/manifest.csv as ingestion writes them (orchestration's
    manifest contract: key, label, split, sha256); the number of photos."""
    folder = photos_dir()
    client = s3.client()
    lines = ["key,label,split,sha256"]
    for label in ("dandelion", "grass"):
        paths = iter(sorted((folder / label).glob("*.jpg")))
        for split, count in TINY_SPLIT.items():
            for _ in range(count):
                body = next(paths).read_bytes()
                sha = hashlib.sha256(body).hexdigest()
                key = f"fmt/{label}/{sha}.jpg"
                client.put_object(bucket, key, io.BytesIO(body), len(body), "image/jpeg")
                lines.append(f"{key},{label},{split},{sha}")
    manifest = ("\n".join(lines) + "\n").encode()
    client.put_object(bucket, f"agg/{version}/manifest.csv", io.BytesIO(manifest), len(manifest))
    return len(lines) - 1


def test_training_image_shows_its_help_under_the_trainer_pods_limits(built, tmp_path):
    dep = trainer_deployment(image("ml-training"))
    env_file = write_env_file(tmp_path / "env", {})
    result = run_once(dep.image, run_flags(dep), env_file, ["--help"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train" in result.stdout


def test_training_image_trains_registers_and_promotes_a_tiny_model(
    built, mlflow_server, s3_server, tmp_path
):
    """One real run of the image as plants_train's pod runs it: its uid, read-only root,
    the pod's CPU and memory limits, the ConfigMap's and Secret's variable names.
    Its own MLflow server (not the image test's), so the API's champion is untouched."""
    dep = trainer_deployment(image("ml-training"))
    bucket, version = unique_name("train-img-"), "ds-imagesmoke"
    s3_server.ensure_buckets(bucket)
    photos = put_tiny_dataset(s3_server, bucket, version)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    recipe.chmod(0o644)
    env = {
        "PLANTOPS_S3_ENDPOINT": s3_server.endpoint,
        "PLANTOPS_S3_SECURE": "false",
        "PLANTOPS_S3_BUCKET": bucket,
        "PLANTOPS_S3_ACCESS_KEY": s3_server.access_key,
        "PLANTOPS_S3_SECRET_KEY": s3_server.secret_key,
        "PLANTOPS_MLFLOW_TRACKING_URI": mlflow_server.url,
        "MLFLOW_S3_ENDPOINT_URL": s3_server.url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        # No field-check photos in the image: the run must record "skipped".
        "PLANTOPS_FIELD_CHECK_DIR": "",
        "PLANTOPS_FIELD_CHECK_OTHER_DIR": "",
    }
    env_file = write_env_file(tmp_path / "env", env)
    flags = [*run_flags(dep), f"--volume={recipe}:/recipes/tiny.yaml:ro"]
    argv = ["train", "--dataset-version", version, "--config", "/recipes/tiny.yaml"]
    result = run_once(dep.image, flags, env_file, argv, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    # The summary is stdout's last line (MLflow logs to stderr).
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["dataset_version"] == version
    assert summary["model_version"] == "1" and summary["promoted"], summary
    assert summary["field_balanced_accuracy"] == "skipped"
    alias = f"registered-models/alias?name={MODEL_NAME}&alias=champion"
    status, body, _ = http(f"{mlflow_server.url}/api/2.0/mlflow/{alias}")
    assert status == 200, body
    registered = json.loads(body)["model_version"]
    assert registered["version"] == "1" and registered["run_id"] == summary["run_id"]
    artifacts = {
        o.object_name.rsplit("/", 1)[-1]
        for o in s3_server.client().list_objects(mlflow_server.artifact_bucket, recursive=True)
    }
    assert {"model.onnx", "preprocessing.json"} <= artifacts, artifacts
    assert photos == 2 * sum(TINY_SPLIT.values())


# ------------------------------------------------------------------ 60 s under the limits


def predict_for(api_url: str, seconds: float, clients: int = 4) -> list[int]:
    """Single predictions from `clients` threads for `seconds`: the statuses."""
    photos = [photo("dandelion"), photo("grass")]
    deadline = time.monotonic() + seconds

    def client(k: int) -> list[int]:
        statuses = []
        while time.monotonic() < deadline:
            name, data = photos[len(statuses) % 2]
            statuses.append(http(f"{api_url}/v1/predict", *multipart({}, name, data))[0])
        return statuses

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [status for batch in pool.map(client, range(clients)) for status in batch]


def test_every_service_stays_up_60_s_under_its_memory_limit(
    mlflow_service, api_service, webapp_service, airflow_service, log_dir
):
    """Idle for the most part; the API also takes 30 s of predictions from 4 clients.

    Peak = the cgroup's high-water mark (cgroup v1 counts page cache in it) where it can be
    read, else the highest `stats` sample; `max_sampled_mb` is the highest `stats` sample.
    """
    idle_peaks = {name: c.peak_memory() for name, (c, _) in STARTED.items()}
    with ThreadPoolExecutor(max_workers=1) as load:
        statuses = load.submit(predict_for, api_service.url, 30.0)
        while True:
            for container, _ in STARTED.values():
                container.sample_memory()
            youngest = max(c.started for c, _ in STARTED.values())
            if time.monotonic() - youngest >= STAY_UP_S and statuses.done():
                break
            time.sleep(5)
        answered = statuses.result()
    assert answered and set(answered) == {200}, f"under load the API answered {set(answered)}"
    report: dict[str, dict] = {}
    for name, (container, dep) in STARTED.items():
        state = container.state()
        assert state["running"] and not state["oom"], f"{name}: {state}\n{container.logs()}"
        peak = container.peak_memory()
        report[name] = {
            "idle_peak_mb": round(idle_peaks[name] / 1e6, 1),
            "peak_mb": round(peak / 1e6, 1),
            "max_sampled_mb": round(max(container.samples) / 1e6, 1),
            "limit_mb": round(dep.memory_bytes / 1e6, 1),
            "cpus": dep.cpus,
            "up_s": round(time.monotonic() - container.started),
        }
        assert peak < dep.memory_bytes, f"{name}: peak {peak} >= limit {dep.memory_bytes}"
    report["inference-api"]["load_requests"] = len(answered)
    (log_dir / "peaks.json").write_text(json.dumps(report, indent=2))
    print("image-smoke peaks " + json.dumps(report))
