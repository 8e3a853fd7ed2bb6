"""Single-image serving latency of recipes' exported graphs, relative to one another.

For each recipe file: the graph it exports (logits and embedding, the temperature
inside, an ensemble's heads included) with untrained heads (latency does not depend on
the weights), then `--repeats` single-image predictions as the API makes them: decode,
preprocess (`preprocess_batch`) and one onnxruntime run with one thread. Prints one JSON
line per recipe: p50 / p90 in ms and the ONNX file's size. Run it pinned to one core
(`taskset -c 1`) with the recipes back to back, so that the ratios compare like with like.

    .venv/bin/python benchmarks/serving_latency.py benchmarks/recipes/a.yaml b.yaml ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from plantops_ml_training.config import load_config
from plantops_ml_training.export import export_onnx, output_names
from plantops_ml_training.model import ServingModelWithEmbedding, build_backbone, build_classifier
from plantops_ml_training.novelty import EMBEDDING_NAME
from plantops_ml_training.preprocessing import preprocess_batch
from plantops_ml_training.train import serving_spec

LABELS = ["dandelion", "grass"]


def exported_graph(recipe: Path, folder: Path) -> tuple[Path, object]:
    config = load_config(recipe)
    backbone = build_backbone(config.backbone, config.image_size, config.pretrained)
    model = build_classifier(backbone, len(LABELS))
    if config.ensemble_heads > 1:
        model.use_ensemble([model.new_head() for _ in range(config.ensemble_heads)])
    spec = replace(serving_spec(config, backbone, LABELS), embedding_name=EMBEDDING_NAME)
    serving = ServingModelWithEmbedding(model, config.tta_flip, temperature=0.5)
    return export_onnx(serving, spec, folder / f"{recipe.stem}.onnx"), spec


def latency_ms(path: Path, spec, photos: list[Path], repeats: int) -> list[float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = output_names(spec)
    times = []
    for i in range(repeats + 10):  # the first 10 warm up
        started = time.perf_counter()
        batch = preprocess_batch([photos[i % len(photos)]], spec)
        session.run(names, {spec.input_name: batch})
        times.append((time.perf_counter() - started) * 1000)
    return times[10:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+", type=Path)
    parser.add_argument("--images", type=Path, required=True, help="<label>/*.jpg")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    photos = sorted(args.images.glob("*/*.jpg"))[:64]
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            path, spec = exported_graph(recipe, Path(tmp))
            times = latency_ms(path, spec, photos, args.repeats)
            line = {
                "recipe": recipe.name,
                "single_image_latency_p50_ms": round(statistics.median(times), 2),
                "p90_ms": round(float(np.percentile(times, 90)), 2),
                "onnx_mb": round(path.stat().st_size / 2**20, 1),
                "repeats": args.repeats,
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
