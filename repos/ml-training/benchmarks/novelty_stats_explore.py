"""Two more novelty ideas measured outside `make bench-novelty` (issue 17), kept with their
figures in docs/BENCHMARKS.md ("Novelty", "Also measured"), like `novelty_explore.py`:

1. Channel statistics across the body (the "style" of a photo): the mean and standard
   deviation of every channel of blocks 2, 4, 7, 10 and 14 and the final map, each layer
   standardised on the reference photos; kNN Euclidean distance per layer, and the sum of
   the layers' scores, each z-scored on the reference photos left out one at a time (a
   feature ensemble across depths, after Lee et al. 2018). The idea: the pooled final features
   put yellow and white flowers next to dandelions, but their colours, edges and petal
   textures differ in the earlier blocks.
2. A colour histogram of the serving crop (hue x saturation, 12 x 4 bins, plus 4 bins of
   brightness for the grey pixels; square-rooted), alone and summed with the shipped
   pooled-feature score: roses and tulips are red, pink or purple, which no dandelion or
   lawn photo is.

Same protocol as `novelty_explore.py`: the reference is the 400 training photos (serving
crop); reported are the AUROC of the field-check other plants against the field-check
dandelion + grass photos, and the leave-one-label-out AUROC on the 400, the train-only
criterion the shipped score was chosen by. The baseline of the run is the shipped
feature (the exported `embedding`: max and mean pool of the final map), kNN k = 5.

    cd repos/ml-training && OMP_NUM_THREADS=1 .venv/bin/python benchmarks/novelty_stats_explore.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from novelty_explore import SHARED, auroc, knn, lolo, unit
from PIL import Image

from plantops_ml_training.config import TrainConfig
from plantops_ml_training.model import build_backbone, build_classifier
from plantops_ml_training.preprocessing import load_rgb, resize_and_crop, to_model_input
from plantops_ml_training.train import serving_spec

BLOCKS = (2, 4, 7, 10, 14)
LAYERS = (*BLOCKS, "final")
HUE_BINS, SATURATION_BINS, GREY_BINS = 12, 4, 4


def channel_stats(fmap: torch.Tensor) -> np.ndarray:
    """[N, C, h, w] -> [N, 2C]: each channel's mean and standard deviation."""
    flat = fmap.flatten(2)
    return torch.cat([flat.mean(2), flat.std(2)], dim=1).numpy()


def colour_histogram(crop: Image.Image) -> np.ndarray:
    """Hue x saturation of the coloured pixels, brightness of the grey ones; sqrt of shares."""
    hsv = np.asarray(crop.convert("HSV"), dtype=np.float32) / 255.0
    hue, sat, val = hsv[..., 0].ravel(), hsv[..., 1].ravel(), hsv[..., 2].ravel()
    grey = sat < 0.15
    coloured, _, _ = np.histogram2d(
        hue[~grey], sat[~grey], bins=(HUE_BINS, SATURATION_BINS), range=((0, 1), (0.15, 1))
    )
    greys, _ = np.histogram(val[grey], bins=GREY_BINS, range=(0, 1))
    counts = np.concatenate([coloured.ravel(), greys]).astype(np.float32)
    return np.sqrt(counts / max(1.0, counts.sum()))


def extract(body, pool, captured, spec, paths: list[Path]) -> dict:
    out: dict = {layer: [] for layer in (*LAYERS, "shipped", "colour")}
    for start in range(0, len(paths), 16):
        crops = [resize_and_crop(load_rgb(p), spec) for p in paths[start : start + 16]]
        batch = torch.from_numpy(np.stack([to_model_input(c, spec) for c in crops]))
        with torch.inference_mode():
            final = body(batch)
            shipped = pool(final)  # the exported `embedding`: fastai's concat pool
        out["final"].append(channel_stats(final))
        out["shipped"].append(shipped.numpy())
        for block in BLOCKS:
            out[block].append(channel_stats(captured[block]))
        out["colour"] += [colour_histogram(c) for c in crops]
    return {k: np.concatenate(v) if k != "colour" else np.stack(v) for k, v in out.items()}


def knn_z(bank: np.ndarray, queries: np.ndarray, k: int = 5) -> np.ndarray:
    """Euclidean distance to the k-th nearest bank row, each dimension standardised on the
    bank. (Not the cosine: after centring, a photo near the bank's mean points nowhere in
    particular, and the first run of this script, with the cosine, scored the held-out
    photos of the fitted label as more novel than the other label's: LOLO AUROC < 0.5.)"""
    mean, std = bank.mean(0), bank.std(0) + 1e-6
    bank_z, queries_z = (bank - mean) / std, (queries - mean) / std
    squared = (queries_z**2).sum(1)[:, None] + (bank_z**2).sum(1)[None, :]
    distances = np.sqrt(np.maximum(squared - 2 * queries_z @ bank_z.T, 0))
    return np.sort(distances, axis=1)[:, k - 1]


def scaled_on_bank(score, bank: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """`score` as a z-value against the bank's own scores left out one at a time."""
    own = np.array([score(np.delete(bank, i, 0), bank[i : i + 1])[0] for i in range(len(bank))])
    return (score(bank, queries) - own.mean()) / (own.std() + 1e-9)


def summed(parts):
    """Several (feature, score) parts as one score: the sum of their z-values."""

    def score(bank: np.ndarray, queries: np.ndarray) -> np.ndarray:
        total, start = 0.0, 0
        for width, part in parts:
            cols = slice(start, start + width)
            total = total + scaled_on_bank(part, bank[:, cols], queries[:, cols])
            start += width
        return total

    return score


def report(name: str, score, feats: dict, key, labels: np.ndarray) -> None:
    train, field, other = (feats[n][key] for n in ("train", "field", "other"))
    field_auroc = auroc(score(train, other), score(train, field))
    print(f"{name}: field AUROC {field_auroc:.3f}, LOLO AUROC {lolo(score, train, labels):.3f}")


def main() -> None:
    torch.set_num_threads(1)
    config = TrainConfig(image_size=256, method="frozen_body")  # the default's crop
    backbone = build_backbone(config.backbone, config.image_size, True)
    spec = serving_spec(config, backbone, ["dandelion", "grass"])
    body = backbone.body.eval()
    pool = build_classifier(backbone, 2).head[:2].eval()
    captured: dict = {}
    for block in BLOCKS:
        body.net._blocks[block].register_forward_hook(
            lambda m, i, o, k=block: captured.__setitem__(k, o)
        )
    paths = {
        "train": sorted((SHARED / "datasets/greenr-airflow/data").glob("*/*.jpg")),
        "field": sorted((SHARED / "datasets/field-check/data").glob("*/*.jpg")),
        "other": sorted((SHARED / "datasets/field-check/other-plants").glob("*/*.jpg")),
    }
    feats = {name: extract(body, pool, captured, spec, ps) for name, ps in paths.items()}
    labels = np.array([p.parent.name for p in paths["train"]])

    def plain_knn(bank: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return knn(unit(bank), unit(queries))

    report("shipped feature, knn5 cosine (baseline)", plain_knn, feats, "shipped", labels)
    for layer in LAYERS:
        report(f"channel mean+std, layer {layer}, knn5 z-euclidean", knn_z, feats, layer, labels)
    for name, feats_of in {"all layers": LAYERS, "blocks 2-10": BLOCKS[:4]}.items():
        for split in feats.values():
            split[name] = np.concatenate([split[layer] for layer in feats_of], axis=1)
        widths = [feats["train"][layer].shape[1] for layer in feats_of]
        score = summed([(w, knn_z) for w in widths])
        report(f"channel stats, {name}, sum of z-scored knn5", score, feats, name, labels)
    report("colour histogram, knn5 cosine", plain_knn, feats, "colour", labels)
    for split in feats.values():
        split["shipped+colour"] = np.concatenate([split["shipped"], split["colour"]], axis=1)
    widths = [feats["train"]["shipped"].shape[1], feats["train"]["colour"].shape[1]]
    score = summed([(widths[0], plain_knn), (widths[1], plain_knn)])
    name = "shipped + colour histogram, sum of z-scored knn5"
    report(name, score, feats, "shipped+colour", labels)


if __name__ == "__main__":
    main()
