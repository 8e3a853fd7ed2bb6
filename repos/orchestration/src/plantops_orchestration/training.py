"""Running the training CLI of the training environment as a subprocess.

Airflow's environment never installs torch: training runs in its own
virtualenv locally (PLANTOPS_TRAIN_COMMAND) and in its own image elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from plantops_orchestration.config import Settings
from plantops_orchestration.launchers import train_arguments

log = logging.getLogger(__name__)


class TrainingFailed(RuntimeError):
    pass


def training_argv(settings: Settings, dataset_version: str) -> list[str]:
    """`<command> train --dataset-version <version> <extra args>` as argv."""
    command = shlex.split(settings.train_command)
    if not command:
        raise TrainingFailed("PLANTOPS_TRAIN_COMMAND is empty")
    executable = command[0]
    if shutil.which(executable) is None and not Path(executable).is_file():
        raise TrainingFailed(
            f"training command {executable!r} not found: set PLANTOPS_TRAIN_COMMAND to the "
            "plantops-train of the training environment (run `make setup` in repos/ml-training)"
        )
    return [*command, *train_arguments(settings, dataset_version)]


def run_training(settings: Settings, dataset_version: str) -> dict:
    """Run training, streaming its output to our log; raise if it fails or times out."""
    argv = training_argv(settings, dataset_version)
    log.info("running %s", shlex.join(argv))
    started = time.monotonic()
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,  # its own process group, so a stop reaches its children
    ) as process:
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            _kill_group(process.pid)

        # A watchdog, so a silent, hung training is stopped too.
        watchdog = threading.Timer(settings.train_timeout_s, stop)
        watchdog.start()
        tail: list[str] = []
        try:
            for line in process.stdout or ():
                log.info("train | %s", line.rstrip())
                tail = [*tail[-19:], line.rstrip()]
            code = process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:  # we were interrupted (Airflow's timeout, a kill)
                _kill_group(process.pid)
    if timed_out.is_set():
        raise TrainingFailed(f"training ran over {settings.train_timeout_s} s and was stopped")
    seconds = round(time.monotonic() - started, 1)
    if code != 0:
        last = "\n".join(tail)
        raise TrainingFailed(f"training exited with code {code} after {seconds} s:\n{last}")
    result = {"dataset_version": dataset_version, "seconds": seconds, "command": shlex.join(argv)}
    return {**result, **log_gate_decision(tail)}


def log_gate_decision(tail: list[str]) -> dict:
    """Find plantops-train's JSON result line and say the gate's decision on its own log
    line (a challenger kept out, with the gate's counts, must not hide among epochs)."""
    for line in reversed(tail):
        try:
            summary = json.loads(line)
        except ValueError:
            continue
        if isinstance(summary, dict) and "promoted" in summary:
            verdict = "promoted to champion" if summary["promoted"] else "NOT promoted"
            log.log(
                logging.INFO if summary["promoted"] else logging.WARNING,
                "gate: model version %s %s: %s",
                summary.get("model_version"),
                verdict,
                summary.get("reason"),
            )
            keys = ("model_version", "promoted", "reason", "field_balanced_accuracy")
            return {key: summary[key] for key in keys if key in summary}
    log.warning("gate: no result line from the training command; decision unknown")
    return {}


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(pid, signal.SIGKILL)
