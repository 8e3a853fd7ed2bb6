"""The one builder of tiny real ONNX models + preprocessing.json for every suite's tests.

Exposed through `plantops_infra.testing` (`write_tiny_model`, `tiny_model_spec`). The
model follows the model artifact contract (docs/architecture.md, "Model artifacts"):
input `image` float32 [N,3,H,W], output `logits` [N,len(labels)], and a
`preprocessing.json` conforming to ml-training's contracts/preprocessing.schema.json (the
umbrella's tests/test_contracts.py checks it). Kinds:

- `mean_colour`: logits = mean colour of the crop @ `weights` ([3, len(labels)]; by
  default channel c votes for label c % len(labels), times `scale`): a red image is "red".
- `spatial`: every input value times a fixed random weight (`seed`): any preprocessing
  difference (resize, crop offset, rounding) moves the probabilities (train/serve skew).
- `cnn`: four stride-2 3x3 convolutions (32-64-128-256), a pool and a linear head on a
  fixed 224x224 input: the compute of a small real network, for benchmarks.

`novelty=True` (mean_colour only): a second output `embedding` (the mean colour) and a
`novelty.npz` + `novelty` block as ml-training exports them (write_novelty).
numpy and onnx are imported when a model is written: the infra environment itself has
neither; the components' test environments that write models have both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OPSET = 17


def tiny_model_spec(
    labels: Sequence[str],
    resize_shorter_side: int = 40,
    crop_size: int = 32,
    resample: str = "bilinear",
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
) -> dict[str, Any]:
    """The `preprocessing.json` of a tiny model (format version 1)."""
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


def write_tiny_model(
    folder: Path,
    labels: Sequence[str] = ("dandelion", "grass"),
    kind: str = "mean_colour",
    *,
    weights: Sequence[Sequence[float]] | None = None,
    scale: float = 4.0,
    seed: int = 0,
    novelty: bool = False,
    **spec_overrides: Any,
) -> Path:
    """Write `model.onnx` + `preprocessing.json` into `folder` (created) and return it."""
    import onnx
    from onnx import helper

    if kind == "cnn":
        spec_overrides = {"resize_shorter_side": 256, "crop_size": 224, **spec_overrides}
    spec = tiny_model_spec(labels, **spec_overrides)
    if novelty and kind != "mean_colour":
        raise ValueError("novelty=True needs kind='mean_colour'")
    folder.mkdir(parents=True, exist_ok=True)
    if novelty:
        write_novelty(folder, spec)
    if kind == "mean_colour":
        graph = _mean_colour(len(labels), weights, scale, embedding=novelty)
    elif kind == "spatial":
        graph = _spatial(len(labels), spec["crop_size"], seed)
    elif kind == "cnn":
        graph = _cnn(len(labels), spec["crop_size"], seed)
    else:
        raise ValueError(f"unknown kind {kind!r}: mean_colour, spatial or cnn")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime the components pin
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "preprocessing.json").write_text(json.dumps(spec, indent=2))
    return folder


def write_novelty(folder: Path, spec: dict[str, Any], threshold: float = 0.5) -> None:
    """A novelty reference for a mean-colour model: the training "photos" are the pure
    colours of its labels (normalised pixels: +1 in the label's channel, -1 elsewhere),
    so a pure red image scores 0 and a grey one 1 (cosine 0 after centring)."""
    import numpy as np

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


def _io(n_labels: int, height: int | str = "H", width: int | str = "W") -> tuple[Any, Any]:
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, height, width])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_labels])
    return image, logits


def _head(nodes: list, inits: list, features: str, weights: Any, n_labels: int) -> None:
    import numpy as np
    from onnx import helper, numpy_helper

    inits += [
        numpy_helper.from_array(np.asarray(weights, dtype=np.float32), "W"),
        numpy_helper.from_array(np.zeros(n_labels, dtype=np.float32), "B"),
    ]
    nodes.append(helper.make_node("Gemm", [features, "W", "B"], ["logits"]))


def _mean_colour(
    n_labels: int,
    weights: Sequence[Sequence[float]] | None,
    scale: float,
    embedding: bool = False,
) -> Any:
    import numpy as np
    from onnx import helper

    if weights is None:
        matrix = np.zeros((3, n_labels), dtype=np.float32)
        for channel in range(3):
            matrix[channel, channel % n_labels] = scale
    else:
        matrix = np.asarray(weights, dtype=np.float32)
        if matrix.shape != (3, n_labels):
            raise ValueError(f"weights must be 3 x {n_labels}, got {matrix.shape}")
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
    ]
    inits: list = []
    _head(nodes, inits, "features", matrix, n_labels)
    image, logits = _io(n_labels)
    outputs = [logits]
    if embedding:  # the pooled features, like the real model's second output
        from onnx import TensorProto

        nodes.append(helper.make_node("Identity", ["features"], ["embedding"]))
        outputs.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3]))
    return helper.make_graph(nodes, "mean_colour", [image], outputs, inits)


def _spatial(n_labels: int, crop: int, seed: int) -> Any:
    import numpy as np
    from onnx import helper

    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((3 * crop * crop, n_labels)) * 0.02
    nodes = [helper.make_node("Flatten", ["image"], ["features"], axis=1)]
    inits: list = []
    _head(nodes, inits, "features", weights, n_labels)
    image, logits = _io(n_labels, crop, crop)
    return helper.make_graph(nodes, "spatial", [image], [logits], inits)


def _cnn(n_labels: int, crop: int, seed: int) -> Any:
    import numpy as np
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, previous, channels = [], [], "image", 3
    for i, out in enumerate((32, 64, 128, 256)):
        kernel = rng.standard_normal((out, channels, 3, 3)) * np.sqrt(2 / (channels * 9))
        inits += [
            numpy_helper.from_array(kernel.astype(np.float32), f"w{i}"),
            numpy_helper.from_array(np.zeros(out, np.float32), f"b{i}"),
        ]
        nodes += [
            helper.make_node(
                "Conv", [previous, f"w{i}", f"b{i}"], [f"c{i}"], strides=[2, 2], pads=[1, 1, 1, 1]
            ),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        previous, channels = f"r{i}", out
    nodes += [
        helper.make_node("GlobalAveragePool", [previous], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
    ]
    _head(nodes, inits, "features", rng.standard_normal((256, n_labels)) * 0.05, n_labels)
    image, logits = _io(n_labels, crop, crop)
    return helper.make_graph(nodes, "synthetic_cnn", [image], [logits], inits)
