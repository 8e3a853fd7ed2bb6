"""The contracts between components: vendored copies, fixtures, the shared S3 retry policy.

Each contract is a file its producer owns (`repos/<producer>/contracts/`); each consumer
vendors a copy with the producer's version (`contracts/vendored/<producer>/`). Here:
every copy equals its producer's file and names its version (`make contracts` refreshes
them), the consumers' test fixtures conform to the contracts they stand in for, and every
component builds its S3 client with the same retry policy (each has its own s3_retry.py:
components share no code).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import contracts  # scripts/contracts.py: the table of vendored copies (path set above)

pytestmark = pytest.mark.unit

REPOS = ROOT / "repos"


def producer_contract(producer: str, name: str) -> dict:
    return json.loads((REPOS / producer / "contracts" / name).read_text())


def test_every_vendored_copy_is_its_producers_file_at_its_version():
    assert contracts.differences() == [], "changed a contract? run `make contracts`"


def test_every_consumer_validates_with_a_vendored_copy_that_exists():
    for item in contracts.VENDORED:
        assert item.source.is_file(), f"{item.source} is listed but missing"
        assert item.consumer != item.producer


@pytest.mark.parametrize(
    "schema_file",
    [
        "ml-training/contracts/preprocessing.schema.json",
        "orchestration/contracts/manifest.schema.json",
    ],
)
def test_the_schemas_are_valid_json_schema(schema_file):
    Draft202012Validator.check_schema(json.loads((REPOS / schema_file).read_text()))


def run_in(component: str, code: str) -> str:
    """Run Python in a component's own virtualenv (its packages are not importable here)."""
    python = REPOS / component / ".venv" / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", code],
        cwd=REPOS / component,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


S3_RETRY_MODULES = {
    "orchestration": "plantops_orchestration.s3_retry",
    "ml-training": "plantops_ml_training.s3_retry",
    "inference-api": "plantops_inference_api.s3_retry",
    "webapp": "plantops_webapp.s3_retry",
}


def test_every_s3_client_retries_the_same_statuses_with_the_same_backoff():
    policies = {}
    for component, module in S3_RETRY_MODULES.items():
        code = (
            f"import json; from {module} import s3_retry; r = s3_retry(); "
            "print(json.dumps([r.total, r.backoff_factor, sorted(r.status_forcelist)]))"
        )
        policies[component] = json.loads(run_in(component, code))
    assert len({json.dumps(policy) for policy in policies.values()}) == 1, policies
    total, backoff, statuses = policies["orchestration"]
    assert (total, backoff, statuses) == (3, 0.2, [500, 502, 503, 504])


def test_every_component_readme_states_the_s3_retry_policy():
    for component in S3_RETRY_MODULES:
        readme = (REPOS / component / "README.md").read_text()
        assert "500, 502, 503, 504" in readme and "0.2 s" in readme, component


# --------------------------------------------------------------- consumers' fixtures


def preprocessing_problems(spec: dict) -> list[str]:
    schema = producer_contract("ml-training", "preprocessing.schema.json")
    return [error.message for error in Draft202012Validator(schema).iter_errors(spec)]


def test_the_tiny_model_spec_every_suite_serves_conforms_to_the_preprocessing_contract():
    from plantops_infra.testing import tiny_model_spec

    for labels in (["dandelion", "grass"], ["dandelion", "grass", "clover"]):
        assert preprocessing_problems(tiny_model_spec(labels)) == []


def test_the_manifests_ml_training_tests_train_on_conform_to_the_manifest_contract():
    # The rows its integration fixtures upload (tests/integration/conftest.py put_dataset).
    code = (
        "import json, sys; sys.path.insert(0, '.'); "
        "from tests.integration.conftest import manifest_row; "
        "print(json.dumps(manifest_row('dandelion', 'train', b'not an image')))"
    )
    row = json.loads(run_in("ml-training", code))
    schema = producer_contract("orchestration", "manifest.schema.json")
    validator = Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/manifest_row"})
    assert [error.message for error in validator.iter_errors(row)] == []
