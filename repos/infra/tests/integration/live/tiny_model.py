"""Write a tiny real ONNX model + preprocessing.json (architecture.md format) to argv[1].

Run with the inference API's Python (it has onnx); the infra venv does not. The model is
the one builder's (plantops_infra.testing) mean-colour model, with a small scale so
confidences spread over 0.5-1.0 and the low-confidence share is neither 0 nor 1.
"""

import sys
from pathlib import Path

from plantops_infra.testing import write_tiny_model

LABELS = ["dandelion", "grass"]
# Red+green-ish yellow flowers vs green grass: channel 0 votes dandelion, 1 grass.
WEIGHTS = [[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]]

if __name__ == "__main__":
    write_tiny_model(
        Path(sys.argv[1]), LABELS, weights=WEIGHTS, resize_shorter_side=64, crop_size=56
    )
