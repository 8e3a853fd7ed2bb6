"""How the image smoke reads a deployment: what a container may write, and its limits."""

from __future__ import annotations

from plantops_infra.images import (
    deployment,
    from_pod,
    image,
    module_constants,
    run_flags,
    trainer_deployment,
)

POD = {
    "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
    "volumes": [
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "config", "configMap": {"name": "settings"}},
    ],
}
CONTAINER = {
    "name": "api",
    "image": "plantops/inference-api:0.1.0",
    "securityContext": {"readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
    "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
    "volumeMounts": [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": "/var/cache/api"},
        {"name": "config", "mountPath": "/etc/api"},
    ],
}


def test_only_empty_dir_mounts_are_writable_and_each_gets_a_tmpfs():
    dep = from_pod(POD, CONTAINER)
    assert dep.writable_dirs == ["/tmp", "/var/cache/api"]  # not the ConfigMap's mount
    flags = run_flags(dep)
    assert "--read-only" in flags and "--cap-drop=ALL" in flags
    assert [f.split(":")[0] for f in flags if f.startswith("--tmpfs=")] == [
        "--tmpfs=/tmp",
        "--tmpfs=/var/cache/api",
    ]
    assert "--memory=536870912" in flags and "--cpus=0.5" in flags


def test_the_trainer_runs_with_the_limits_and_writable_dirs_plants_train_gives_its_pod():
    dep = trainer_deployment(image("ml-training"))
    assert (dep.user, dep.read_only, dep.drops_all_capabilities) == (10001, True, True)
    assert (dep.cpus, dep.memory_bytes) == (2.0, 4 * 2**30)
    assert dep.writable_dirs == ["/tmp", "/home/plantops/.cache/plantops-ml-training"]


def test_module_constants_reads_literals_and_skips_the_rest(tmp_path):
    source = tmp_path / "settings.py"
    source.write_text(
        'cpu: str = "2"\nDIRS = {"tmp": "/tmp"}\nfactory = dict(a=1)\nclass C:\n    n: int = 3\n'
    )
    assert module_constants(source) == {"cpu": "2", "DIRS": {"tmp": "/tmp"}, "n": 3}


def test_downward_api_cpu_variables_are_given_as_the_kubelet_gives_them():
    container = {
        **CONTAINER,
        "env": [
            {"name": "PLAIN", "value": "1"},
            {
                "name": "THREADS",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}},
            },
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "KEY"}}},
        ],
    }
    dep = from_pod(POD, container)
    assert dep.env == {"PLAIN": "1", "THREADS": "1"}  # 500m rounded up
    assert dep.env_refs == ["KEY"]  # the smoke must provide only what comes from a Secret


def test_the_api_manifest_sizes_its_thread_pools_from_its_cpu_limit():
    dep = deployment(image("inference-api"))
    assert dep.env["PLANTOPS_ONNX_THREADS"] == dep.env["PLANTOPS_PREPROCESS_WORKERS"]
    assert int(dep.env["PLANTOPS_ONNX_THREADS"]) == dep.cpus
