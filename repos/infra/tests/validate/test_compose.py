"""The Compose file, checked by the real Compose v2 binary and against the components."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import INFRA, REPOS, compose_binary, run, settings_env_vars

pytestmark = pytest.mark.validate

COMPOSE_DIR = INFRA / "compose"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"

# Which component's code runs in each service built from a component repo.
SERVICE_COMPONENT = {
    "inference-api": "inference-api",
    "webapp": "webapp",
    "trainer": "ml-training",
    "plants-data-init": "orchestration",
    "airflow-init": "orchestration",
    "airflow-apiserver": "orchestration",
    "airflow-scheduler": "orchestration",
    "airflow-dag-processor": "orchestration",
    "airflow-triggerer": "orchestration",
}


def compose_config(compose_dir: Path) -> dict:
    result = run(
        [
            compose_binary(),
            "-f",
            compose_dir / "docker-compose.yml",
            "--env-file",
            compose_dir / ".env.example",
            "--profile",
            "tools",
            "config",
            "--format",
            "json",
        ]
    )
    assert result.returncode == 0, result.output
    return json.loads(result.output[result.output.index("{") :])


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_config(COMPOSE_DIR)


def test_compose_file_is_valid():
    compose_file = COMPOSE_DIR / "docker-compose.yml"
    result = run([compose_binary(), "-f", compose_file, "--env-file", ENV_EXAMPLE, "config", "-q"])
    assert result.returncode == 0, result.output


def test_a_broken_compose_file_is_refused(broken_copy):
    compose_dir = broken_copy(COMPOSE_DIR)
    path = compose_dir / "docker-compose.yml"
    # A dependency on a service that does not exist.
    path.write_text(
        path.read_text().replace("condition: service_healthy", "condition: sevice_up", 1)
    )
    result = run([compose_binary(), "-f", path, "--env-file", ENV_EXAMPLE, "config", "-q"])
    assert result.returncode != 0


def test_no_secret_without_the_env_file(broken_copy):
    """Secrets have no default in the file: without compose/.env, Compose refuses to start."""
    compose_dir = broken_copy(COMPOSE_DIR)
    empty_env = compose_dir / "empty.env"
    empty_env.write_text("")
    compose_file = compose_dir / "docker-compose.yml"
    result = run([compose_binary(), "-f", compose_file, "--env-file", empty_env, "config", "-q"])
    assert result.returncode != 0
    assert "set in compose/.env" in result.output


def test_every_long_running_service_has_a_health_check(config):
    one_shots = {"minio-init", "airflow-init", "plants-data-init", "trainer"}
    for name, service in config["services"].items():
        if name in one_shots:
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and not service["healthcheck"].get("disable"), f"{name} has no health check"


def test_every_volume_is_named(config):
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "volume":
                assert volume["source"] in config["volumes"], f"{name}: {volume}"


def test_every_image_is_pinned(config):
    for name, service in config["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image} is not pinned"


def test_every_built_image_has_a_dockerfile(config):
    for name, service in config["services"].items():
        if "build" in service:
            context = Path(service["build"]["context"])
            assert (context / "Dockerfile").exists(), f"{name}: no Dockerfile in {context}"


def unknown_env_vars(config: dict) -> list[str]:
    problems = []
    for name, component in SERVICE_COMPONENT.items():
        environment = config["services"][name].get("environment", {})
        given = {k for k in environment if k.startswith("PLANTOPS_")}
        for unknown in sorted(given - settings_env_vars(component)):
            problems.append(f"{name} sets {unknown}, which {component} does not read")
    return problems


def test_env_vars_exist_in_the_component_settings(config):
    assert unknown_env_vars(config) == []


def test_a_misspelt_env_var_is_caught(broken_copy):
    compose_dir = broken_copy(COMPOSE_DIR)
    path = compose_dir / "docker-compose.yml"
    path.write_text(path.read_text().replace("      PLANTOPS_API_KEY: ", "      PLANTOPS_APIKEY: "))
    problems = unknown_env_vars(compose_config(compose_dir))
    assert problems == ["inference-api sets PLANTOPS_APIKEY, which inference-api does not read"]


def test_published_ports_match_the_components(config):
    """The API and webapp listen where the compose file and their health checks expect."""
    api = config["services"]["inference-api"]
    assert api["environment"]["PLANTOPS_API_PORT"] == "8000"
    assert any(p["target"] == 8000 for p in api["ports"])
    webapp_cli = (REPOS / "webapp/src/plantops_webapp/cli.py").read_text()
    default_port = re.search(r"typer\.Option\((\d+), envvar=\"PLANTOPS_WEBAPP_PORT\"", webapp_cli)
    assert default_port, "webapp's CLI no longer has a default port option"
    assert any(
        p["target"] == int(default_port.group(1)) for p in config["services"]["webapp"]["ports"]
    )


def test_health_checks_point_at_existing_routes(config):
    for name, component in (("inference-api", "inference-api"), ("webapp", "webapp")):
        test = " ".join(config["services"][name]["healthcheck"]["test"])
        path = re.search(r"http://127\.0\.0\.1:\d+(/\w+)", test).group(1)
        routes = "".join(p.read_text() for p in (REPOS / component / "src").rglob("routes/*.py"))
        assert f'"{path}"' in routes, (
            f"{name}'s health check calls {path}, not a route of {component}"
        )


def test_airflow_launches_the_trainer_image_on_the_compose_network(config):
    """plants_train's DockerOperator runs the trainer's image on a network that exists."""
    services = config["services"]
    for name in ("airflow-scheduler", "airflow-dag-processor"):  # runs / parses the DAG
        env = services[name]["environment"]
        assert env["PLANTOPS_TRAIN_LAUNCHER"] == "docker", name
        assert env["PLANTOPS_TRAIN_IMAGE"] == services["trainer"]["image"], name
        network = env["PLANTOPS_TRAIN_DOCKER_NETWORK"]
        assert network in {n["name"] for n in config["networks"].values()}, name
        assert env["PLANTOPS_S3_ENDPOINT"] == "minio:9000", name
        assert env["PLANTOPS_MLFLOW_TRACKING_URI"].startswith("http://mlflow:"), name


def test_only_the_scheduler_holds_the_docker_socket_and_not_as_root(config):
    def has_socket(service: dict) -> bool:
        return any(v["source"] == "/var/run/docker.sock" for v in service.get("volumes", []))

    holders = [name for name, service in config["services"].items() if has_socket(service)]
    assert holders == ["airflow-scheduler"]
    scheduler = config["services"]["airflow-scheduler"]
    assert scheduler.get("user") in (None, "50000")  # the image's airflow user, not root
    assert scheduler["group_add"], "the scheduler needs the socket's group (DOCKER_GID)"
    volumes = {v["target"] for v in scheduler["volumes"]}
    assert "/opt/airflow/logs" in volumes  # the merge kept the shared log volume
