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


def test_an_onnx_export_that_does_not_match_exits_2_with_its_reason(monkeypatch):
    """Exit 1 means "the gate kept the champion"; a failed export is a failed run (2).

    A real torch/ONNX mismatch cannot be produced on demand, so run_training is replaced by
    one that raises the error verify_onnx raises; the CLI's handling is what is tested.
    """
    from plantops_ml_training import export, pipeline

    def mismatched_export(*args, **kwargs):
        raise export.ExportError("ONNX logits differ from torch by 3.00e-02 (limit 1e-04)")

    monkeypatch.setattr(pipeline, "run_training", mismatched_export)
    result = CliRunner().invoke(app, ["train", "--require-promotion"])
    assert result.exit_code == 2
    assert "error: ONNX logits differ from torch" in result.output
    assert "Traceback" not in result.output
