"""plants_monitor reads the fields its vendored prediction-log contract names.

That each vendored copy equals its producer's file is the umbrella's tests/test_contracts.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plantops_orchestration import monitoring

pytestmark = pytest.mark.unit

COMPONENT = Path(__file__).resolve().parents[2]
VENDORED = COMPONENT / "contracts" / "vendored"


def test_the_fields_read_are_the_contract_fields():
    schema = json.loads((VENDORED / "inference-api/prediction-log.schema.json").read_text())
    assert set(monitoring.RECORD_FIELDS) == set(schema["required"])
