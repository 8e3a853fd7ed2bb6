"""Write a tiny real ONNX model + preprocessing.json (architecture.md format) to argv[1].

Run with the inference API's Python (it has onnx); the infra venv does not. The model
answers by the mean colour of the crop, with a small scale so confidences spread over
0.5-1.0 and the low-confidence share is neither 0 nor 1.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LABELS = ["dandelion", "grass"]


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # Red+green-ish yellow flowers vs green grass: channel 0 votes dandelion, 1 grass.
    weights = np.array([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "W", "B"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mean_colour",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(LABELS)])],
        [
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(np.zeros(len(LABELS), dtype=np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    spec = {
        "format_version": 1,
        "input_name": "image",
        "output_name": "logits",
        "labels": LABELS,
        "resize_shorter_side": 64,
        "resample": "bilinear",
        "crop_size": 56,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    }
    (folder / "preprocessing.json").write_text(json.dumps(spec, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
