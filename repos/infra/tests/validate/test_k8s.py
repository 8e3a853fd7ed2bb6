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


AIRFLOW_VALUES = K8S / "airflow" / "values.yaml"


def airflow_env(values: dict) -> dict[str, str]:
    """The variables the chart gives every Airflow pod (plain values; secrets as None)."""
    env: dict[str, str] = {e["name"]: e.get("value") for e in values.get("env", [])}
    env.update({s["envName"]: None for s in values.get("secret", [])})
    return env


def unknown_airflow_env_vars(values: dict) -> list[str]:
    known = settings_env_vars("orchestration")
    return [
        f"values.yaml sets {name}, unknown to orchestration"
        for name in sorted(airflow_env(values))
        if name.startswith("PLANTOPS_") and name not in known
    ]


def test_airflow_env_vars_exist_in_the_orchestration_settings():
    assert unknown_airflow_env_vars(yaml.safe_load(AIRFLOW_VALUES.read_text())) == []


def test_a_misspelt_airflow_env_var_is_caught():
    values = yaml.safe_load(AIRFLOW_VALUES.read_text())
    values["env"].append({"name": "PLANTOPS_TRAIN_LAUNCHR", "value": "kubernetes"})
    assert unknown_airflow_env_vars(values) == [
        "values.yaml sets PLANTOPS_TRAIN_LAUNCHR, unknown to orchestration"
    ]


def named(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert found, f"no {kind} {name} in the overlay (named by k8s/airflow/values.yaml)"
    return found[0]


def test_the_training_pod_finds_what_airflow_names(rendered):
    """plants_train's pod (KubernetesPodOperator) names these objects literally: they
    exist in the overlay under exactly those names, with what the pod reads."""
    docs = rendered[1]
    values = yaml.safe_load(AIRFLOW_VALUES.read_text())
    env = airflow_env(values)
    assert env["PLANTOPS_TRAIN_LAUNCHER"] == "kubernetes"
    assert component_of({"image": env["PLANTOPS_TRAIN_IMAGE"]}) == "ml-training"
    namespace = env["PLANTOPS_TRAIN_K8S_NAMESPACE"]
    config = named(docs, "ConfigMap", env["PLANTOPS_TRAIN_K8S_CONFIG_MAP"])
    secret = named(docs, "Secret", env["PLANTOPS_TRAIN_K8S_SECRET"])
    account = named(docs, "ServiceAccount", env["PLANTOPS_TRAIN_K8S_SERVICE_ACCOUNT"])
    for doc in (config, secret, account):
        assert doc["metadata"]["namespace"] == namespace
    assert {"PLANTOPS_S3_ACCESS_KEY", "PLANTOPS_S3_SECRET_KEY"} <= secret["data"].keys()
    # Every PLANTOPS_* key is read by ml-training, with the value the services use.
    given = {k for k in config["data"] if k.startswith("PLANTOPS_")}
    assert given <= settings_env_vars("ml-training")
    shared = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("plantops-config")
    )
    for key, value in config["data"].items():
        assert shared["data"].get(key, value) == value, f"{key} differs from plantops-config"
    # The scheduler's service account may create pods in that namespace.
    binding = named(docs, "RoleBinding", "airflow-pod-launcher")
    assert binding["metadata"]["namespace"] == namespace
    role = named(docs, "Role", binding["roleRef"]["name"])
    assert any("pods" in r["resources"] and "create" in r["verbs"] for r in role["rules"])
    (subject,) = binding["subjects"]
    assert subject["name"] == values["scheduler"]["serviceAccount"]["name"]


def test_training_pods_may_reach_mlflow_and_minio(rendered):
    launchers = REPOS / "orchestration/src/plantops_orchestration/launchers.py"
    label = re.search(r'"app\.kubernetes\.io/name": "([\w-]+)"', launchers.read_text()).group(1)
    allowed: dict[str, set[int]] = {}
    for policy in (d for d in rendered[1] if d["kind"] == "NetworkPolicy"):
        selector = policy["spec"]["podSelector"]
        targets = set(selector.get("matchLabels", {}).values())
        for expression in selector.get("matchExpressions", []):
            targets |= set(expression["values"])
        for rule in policy["spec"].get("ingress", []):
            if any(
                source.get("podSelector", {}).get("matchLabels")
                == {"app.kubernetes.io/name": label}
                for source in rule.get("from", [])
            ):
                for target in targets:
                    allowed.setdefault(target, set()).update(p["port"] for p in rule["ports"])
    assert {5000} <= allowed.get("mlflow", set())
    assert {9000} <= allowed.get("minio", set())
