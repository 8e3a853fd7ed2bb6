"""Small real ONNX models and their preprocessing.json, built without torch.

`mean_colour` models answer by the average colour of the crop (easy to reason about:
a red image is "red"); `spatial` models multiply every input value by a fixed random
weight, so any preprocessing difference (resize, crop offset, rounding) moves the
probabilities: they catch train/serve skew.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

COLOUR_LABELS = ("red", "green", "blue")


def spec_dict(
    labels: tuple[str, ...] | list[str],
    resize_shorter_side: int = 40,
    crop_size: int = 32,
    resample: str = "bilinear",
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
    std: tuple[float, float, float] = (0.5, 0.5, 0.5),
) -> dict:
    return {
        "format_version": 1,
        "input_name": "image",
        "output_name": "logits",
        "labels": list(labels),
        "resize_shorter_side": resize_shorter_side,
        "resample": resample,
        "crop_size": crop_size,
        "mean": list(mean),
        "std": list(std),
    }


def _graph_mean_colour(n_labels: int, scale: float, embedding: bool = False) -> onnx.GraphProto:
    weights = np.zeros((3, n_labels), dtype=np.float32)
    for channel in range(3):
        weights[channel, channel % n_labels] = scale
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "W", "B"], ["logits"]),
    ]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_labels])
    inits = [
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(np.zeros(n_labels, dtype=np.float32), "B"),
    ]
    outputs = [logits]
    if embedding:  # the pooled features, like the real model's second output
        nodes.append(helper.make_node("Identity", ["features"], ["embedding"]))
        outputs.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3]))
    return helper.make_graph(nodes, "mean_colour", [image], outputs, inits)


def write_novelty(folder: Path, spec: dict, threshold: float = 0.5) -> None:
    """A novelty reference for a mean-colour model: the training "photos" are the pure
    colours of its labels (normalised pixels: +1 in the label's channel, -1 elsewhere),
    so a pure red image scores 0 and a grey one 1 (cosine 0 after centring)."""
    n = len(spec["labels"])
    bank = -np.ones((n, 3), dtype=np.float32)
    for i in range(n):
        bank[i, i % 3] = 1.0
    mean = bank.mean(axis=0)
    centred = bank - mean
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    np.savez(folder / "novelty.npz", mean=mean, bank=unit.astype(np.float16), k=np.int64(1))
    spec["embedding_name"] = "embedding"
    spec["novelty"] = {
        "method": "knn_cosine",
        "params_file": "novelty.npz",
        "k": 1,
        "threshold": threshold,
        "false_alarm_rate": 0.02,
        "target_false_alarm_rate": 0.02,
    }


def _graph_spatial(n_labels: int, crop: int, seed: int) -> onnx.GraphProto:
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((3 * crop * crop, n_labels)) * 0.02).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", ["image"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "W", "B"], ["logits"]),
    ]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, crop, crop])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_labels])
    inits = [
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(np.zeros(n_labels, dtype=np.float32), "B"),
    ]
    return helper.make_graph(nodes, "spatial", [image], [logits], inits)


def write_model(
    folder: Path,
    labels: tuple[str, ...] | list[str] = COLOUR_LABELS,
    kind: str = "mean_colour",
    seed: int = 0,
    scale: float = 4.0,
    novelty: bool = False,
    **spec_overrides,
) -> Path:
    """Write `model.onnx` + `preprocessing.json` into `folder` (created) and return it;
    `novelty`: a mean-colour model with an `embedding` output and `novelty.npz`
    (write_novelty)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = spec_dict(labels, **spec_overrides)
    if novelty:
        write_novelty(folder, spec)
    if kind == "mean_colour":
        graph = _graph_mean_colour(len(labels), scale, embedding=novelty)
    else:
        graph = _graph_spatial(len(labels), spec["crop_size"], seed)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    (folder / "preprocessing.json").write_text(json.dumps(spec, indent=2))
    return folder
