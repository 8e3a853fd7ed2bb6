"""Contracts: the one this component owns, and the copy it vendors from orchestration.

Both are package data under `contracts/` (docs/architecture.md, "Contracts"):

- `preprocessing.schema.json`, ours: every `preprocessing.json` we write (and read back
  from a champion) is validated against it, so we never write what the API would refuse.
- `reference.schema.json`, ours: the monitoring reference.json written with each model
  (novelty.write_reference checks it; orchestration's drift check reads it).
- `vendored/orchestration/manifest.schema.json`: the dataset manifests we read.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
PREPROCESSING_SCHEMA = "preprocessing.schema.json"
REFERENCE_SCHEMA = "reference.schema.json"
MANIFEST_SCHEMA = "vendored/orchestration/manifest.schema.json"


@cache
def load_contract(name: str) -> dict[str, Any]:
    return json.loads((CONTRACTS_DIR / name).read_text())


@cache
def _validator(name: str, definition: str | None = None) -> Draft202012Validator:
    schema = load_contract(name)
    if definition is not None:  # one of its $defs, e.g. a manifest row
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(schema)


def first_problem(name: str, document: object, definition: str | None = None) -> str | None:
    """Where and how `document` breaks the contract `name`, or None when it conforms."""
    error = next(iter(_validator(name, definition).iter_errors(document)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(top)"
    return f"{where}: {error.message}"


def manifest_columns() -> tuple[str, ...]:
    return tuple(load_contract(MANIFEST_SCHEMA)["x-manifest-columns"])
