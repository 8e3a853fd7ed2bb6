"""The PlantOps container images: where each is built from, and how it is deployed.

One list (`IMAGES`) names every image with its build folder and the Kubernetes manifest
that runs it. `deployment()` reads the user, the limits and the arguments from that
manifest, and `run_flags()` turns them into `docker run` / `podman run` flags, so a
container started by the smoke tests runs the way the cluster would run it. The
engine is Docker where a daemon answers, else podman with the settings that
`scripts/podman-setup.sh` writes (`scripts/engine` decides; this module only calls it).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import json
import math
import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

INFRA = Path(__file__).resolve().parents[2]
REPOS = INFRA.parent
ENGINE = INFRA / "scripts" / "engine"
PODMAN_SETUP = INFRA / "scripts" / "podman-setup.sh"
K8S = INFRA / "k8s"
# The local wheel store of the development machines (ENVIRONMENT.md): torch's only source
# here, since download.pytorch.org cannot be reached. Mounted into podman builds only.
LOCAL_WHEEL_STORES = (Path("/opt/pypi"), Path("/opt/pypi-more"))


class ImageError(RuntimeError):
    """A build or a container failed; the message carries the engine's output."""


@dataclass(frozen=True)
class Image:
    """One image: its build folder and the manifest (and container in it) that runs it."""

    name: str
    context: Path
    manifest: Path | None = None
    container: str | None = None
    # Where there is no manifest of our own (the training pod is built by the DAG, the
    # tooling image is not deployed), the reference it is run by.
    reference: str | None = None

    @property
    def reference_name(self) -> str:
        if self.reference is not None:
            return self.reference
        return deployment(self).image


IMAGES: tuple[Image, ...] = (
    Image(
        "inference-api", REPOS / "inference-api", K8S / "base/inference-api.yaml", "inference-api"
    ),
    Image("webapp", REPOS / "webapp", K8S / "base/webapp.yaml", "webapp"),
    Image("mlflow", INFRA / "images/mlflow", K8S / "base/mlflow.yaml", "mlflow"),
    # The Airflow image's Kubernetes workload of our own is the init Job; the Helm values
    # (k8s/airflow/values.yaml) run the same image with the same uid for each role.
    Image("airflow", REPOS / "orchestration", K8S / "base/plants-data-init.yaml", "init-db"),
    Image("infra", INFRA, reference="plantops/infra:0.1.0"),
    Image("ml-training", REPOS / "ml-training", reference="plantops/ml-training:0.1.0"),
)


def image(name: str) -> Image:
    for candidate in IMAGES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no image {name!r}; known: {', '.join(i.name for i in IMAGES)}")


# ------------------------------------------------------------------ the deployed form


@dataclass(frozen=True)
class Deployment:
    """What a manifest says about one container: how the cluster starts it."""

    image: str
    user: int
    group: int
    cpus: float
    memory_bytes: int
    read_only: bool
    drops_all_capabilities: bool
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    # `env` entries with a literal value, and the names it takes from ConfigMaps/Secrets.
    env: dict[str, str] = field(default_factory=dict)
    env_refs: list[str] = field(default_factory=list)
    # Mount paths of its emptyDir volumes: the only writable places of a read-only root.
    writable_dirs: list[str] = field(default_factory=list)


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes quantity ("500m", "2", "512Mi", "1Gi") as a plain number."""
    text = str(value)
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    decimal = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix, factor in (*binary.items(), *decimal.items()):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def pod_specs(manifest: Path) -> Iterator[dict]:
    for doc in yaml.safe_load_all(manifest.read_text()):
        if doc and doc.get("kind") in {"Deployment", "StatefulSet", "Job", "DaemonSet"}:
            yield doc["spec"]["template"]["spec"]


def deployment(img: Image) -> Deployment:
    """The container `img.container` of `img.manifest`, as Kubernetes would run it."""
    if img.manifest is None or img.container is None:
        raise ImageError(f"image {img.name} has no manifest of its own")
    for pod in pod_specs(img.manifest):
        for container in pod["containers"]:
            if container["name"] == img.container:
                return from_pod(pod, container)
    raise ImageError(f"{img.manifest} has no container {img.container!r}")


def from_pod(pod: dict, container: dict) -> Deployment:
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    limits = container["resources"]["limits"]
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    return Deployment(
        image=container["image"],
        user=int(security["runAsUser"]),
        group=int(security.get("runAsGroup", 0)),
        cpus=parse_quantity(limits["cpu"]),
        memory_bytes=int(parse_quantity(limits["memory"])),
        read_only=bool(security.get("readOnlyRootFilesystem", False)),
        drops_all_capabilities="ALL" in security.get("capabilities", {}).get("drop", []),
        command=list(container.get("command", [])),
        args=list(container.get("args", [])),
        env={
            **{e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e},
            **resource_env(container),
        },
        env_refs=[
            e["name"]
            for e in container.get("env", [])
            if "valueFrom" in e and "resourceFieldRef" not in e["valueFrom"]
        ],
        writable_dirs=[
            m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty_dirs
        ],
    )


def resource_env(container: dict) -> dict[str, str]:
    """The Downward API's `resourceFieldRef` variables, as the kubelet gives them: the
    container's limit divided by the divisor, rounded up (only `limits.cpu` is used)."""
    env = {}
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("resourceFieldRef")
        if ref is None:
            continue
        if ref["resource"] != "limits.cpu":
            raise ImageError(f"{entry['name']}: only limits.cpu is read, not {ref['resource']}")
        limit = parse_quantity(container["resources"]["limits"]["cpu"])
        env[entry["name"]] = str(math.ceil(limit / parse_quantity(ref.get("divisor", "1"))))
    return env


def trainer_deployment(img: Image) -> Deployment:
    """The training pod plants_train submits: its limits are orchestration's setting defaults.

    Read from the orchestration package's source (no import crosses components): the limits
    from config.py, the writable emptyDir mounts from launchers.py; the security context is
    the restricted one of every PlantOps pod (uid 10001, read-only root).
    """
    orchestration = REPOS / "orchestration/src/plantops_orchestration"
    constants = module_constants(orchestration / "config.py")
    writable = module_constants(orchestration / "launchers.py")["TRAINER_WRITABLE_DIRS"]
    return Deployment(
        image=img.reference_name,
        user=10001,
        group=10001,
        cpus=parse_quantity(constants["train_k8s_cpu"]),
        memory_bytes=int(parse_quantity(constants["train_k8s_memory"])),
        read_only=True,
        drops_all_capabilities=True,
        writable_dirs=list(writable.values()),
    )


def module_constants(source: Path) -> dict[str, Any]:
    """Literal assignments of a Python file (`name = ...`, `name: type = ...`), unimported."""
    found: dict[str, Any] = {}
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = [t for t in node.targets if isinstance(t, ast.Name)], node.value
        else:
            continue
        with contextlib.suppress(ValueError, TypeError, SyntaxError):  # not a literal
            literal = ast.literal_eval(value)
            found.update({t.id: literal for t in targets})
    return found


def run_flags(dep: Deployment, tmp_size: str = "256m") -> list[str]:
    """`run` flags for a container started as deployed: uid, read-only root, no capabilities,
    no privilege escalation, the manifest's CPU and memory limits (no swap beyond it), and
    a writable /tmp and the manifest's other emptyDir mounts."""
    flags = [
        f"--user={dep.user}:{dep.group}",
        f"--cpus={dep.cpus:g}",
        f"--memory={dep.memory_bytes}",
        f"--memory-swap={dep.memory_bytes}",
        "--security-opt=no-new-privileges",
        f"--tmpfs=/tmp:rw,mode=1777,size={tmp_size}",
        *(f"--tmpfs={d}:rw,mode=1777,size={tmp_size}" for d in dep.writable_dirs if d != "/tmp"),
    ]
    if dep.read_only:
        flags.append("--read-only")
    if dep.drops_all_capabilities:
        flags.append("--cap-drop=ALL")
    return flags


def expand(words: Sequence[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' `$(VAR)` expansion of command and args from the container's environment."""
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], w) for w in words]


# ------------------------------------------------------------------ the engine


def engine(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run `scripts/engine ARGS` (docker or podman); output captured, failure raised."""
    proc = subprocess.run(
        [str(ENGINE), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise ImageError(
            f"{ENGINE.name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
        )
    return proc


@functools.cache
def engine_name() -> str:
    return engine("--name").stdout.strip()


def prepare_engine() -> str:
    """Set podman up where there is no Docker daemon, then check the engine answers.

    Raises when neither works: a machine that cannot run containers fails the smoke.
    """
    setup = subprocess.run(["bash", str(PODMAN_SETUP)], capture_output=True, text=True, check=False)
    if setup.returncode != 0:
        raise ImageError(f"podman-setup.sh failed:\n{setup.stdout}\n{setup.stderr}")
    name = engine_name()
    info = engine("info", check=False)
    if info.returncode != 0:
        raise ImageError(f"no container engine works ({name} info):\n{info.stderr}")
    return name


def build_flags(img: Image, engine_used: str) -> list[str]:
    """Extra build flags: torch from the local wheel store where PyPI's proxy is all we have."""
    if img.name != "ml-training" or engine_used != "podman":
        return []
    stores = [s for s in LOCAL_WHEEL_STORES if (s / "simple").is_dir()]
    if not stores:
        return []
    flags = [f"--volume={s}:{s}:ro" for s in stores]
    indexes = " ".join(f"file://{s}/simple" for s in reversed(stores))
    return [*flags, f"--build-arg=TORCH_INDEX_URL={indexes}"]


def build(img: Image, log_dir: Path, engine_used: str | None = None) -> float:
    """Build `img` under its deployed name; returns the seconds it took (cached layers reused)."""
    used = engine_used or engine_name()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"build-{img.name}.log"
    argv = [
        str(ENGINE),
        "build",
        *build_flags(img, used),
        "-t",
        img.reference_name,
        str(img.context),
    ]
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, check=False, env=os.environ
        )
    took = time.monotonic() - started
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise ImageError(f"building {img.name} failed ({proc.returncode}), log {log}:\n{tail}")
    return took


def build_all(
    images: Sequence[Image], log_dir: Path, engine_used: str, jobs: int = 2
) -> dict[str, float]:
    """Build `images`, `jobs` at a time (pip downloads wait on the network, not the CPU):
    seconds each took. The first failure is raised once the others are done."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {img.name: pool.submit(build, img, log_dir, engine_used) for img in images}
    return {name: future.result() for name, future in futures.items()}


def selected(names: Sequence[str] = ()) -> list[Image]:
    """The images named (all of them when none is)."""
    return [image(n) for n in names] if names else list(IMAGES)


def size_bytes(reference: str) -> int:
    return int(engine("image", "inspect", "--format", "{{.Size}}", reference).stdout.strip())


# ------------------------------------------------------------------ containers

MEMORY_UNITS = {
    "b": 1,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}


def parse_mem_usage(text: str) -> int:
    """The used part of `stats`' MemUsage ("123.4MB / 1.07GB", Docker: "12MiB / 1GiB")."""
    match = re.match(r"\s*([\d.]+)\s*([a-zA-Z]+)", text)
    if not match:
        raise ImageError(f"cannot read a memory figure in {text!r}")
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2).lower()])


@dataclass
class Container:
    """A detached container of the smoke tests; `rm()` removes it whatever its state."""

    name: str
    started: float = field(default_factory=time.monotonic)
    samples: list[int] = field(default_factory=list)

    def state(self) -> dict:
        fmt = (
            '{"running": {{json .State.Running}}, "oom": {{json .State.OOMKilled}}, '
            '"exit": {{json .State.ExitCode}}}'
        )
        return json.loads(engine("inspect", "--format", fmt, self.name).stdout)

    def logs(self) -> str:
        proc = engine("logs", self.name, check=False)
        return (proc.stdout + proc.stderr)[-6000:]

    def sample_memory(self) -> int:
        used = parse_mem_usage(
            engine("stats", "--no-stream", "--format", "{{.MemUsage}}", self.name).stdout
        )
        self.samples.append(used)
        return used

    def peak_memory(self) -> int:
        """The cgroup's own high-water mark where it can be read, else the highest sample."""
        peaks = list(self.samples)
        for path in self._cgroup_peak_files():
            if path.exists():
                peaks.append(int(path.read_text().split()[0]))
                break
        return max(peaks, default=0)

    def _cgroup_peak_files(self) -> list[Path]:
        cgroup = engine("inspect", "--format", "{{.State.CgroupPath}}", self.name, check=False)
        ident = engine("inspect", "--format", "{{.Id}}", self.name, check=False).stdout.strip()
        files = []
        if cgroup.returncode == 0 and cgroup.stdout.strip():
            path = cgroup.stdout.strip()
            files += [
                Path(f"/sys/fs/cgroup/memory{path}/memory.max_usage_in_bytes"),  # cgroup v1
                Path(f"/sys/fs/cgroup{path}/memory.peak"),  # cgroup v2
            ]
        files.append(Path(f"/sys/fs/cgroup/system.slice/docker-{ident}.scope/memory.peak"))
        return files

    def rm(self) -> None:
        # podman's `rm --force` first waits 10 s for SIGTERM; Docker's kills at once.
        quick = ["--time=2"] if engine_name() == "podman" else []
        engine("rm", "--force", *quick, self.name, check=False)


def run_detached(
    name: str, reference: str, flags: Sequence[str], env_file: Path, argv: Sequence[str] = ()
) -> Container:
    """Start a container on the host's network (the test servers listen on loopback)."""
    engine("rm", "--force", name, check=False)
    engine(
        "run",
        "--detach",
        f"--name={name}",
        "--network=host",
        "--no-healthcheck",  # Kubernetes ignores HEALTHCHECK: its probes are the manifest's
        f"--env-file={env_file}",
        *flags,
        reference,
        *argv,
    )
    return Container(name)


def run_once(
    reference: str, flags: Sequence[str], env_file: Path, argv: Sequence[str], timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run a one-shot container to its end (like a Job); output and exit status returned."""
    return engine(
        "run",
        "--rm",
        "--network=host",
        "--no-healthcheck",
        f"--env-file={env_file}",
        *flags,
        reference,
        *argv,
        timeout=timeout,
        check=False,
    )


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    """An env file for `run --env-file` (values must be single-line)."""
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return path
