"""The contracts plants_monitor reads are copies of their producers' files, kept equal.

In the umbrella checkout the producer's file sits beside this component; published alone
(make split), only the vendored copy exists and the comparison has nothing to compare.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from plantops_orchestration import monitoring

pytestmark = pytest.mark.unit

COMPONENT = Path(__file__).resolve().parents[2]
VENDORED = COMPONENT / "contracts" / "vendored"
PRODUCERS = {  # vendored file -> the producer's file, under repos/
    name: f"{name.split('/')[0]}/contracts/{name.split('/')[1]}"
    for name in ("inference-api/prediction-log.schema.json", "ml-training/reference.schema.json")
}


@pytest.mark.parametrize("vendored", sorted(PRODUCERS))
def test_vendored_copy_is_a_valid_schema_and_equals_the_producer(vendored):
    copy = json.loads((VENDORED / vendored).read_text())
    jsonschema.Draft202012Validator.check_schema(copy)
    producer = COMPONENT.parent / PRODUCERS[vendored]
    if producer.is_file():
        assert json.loads(producer.read_text()) == copy, f"{vendored} differs from {producer}"


def test_the_fields_read_are_the_contract_fields():
    schema = json.loads((VENDORED / "inference-api/prediction-log.schema.json").read_text())
    assert set(monitoring.RECORD_FIELDS) == set(schema["required"])
