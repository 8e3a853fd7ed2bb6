"""Contracts: the ones this API owns and the copy it vendors from ml-training.

All are package data under `contracts/` (docs/architecture.md, "Contracts"):

- `openapi.json`, ours: a snapshot of the served OpenAPI (`make contracts` rewrites it;
  a test fails when the served schema differs). The web app checks its models against it.
- `image-formats.json`, ours: the formats /predict opens. This API reads its list from
  the file; the web app and the ingestion accept exactly these.
- `vendored/ml-training/preprocessing.schema.json`: every model's `preprocessing.json`
  is validated against it before the model is served.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
OPENAPI = "openapi.json"
IMAGE_FORMATS = "image-formats.json"
PREPROCESSING_SCHEMA = "vendored/ml-training/preprocessing.schema.json"


@cache
def load_contract(name: str) -> dict[str, Any]:
    return json.loads((CONTRACTS_DIR / name).read_text())


def accepted_formats() -> list[dict[str, Any]]:
    """`[{"pillow": "JPEG", "name": "JPEG", "media_type": ..., "extension": ...}, ...]`."""
    return list(load_contract(IMAGE_FORMATS)["formats"])


@cache
def _preprocessing_validator() -> Draft202012Validator:
    return Draft202012Validator(load_contract(PREPROCESSING_SCHEMA))


def preprocessing_problem(document: object) -> str | None:
    """Where and how a preprocessing.json breaks the contract, or None when it conforms."""
    error = next(iter(_preprocessing_validator().iter_errors(document)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(top)"
    return f"{where}: {error.message}"
