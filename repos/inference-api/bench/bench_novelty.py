"""`make bench-novelty`: the time the novelty score adds to one prediction; one JSON line.

What a prediction pays for novelty is numpy's `knn_cosine` on one embedding (the
embedding itself is an output of the same onnxruntime run, which computes it anyway for
the logits). `--model-path DIR` times the real model's `novelty.npz`; by default a bank
of the default recipe's size (280 training photos x 2 views = 560 rows x 2,560
features, random unit rows; `--rows` for another size).
One thread, as in a busy server where onnxruntime holds the others.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from plantops_inference_api.novelty import NoveltyScorer, NoveltySpec, load_scorer
from plantops_inference_api.preprocessing import PreprocessingSpec


def synthetic_scorer(rows: int = 2240, size: int = 2560) -> NoveltyScorer:
    rng = np.random.default_rng(0)
    bank = rng.standard_normal((rows, size)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    spec = NoveltySpec(method="knn_cosine", params_file="x", threshold=0.3, false_alarm_rate=0.02)
    return NoveltyScorer(spec, np.zeros(size, np.float32), np.ascontiguousarray(bank.T), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path", type=Path)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=560, help="synthetic bank rows")
    args = parser.parse_args()
    if args.model_path:
        spec = PreprocessingSpec.read(args.model_path / "preprocessing.json")
        if spec.novelty is None:
            raise SystemExit(f"{args.model_path} has no novelty reference")
        scorer, source = load_scorer(args.model_path, spec.novelty), str(args.model_path)
    else:
        scorer, source = synthetic_scorer(args.rows), "synthetic bank"
    rng = np.random.default_rng(1)
    embedding = np.abs(rng.standard_normal((1, scorer.embedding_size))).astype(np.float32)
    samples = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        scorer.scores(embedding)
        samples.append(time.perf_counter() - started)
    samples.sort()
    result = {
        "source": source,
        "bank": list(scorer.bank_t.shape[::-1]),
        "repeats": args.repeats,
        "novelty_ms_p50": round(statistics.median(samples) * 1000, 3),
        "novelty_ms_p99": round(samples[int(0.99 * len(samples))] * 1000, 3),
        "target_ms": 1.0,
    }
    result["target_met"] = result["novelty_ms_p50"] <= 1.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
