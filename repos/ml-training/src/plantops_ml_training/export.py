"""ONNX export, the ONNX-vs-torch check, and scoring with an exported model.

The check runs before anything is registered: a model whose ONNX logits differ from
torch's by 1e-4 or more on the test images is never served.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from plantops_ml_training.preprocessing import PreprocessingSpec, preprocess_batch

OPSET = 17
MAX_ABS_DIFF = 1e-4


class ExportError(Exception):
    """The exported model does not behave like the trained one."""


def export_onnx(model: torch.nn.Module, spec: PreprocessingSpec, path: Path) -> Path:
    """Write one self-contained ONNX file: `image [N,3,H,W]` → `logits [N,n_labels]`."""
    model.eval()
    example = torch.zeros(1, 3, spec.crop_size, spec.crop_size)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=[spec.input_name],
        output_names=[spec.output_name],
        dynamic_axes={spec.input_name: {0: "batch"}, spec.output_name: {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    return path


def onnx_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(session: ort.InferenceSession, batch: np.ndarray, spec: PreprocessingSpec):
    return session.run([spec.output_name], {spec.input_name: batch})[0]


def onnx_probs(
    path: Path, spec: PreprocessingSpec, images: list[Path], batch_size: int = 32
) -> np.ndarray:
    """Class probabilities of an exported model, fed exactly as the API feeds it."""
    session = onnx_session(path)
    outputs = []
    for start in range(0, len(images), batch_size):
        logits = onnx_logits(
            session, preprocess_batch(images[start : start + batch_size], spec), spec
        )
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        outputs.append(shifted / shifted.sum(axis=1, keepdims=True))
    return np.concatenate(outputs)


def max_logit_difference(
    model: torch.nn.Module, path: Path, spec: PreprocessingSpec, images: list[Path]
) -> float:
    """Largest |ONNX - torch| over the logits of `images` (in batches of 16)."""
    session = onnx_session(path)
    worst = 0.0
    model.eval()
    for start in range(0, len(images), 16):
        batch = preprocess_batch(images[start : start + 16], spec)
        with torch.inference_mode():
            expected = model(torch.from_numpy(batch)).numpy()
        worst = max(worst, float(np.abs(onnx_logits(session, batch, spec) - expected).max()))
    return worst


def verify_onnx(
    model: torch.nn.Module, path: Path, spec: PreprocessingSpec, images: list[Path]
) -> float:
    difference = max_logit_difference(model, path, spec, images)
    if not difference < MAX_ABS_DIFF:
        raise ExportError(
            f"ONNX logits differ from torch by {difference:.2e} (limit {MAX_ABS_DIFF:.0e}) "
            "on the test images: the model was not registered."
        )
    return difference
