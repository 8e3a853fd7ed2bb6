"""A loaded model: the onnxruntime session, its preprocessing spec and where it came from.

One `LoadedModel` carries the preprocessing and the network together, so the routes,
the benchmark and the tests all predict through the same object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort

from plantops_inference_api.config import usable_cores
from plantops_inference_api.errors import ModelLoadError
from plantops_inference_api.novelty import NoveltyScorer, load_scorer
from plantops_inference_api.preprocessing import PreprocessingSpec

MODEL_FILE = "model.onnx"
SPEC_FILE = "preprocessing.json"


@dataclass(frozen=True)
class ModelSource:
    """Where a model version came from (shown by GET /v1/model)."""

    name: str
    version: str
    alias: str
    run_id: str | None = None
    source_uri: str | None = None
    dataset_version: str | None = None
    test_accuracy: float | None = None
    trained_at: datetime | None = None


class ModelOutput(NamedTuple):
    """What the model says about a batch: probabilities `[N, n_labels]` and novelty
    scores `[N]` (None for a model without a novelty reference)."""

    probabilities: np.ndarray
    novelty_scores: np.ndarray | None


@dataclass
class LoadedModel:
    source: ModelSource
    spec: PreprocessingSpec
    session: ort.InferenceSession
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    novelty: NoveltyScorer | None = None

    @property
    def labels(self) -> list[str]:
        return self.spec.labels

    def predict(self, batch: np.ndarray) -> ModelOutput:
        """Probabilities and novelty scores of a float32 `[N, 3, H, W]` batch (one run)."""
        names = [self.spec.output_name]
        if self.novelty is not None and self.spec.embedding_name:
            names.append(self.spec.embedding_name)
        outputs = self.session.run(names, {self.spec.input_name: batch})
        probs = softmax(np.asarray(outputs[0], dtype=np.float64)).astype(np.float32)
        if self.novelty is None:
            return ModelOutput(probs, None)
        return ModelOutput(probs, self.novelty.scores(outputs[1]))

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax over the logits of a float32 `[N, 3, H, W]` batch: `[N, n_labels]`."""
        (logits,) = self.session.run([self.spec.output_name], {self.spec.input_name: batch})
        return softmax(np.asarray(logits, dtype=np.float64)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def load_model_dir(folder: Path, source: ModelSource, onnx_threads: int = 0) -> LoadedModel:
    """Load `model.onnx` + `preprocessing.json` from a folder and verify they fit together."""
    spec_path, model_path = folder / SPEC_FILE, folder / MODEL_FILE
    for path in (spec_path, model_path):
        if not path.is_file():
            raise ModelLoadError("verify", f"{path.name} is missing in {folder}")
    try:
        spec = PreprocessingSpec.read(spec_path)
    except ValueError as exc:
        raise ModelLoadError("verify", str(exc)) from exc
    options = ort.SessionOptions()
    # Always a number: left to itself onnxruntime starts one thread per core of the
    # machine and pins each to its core, ignoring the cores this process may use
    # (taskset, cpusets): a server given one core ran inference on the others too.
    options.intra_op_num_threads = onnx_threads or usable_cores()
    # In a server, decoding and HTTP run between inferences: idle onnxruntime threads
    # must sleep, not spin on the cores those need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The memory pattern pre-plans one block per input shape it has seen, and a server
    # sees every batch size from 1 to inference_batch_size: with a flip-TTA graph that
    # kept ~70 MB more resident in a development probe, for no measurable speed.
    options.enable_mem_pattern = False

    try:
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError("verify", f"{MODEL_FILE} is not a loadable ONNX model: {exc}") from exc
    novelty = load_scorer(folder, spec.novelty) if spec.novelty is not None else None
    model = LoadedModel(source=source, spec=spec, session=session, novelty=novelty)
    verify(model)
    return model


def verify(model: LoadedModel) -> None:
    """Refuse a model whose graph does not match its spec, before it serves anything."""
    spec, session = model.spec, model.session
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if spec.input_name not in inputs:
        raise ModelLoadError("verify", f"input '{spec.input_name}' not in the graph: {inputs}")
    if spec.output_name not in outputs:
        raise ModelLoadError("verify", f"output '{spec.output_name}' not in the graph: {outputs}")
    probe = np.zeros((1, 3, spec.crop_size, spec.crop_size), dtype=np.float32)
    try:
        probs = model.probabilities(probe)
    except Exception as exc:
        raise ModelLoadError("verify", f"the model fails on a {probe.shape} input: {exc}") from exc
    if probs.shape != (1, len(spec.labels)):
        raise ModelLoadError(
            "verify",
            f"the model gives {probs.shape[-1]} outputs for {len(spec.labels)} labels",
        )
    if not np.all(np.isfinite(probs)):
        raise ModelLoadError("verify", "the model gives non-finite outputs")
    if model.novelty is not None:
        verify_novelty(model, probe)


def verify_novelty(model: LoadedModel, probe: np.ndarray) -> None:
    """The embedding output exists and has the size the novelty parameters were fitted on."""
    assert model.novelty is not None and model.spec.embedding_name is not None
    name = model.spec.embedding_name
    if name not in {o.name for o in model.session.get_outputs()}:
        raise ModelLoadError("verify", f"output '{name}' (the embedding) not in the graph")
    (embedding,) = model.session.run([name], {model.spec.input_name: probe})
    if embedding.shape != (1, model.novelty.embedding_size):
        raise ModelLoadError(
            "verify",
            f"the embedding has shape {embedding.shape[1:]}; the novelty parameters expect "
            f"{model.novelty.embedding_size} values",
        )
    scores = model.predict(probe).novelty_scores
    if scores is None or not np.all(np.isfinite(scores)):
        raise ModelLoadError("verify", "the novelty score is not finite on a probe input")
