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
MAX_EMBEDDING_REL_DIFF = 1e-4


class ExportError(Exception):
    """The exported model does not behave like the trained one."""


def output_names(spec: PreprocessingSpec) -> list[str]:
    return [spec.output_name] + ([spec.embedding_name] if spec.embedding_name else [])


def export_onnx(model: torch.nn.Module, spec: PreprocessingSpec, path: Path) -> Path:
    """Write one self-contained ONNX file: `image [N,3,H,W]` → `logits [N,n_labels]`
    (and, with `spec.embedding_name`, `embedding [N,D]`: the model returns both)."""
    model.eval()
    example = torch.zeros(1, 3, spec.crop_size, spec.crop_size)
    names = output_names(spec)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=[spec.input_name],
        output_names=names,
        dynamic_axes={name: {0: "batch"} for name in [spec.input_name, *names]},
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


def onnx_outputs(
    path: Path, spec: PreprocessingSpec, images: list[Path], batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities and (None without one) embeddings of an exported model, fed as the
    API feeds it."""
    session = onnx_session(path)
    probs, embeddings = [], []
    for start in range(0, len(images), batch_size):
        batch = preprocess_batch(images[start : start + batch_size], spec)
        outputs = session.run(output_names(spec), {spec.input_name: batch})
        shifted = np.exp(outputs[0] - outputs[0].max(axis=1, keepdims=True))
        probs.append(shifted / shifted.sum(axis=1, keepdims=True))
        if spec.embedding_name:
            embeddings.append(outputs[1])
    return np.concatenate(probs), np.concatenate(embeddings) if embeddings else None


def max_output_differences(
    model: torch.nn.Module, path: Path, spec: PreprocessingSpec, images: list[Path]
) -> dict[str, float]:
    """Largest |ONNX - torch| of each output over `images` (in batches of 16)."""
    session = onnx_session(path)
    names = output_names(spec)
    worst = dict.fromkeys(names, 0.0)
    model.eval()
    for start in range(0, len(images), 16):
        batch = preprocess_batch(images[start : start + 16], spec)
        with torch.inference_mode():
            expected = model(torch.from_numpy(batch))
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(names, {spec.input_name: batch})
        for name, mine, theirs in zip(names, got, expected, strict=True):
            worst[name] = max(worst[name], float(np.abs(mine - theirs.numpy()).max()))
    return worst


def max_logit_difference(
    model: torch.nn.Module, path: Path, spec: PreprocessingSpec, images: list[Path]
) -> float:
    """Largest |ONNX - torch| over the logits of `images`."""
    return max_output_differences(model, path, spec, images)[spec.output_name]


def verify_onnx(
    model: torch.nn.Module, path: Path, spec: PreprocessingSpec, images: list[Path]
) -> float:
    """The logits' largest difference; raises when any output is off (the embedding by
    more than MAX_EMBEDDING_REL_DIFF of its largest value: its scale is the features')."""
    differences = max_output_differences(model, path, spec, images)
    difference = differences[spec.output_name]
    if not difference < MAX_ABS_DIFF:
        raise ExportError(
            f"ONNX logits differ from torch by {difference:.2e} (limit {MAX_ABS_DIFF:.0e}) "
            "on the test images: the model was not registered."
        )
    if spec.embedding_name:
        verify_embedding(model, path, spec, images[:16], differences[spec.embedding_name])
    return difference


def verify_embedding(
    model: torch.nn.Module, path: Path, spec: PreprocessingSpec, images: list[Path], diff: float
) -> None:
    batch = preprocess_batch(images, spec)
    with torch.inference_mode():
        scale = float(np.abs(model(torch.from_numpy(batch))[1].numpy()).max())
    if not diff < MAX_EMBEDDING_REL_DIFF * max(scale, 1.0):
        raise ExportError(
            f"ONNX embedding differs from torch by {diff:.2e} (largest value {scale:.2f}, "
            f"limit {MAX_EMBEDDING_REL_DIFF:.0e} of it) on the test images: the model was "
            "not registered."
        )
