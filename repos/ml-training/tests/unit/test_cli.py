"""CLI refusals that need no server."""

import pytest
from typer.testing import CliRunner

from plantops_ml_training.cli import app

pytestmark = pytest.mark.unit


def test_an_invalid_recipe_is_refused_before_contacting_anything(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("image_size: 101\n")
    result = CliRunner().invoke(app, ["train", "--config", str(recipe)])
    assert result.exit_code == 2
    assert "image_size must be even" in result.output
    assert "Traceback" not in result.output


def test_bench_refuses_a_missing_folder(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--images", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "is not a folder" in result.output
