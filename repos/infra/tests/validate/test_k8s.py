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


def mismatches(docs: list[dict]) -> list[str]:
    """Probes, ports and env vars that do not match the component the image runs."""
    problems = []
    for doc in workloads(docs):
        name = doc["metadata"]["name"]
        for container in containers(doc):
            component = component_of(container)
            if component is None:
                continue
            given = {
                e["name"] for e in container.get("env", []) if e["name"].startswith("PLANTOPS_")
            }
            for unknown in sorted(given - settings_env_vars(component)):
                problems.append(f"{name} sets {unknown}, unknown to {component}")
            if component not in DEFAULT_PORTS:
                continue
            probes = {
                "livenessProbe": "/healthz",
                "readinessProbe": "/readyz",
            }
            for probe, expected in probes.items():
                path = container.get(probe, {}).get("httpGet", {}).get("path")
                if path != expected:
                    problems.append(f"{name} {probe} calls {path}, not {expected}")
                elif f'"{path}"' not in routes_of(component):
                    problems.append(f"{name} {probe}: {component} has no route {path}")
            ports = {p["containerPort"] for p in container["ports"]}
            if DEFAULT_PORTS[component] not in ports:
                problems.append(f"{name}: {component} listens on {DEFAULT_PORTS[component]}")
    return problems


def test_probes_ports_and_env_vars_match_the_components(rendered):
    assert mismatches(rendered[1]) == []


def test_a_wrong_probe_path_and_env_var_are_caught(tmp_path):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    api = copy / "base" / "inference-api.yaml"
    text = api.read_text().replace("path: /readyz", "path: /ready")
    api.write_text(text.replace("name: PLANTOPS_API_KEY", "name: PLANTOPS_APIKEY"))
    docs = [d for d in yaml.safe_load_all(render(copy, OVERLAYS[0].name)) if d]
    assert mismatches(docs) == [
        "inference-api sets PLANTOPS_APIKEY, unknown to inference-api",
        "inference-api readinessProbe calls /ready, not /readyz",
    ]


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
