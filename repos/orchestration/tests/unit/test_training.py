"""Running the training command: argv, output, failures (real subprocesses, no Airflow)."""

from __future__ import annotations

import logging

import pytest

from plantops_orchestration.config import Settings
from plantops_orchestration.training import TrainingFailed, run_training, training_argv

pytestmark = pytest.mark.unit


def settings(**overrides) -> Settings:
    return Settings(
        mysql_user="u", mysql_password="p", s3_access_key="a", s3_secret_key="s", **overrides
    )


def script(tmp_path, body: str):
    path = tmp_path / "trainer"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_argv_is_the_command_then_train_with_the_version_then_extra_args(tmp_path):
    trainer = script(tmp_path, "exit 0\n")
    argv = training_argv(
        settings(train_command=f"{trainer} --quiet", train_args="--epochs 1"), "ds-1"
    )
    assert argv == [str(trainer), "--quiet", "train", "--dataset-version", "ds-1", "--epochs", "1"]


def test_a_missing_command_says_how_to_install_it(tmp_path):
    with pytest.raises(TrainingFailed, match="make setup` in repos/ml-training"):
        training_argv(settings(train_command=str(tmp_path / "nope")), "ds-1")


def test_output_is_logged_and_success_reported(tmp_path, caplog):
    trainer = script(tmp_path, 'echo "epoch 1 done"\n')
    with caplog.at_level(logging.INFO):
        result = run_training(settings(train_command=str(trainer)), "ds-1")
    assert result["dataset_version"] == "ds-1"
    assert "train | epoch 1 done" in caplog.text


def test_a_failing_training_raises_with_its_last_lines(tmp_path):
    trainer = script(tmp_path, "echo 'accuracy below the floor' >&2\nexit 3\n")
    with pytest.raises(TrainingFailed, match="code 3") as error:
        run_training(settings(train_command=str(trainer)), "ds-1")
    assert "accuracy below the floor" in str(error.value)


def test_a_hung_training_is_stopped_at_the_timeout(tmp_path):
    trainer = script(tmp_path, "sleep 30\n")
    with pytest.raises(TrainingFailed, match="ran over 1 s"):
        run_training(settings(train_command=str(trainer), train_timeout_s=1), "ds-1")


def test_the_gate_decision_and_its_reason_get_their_own_log_line(tmp_path, caplog):
    reason = (
        "worse than the champion on the field check on 263 photos: champion right and "
        "challenger wrong on 5, challenger right and champion wrong on 1 (tolerance 2)"
    )
    line = f'{{"model_version": "7", "promoted": false, "reason": "{reason}"}}'
    trainer = script(tmp_path, f"echo 'epoch 1 done'\necho '{line}'\n")
    with caplog.at_level(logging.INFO):
        result = run_training(settings(train_command=str(trainer)), "ds-1")
    assert result["promoted"] is False and result["model_version"] == "7"
    gate_lines = [r for r in caplog.records if r.getMessage().startswith("gate:")]
    assert len(gate_lines) == 1 and gate_lines[0].levelno == logging.WARNING
    assert "NOT promoted" in gate_lines[0].getMessage()
    assert "champion right and challenger wrong on 5" in gate_lines[0].getMessage()
