"""The contracts this component owns (`contracts/`, shipped in the package), checked on write.

`manifest.schema.json` says what a dataset version's manifest.csv and stats.json hold;
ml-training validates what it reads against its vendored copy, so a version that does not
conform is refused here, before anything is stored. `plants_data.sql` is the table as the
migrations leave it (checked by a test against a migrated database).

Vendored from the inference API: `vendored/inference-api/image-formats.json`, the formats
ingestion accepts, and `prediction-log.schema.json`, the records plants_monitor reads; from
ml-training: `vendored/ml-training/reference.schema.json`, the champion's reference.json.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
MANIFEST_SCHEMA = "manifest.schema.json"
IMAGE_FORMATS = "vendored/inference-api/image-formats.json"
PREDICTION_LOG_SCHEMA = "vendored/inference-api/prediction-log.schema.json"
REFERENCE_SCHEMA = "vendored/ml-training/reference.schema.json"


class ContractError(ValueError):
    """What we were about to write does not conform to our own contract."""


@cache
def load_contract(name: str) -> dict[str, Any]:
    return json.loads((CONTRACTS_DIR / name).read_text())


@cache
def _validator(definition: str) -> Draft202012Validator:
    schema = load_contract(MANIFEST_SCHEMA)
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})


@cache
def _document_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_contract(name))


def first_problem(name: str, document: object) -> str | None:
    """Where and how `document` breaks the vendored contract `name`, or None if it conforms."""
    error = next(iter(_document_validator(name).iter_errors(document)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(top)"
    return f"{where}: {error.message}"


def accepted_image_formats() -> list[dict[str, Any]]:
    """The formats the inference API opens (its contract, vendored): pillow, extension..."""
    return list(load_contract(IMAGE_FORMATS)["formats"])


def manifest_columns() -> tuple[str, ...]:
    return tuple(load_contract(MANIFEST_SCHEMA)["x-manifest-columns"])


def check_manifest_row(row: dict[str, str]) -> None:
    _raise_first(_validator("manifest_row"), row, f"manifest row {row}")


def check_stats(stats: dict[str, Any]) -> None:
    _raise_first(_validator("stats"), stats, "stats.json")


def _raise_first(validator: Draft202012Validator, document: object, what: str) -> None:
    error = next(iter(validator.iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top)"
        raise ContractError(f"{what} breaks {MANIFEST_SCHEMA} at {where}: {error.message}")
