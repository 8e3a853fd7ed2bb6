"""Kustomize overlays: rendered by kubectl, validated against the real Kubernetes schemas,
and cross-checked against the components (images, ports, probe paths, env vars)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import INFRA, REPOS, run, settings_env_vars, tool

pytestmark = pytest.mark.validate

K8S = INFRA / "k8s"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())
KUBERNETES_VERSION = "1.33.0"
# plantops/<image> -> the component whose code it runs.
IMAGE_COMPONENT = {
    "inference-api": "inference-api",
    "webapp": "webapp",
    "airflow": "orchestration",
    "ml-training": "ml-training",
}
DEFAULT_PORTS = {"inference-api": 8000, "webapp": 8080}


def render(k8s_dir: Path, overlay: str) -> str:
    """`kubectl kustomize` of an overlay, with its secrets file made from the example."""
    overlay_dir = k8s_dir / "overlays" / overlay
    secrets = overlay_dir / "secrets.env"
    if not secrets.exists():
        shutil.copy(overlay_dir / "secrets.env.example", secrets)
    result = run([tool("kubectl"), "kustomize", overlay_dir])
    assert result.returncode == 0, result.output
    return result.output


@pytest.fixture(scope="module", params=[p.name for p in OVERLAYS])
def rendered(request, tmp_path_factory) -> tuple[str, list[dict]]:
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy)
    text = render(copy, request.param)
    return text, [doc for doc in yaml.safe_load_all(text) if doc]


def validate(text: str, tmp_path: Path):
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(text)
    return run([tool("kubernetes-validate"), "-k", KUBERNETES_VERSION, "--strict", manifest])


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "Job"}]


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def test_overlay_is_valid_against_the_kubernetes_schemas(rendered, tmp_path):
    result = validate(rendered[0], tmp_path)
    assert result.returncode == 0, result.output


def test_an_invalid_manifest_is_refused(tmp_path):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    api = copy / "base" / "inference-api.yaml"
    api.write_text(api.read_text().replace("containerPort: 8000", "containerPort: eight-thousand"))
    result = validate(render(copy, OVERLAYS[0].name), tmp_path)
    assert result.returncode != 0


def test_a_broken_kustomization_is_refused(tmp_path):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    (copy / "base" / "webapp.yaml").unlink()
    overlay = copy / "overlays" / OVERLAYS[0].name
    shutil.copy(overlay / "secrets.env.example", overlay / "secrets.env")
    assert run([tool("kubectl"), "kustomize", overlay]).returncode != 0


def test_every_component_service_is_deployed(rendered):
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered[1]}
    for expected in [
        ("Deployment", "inference-api"),
        ("Deployment", "webapp"),
        ("Deployment", "mlflow"),
        ("StatefulSet", "mysql"),
        ("StatefulSet", "minio"),
        ("HorizontalPodAutoscaler", "inference-api"),
        ("Ingress", "plantops"),
        ("NetworkPolicy", "default-deny-ingress"),
    ]:
        assert expected in kinds, f"{expected} is missing from the overlay"


def test_no_secret_value_is_committed():
    committed = [p for p in K8S.rglob("secrets.env") if p.is_file()]
    tracked = run(["git", "ls-files", "--error-unmatch", *committed], cwd=INFRA)
    assert not committed or tracked.returncode != 0, "a secrets.env is tracked by git"
    for path in K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (doc and doc.get("kind") == "Secret"), f"{path} commits a Secret"


def test_every_pod_is_locked_down(rendered):
    for doc in workloads(rendered[1]):
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name


def component_of(container: dict) -> str | None:
    match = re.fullmatch(r"plantops/([\w-]+):[\w.-]+", container["image"])
    return IMAGE_COMPONENT.get(match.group(1)) if match else None


def routes_of(component: str) -> str:
    return "".join(p.read_text() for p in (REPOS / component / "src").rglob("routes/*.py"))


def test_probes_point_at_the_components_health_routes(rendered):
    for doc in workloads(rendered[1]):
        for container in containers(doc):
            component = component_of(container)
            if component not in DEFAULT_PORTS:
                continue
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            for path in ("/healthz", "/readyz"):
                assert f'"{path}"' in routes_of(component), f"{component} has no route {path}"
            ports = {p["containerPort"] for p in container["ports"]}
            assert DEFAULT_PORTS[component] in ports, f"{component} does not listen on {ports}"


def test_env_vars_exist_in_the_component_settings(rendered):
    for doc in workloads(rendered[1]):
        for container in containers(doc):
            component = component_of(container)
            if component is None:
                continue
            given = {
                e["name"] for e in container.get("env", []) if e["name"].startswith("PLANTOPS_")
            }
            unknown = given - settings_env_vars(component)
            assert not unknown, (
                f"{doc['metadata']['name']} sets {sorted(unknown)} unknown to {component}"
            )


def test_every_plantops_image_has_a_dockerfile(rendered):
    for doc in workloads(rendered[1]):
        for container in containers(doc):
            component = component_of(container)
            if component is not None:
                assert (REPOS / component / "Dockerfile").exists(), f"{component}: no Dockerfile"
            elif container["image"].startswith("plantops/mlflow:"):
                assert (INFRA / "images" / "mlflow" / "Dockerfile").exists()


def test_services_select_existing_pods(rendered):
    docs = rendered[1]
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in workloads(docs)]
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), service


def test_airflow_values_file_parses():
    values = yaml.safe_load((K8S / "airflow" / "values.yaml").read_text())
    assert values["executor"]
    assert values["images"]["airflow"]["repository"] == "plantops/airflow"
