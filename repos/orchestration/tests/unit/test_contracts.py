"""The contracts this component owns: what a dataset version holds, and the image formats."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from plantops_orchestration.contract_files import CONTRACTS_DIR, ContractError
from plantops_orchestration.dataset import build_dataset
from plantops_orchestration.images import EXTENSIONS, ImageLimits, InvalidImage, check_and_normalise

pytestmark = pytest.mark.unit

SHA = "ab" * 32


def test_a_dataset_version_is_checked_against_the_manifest_contract_before_it_is_written():
    dataset = build_dataset([("grass", SHA), ("dandelion", "12" * 32)], 0.7, 0.15)  # both in train
    assert dataset.stats["images"] == 2
    # A label with a slash would make keys ml-training cannot parse: refused on write.
    with pytest.raises(ContractError, match=r"breaks manifest\.schema\.json at (key|label)"):
        build_dataset([("grass/wild", SHA)], 0.7, 0.15)


def accepted_by_the_api() -> dict[str, str]:
    """Pillow format -> extension, from the API's contract (vendored)."""
    contract = json.loads((CONTRACTS_DIR / "vendored/inference-api/image-formats.json").read_text())
    return {fmt["pillow"]: fmt["extension"] for fmt in contract["formats"]}


@pytest.mark.parametrize("fmt", sorted(accepted_by_the_api()))
def test_each_accepted_format_is_stored(fmt):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, fmt)
    assert check_and_normalise(buffer.getvalue(), ImageLimits()).ext == EXTENSIONS[fmt]


def test_a_format_the_api_would_refuse_is_not_ingested():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, "PPM")  # Pillow reads it; the API not
    with pytest.raises(InvalidImage, match="PPM"):
        check_and_normalise(buffer.getvalue(), ImageLimits())
