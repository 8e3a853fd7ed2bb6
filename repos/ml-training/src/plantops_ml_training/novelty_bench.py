"""`make bench-novelty`: every novelty method tried, measured the same way (issue 17).

Embeddings (the pooled features of the frozen body, what the exported model's
`embedding` output gives) are extracted once per photo and cached under
`.cache/novelty-bench/` (git-ignored): the 400 photos' training views, the field-check
photos (dandelion and grass, and the other plants), generated non-plant images. Then, for
each fold of the same 5-fold split as `make bench-train`, the default recipe's head is
trained on the fold's training photos, and each method is fitted on the training photos
only. Its threshold is chosen, for the target false-alarm rate, on out-of-fold scores of
the training photos (5 inner folds) and the validation photos' scores; nothing else is
chosen. Reported per method (mean over the folds):

- `lolo_auroc`: leave one label out on the training part (fit on one label's training
  photos, the other label's photos are the novel ones): the train/val criterion the
  default method is chosen by. n/a for scores that need the trained head.
- `val_false_alarm`, `test_false_alarm`: in-distribution photos flagged (validation;
  the fold's held-out test photos).
- `field_auroc`: field-check other plants against field-check dandelion + grass;
  `other_flagged`, `field_flagged`: the share of each flagged at the threshold;
  `other_flagged_<kind>`: per folder of other plants (daisy, rose, ...).
- `generated_flagged`: generated non-plant images flagged (per family and overall).

Outlier exposure (the `outlier_exposure_*` rows) learns "novel" from images that are no
evaluation set: the generated `gradients` family, and, in the `recoloured` rows, each
fold's own training photos with their yellow flower heads recoloured (`synthetic.py`).

Nothing is tuned on the field check or the generated images: they are only reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from plantops_ml_training.config import TrainConfig
from plantops_ml_training.dataset import folder_fold
from plantops_ml_training.field_check import FieldCheck
from plantops_ml_training.label_review import apply_label_review
from plantops_ml_training.model import build_backbone, build_classifier
from plantops_ml_training.novelty import KnnCosine, auroc, choose_threshold
from plantops_ml_training.pipeline import evaluate_and_export, training_items
from plantops_ml_training.preprocessing import load_rgb, resize_and_crop, to_model_input
from plantops_ml_training.synthetic import (
    EVAL_FAMILIES,
    OUTLIER_EXPOSURE_FAMILIES,
    RECOLOURS,
    generated_images,
    recoloured_flowers,
    yellow_mask,
)
from plantops_ml_training.train import FeatureCache, image_views, photo_seed, serving_spec, train

log = logging.getLogger(__name__)
GENERATED_PER_FAMILY = 20
# Query crops per photo (`--query-crops`): 5 (serving + 4 corners) measures the
# multi-crop method too, at five times the evaluation sets' extraction time; 1 skips it.
QUERY_CROPS = 1
INNER_FOLDS = 5
# A training photo is recoloured for outlier exposure only if this share of its serving
# crop is flower yellow: recolouring a photo with none gives back the photo itself, a
# familiar image labelled novel.
MIN_YELLOW_SHARE = 0.02
# Bumped when the cached arrays change, so an older cache file is not read.
EMBEDDINGS_VERSION = 2

# ------------------------------------------------------------------ embeddings


def five_crops(image: Image.Image, spec) -> list[Image.Image]:
    """The serving crop and the four corner crops of the same resized image."""
    resized_crop = resize_and_crop(image, spec)
    scale = spec.resize_shorter_side / min(image.size)
    resized = image.resize(
        (round(image.size[0] * scale), round(image.size[1] * scale)), Image.Resampling.BILINEAR
    )
    c, (w, h) = spec.crop_size, resized.size
    corners = [(0, 0), (w - c, 0), (0, h - c), (w - c, h - c)]
    return [resized_crop, *(resized.crop((x, y, x + c, y + c)) for x, y in corners)]


class Embedder:
    """The frozen body + concat pool of the recipe: PIL views -> `[V, D]` float32."""

    def __init__(self, config: TrainConfig, labels: list[str]) -> None:
        backbone = build_backbone(config.backbone, config.image_size, config.pretrained)
        self.spec = serving_spec(config, backbone, labels)
        classifier = build_classifier(backbone, len(labels)).eval()
        self.body, self.pool = classifier.body, classifier.head[:2]

    def __call__(self, views: list[Image.Image]) -> np.ndarray:
        batch = torch.from_numpy(np.stack([to_model_input(v, self.spec) for v in views]))
        with torch.inference_mode():
            return self.pool(self.body(batch)).numpy()


@dataclass
class Embeddings:
    train_views: dict[str, np.ndarray]  # photo path -> [8, D] (serving crop first)
    field: np.ndarray  # [n, 5, D] field-check dandelion + grass, five crops
    other: np.ndarray  # [n, 5, D] field-check other plants
    other_kinds: np.ndarray  # [n] each other plant's folder name (daisy, rose, ...)
    generated: dict[str, np.ndarray]  # family -> [n, 5, D]
    outlier_exposure: np.ndarray  # [n, D] the `gradients` family (never evaluated on)
    recoloured: dict[str, np.ndarray]  # photo path -> [len(RECOLOURS) or 0, D]


def _cache_key(config: TrainConfig, paths: list[Path], query_crops: int) -> str:
    # The novelty fields do not change the embeddings: they are left out of the key.
    params = {k: v for k, v in config.flat_params().items() if not k.startswith("novelty_")}
    text = json.dumps(
        [params, [str(p) for p in paths], GENERATED_PER_FAMILY, query_crops, EMBEDDINGS_VERSION]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def extract_embeddings(
    images: Path,
    field_dir: Path,
    other_dir: Path,
    config: TrainConfig,
    cache_dir: Path,
    query_crops: int = QUERY_CROPS,
) -> Embeddings:
    labels = sorted(p.name for p in images.iterdir() if p.is_dir())
    photos = sorted(images.glob("*/*.jpg"))
    field = sorted(field_dir.glob("*/*.jpg"))
    other = sorted(other_dir.glob("*/*.jpg"))
    path = cache_dir / f"embeddings-{_cache_key(config, photos + field + other, query_crops)}.npz"
    if path.is_file():
        with np.load(path) as data:
            return Embeddings(
                {str(p): data[f"train/{i}"] for i, p in enumerate(photos)},
                data["field"],
                data["other"],
                np.array([p.parent.name for p in other]),
                {f: data[f"generated/{f}"] for f in EVAL_FAMILIES},
                data["outlier_exposure"],
                {str(p): data[f"recoloured/{i}"] for i, p in enumerate(photos)},
            )
    embed = Embedder(config, labels)
    spec = embed.spec
    arrays: dict[str, np.ndarray] = {}
    for i, photo in enumerate(photos):
        from plantops_ml_training.train import Item

        item = Item(photo, photo.parent.name, False)
        views = image_views(load_rgb(photo), spec, config, photo_seed(item, config))
        arrays[f"train/{i}"] = embed(views)
        # views[0] is the serving crop.
        arrays[f"recoloured/{i}"] = recoloured_embeddings(
            embed, views[0], arrays[f"train/{i}"].shape[1]
        )
        if i % 50 == 0:
            log.info("embedded %d/%d training photos", i, len(photos))

    def crops(image: Image.Image) -> np.ndarray:
        return embed(five_crops(image, spec)[:query_crops])

    arrays["field"] = np.stack([crops(load_rgb(p)) for p in field])
    log.info("embedded the field check")
    arrays["other"] = np.stack([crops(load_rgb(p)) for p in other])
    for family in EVAL_FAMILIES:
        generated = generated_images(family, GENERATED_PER_FAMILY)
        arrays[f"generated/{family}"] = np.stack([crops(g) for g in generated])
    exposure = generated_images(OUTLIER_EXPOSURE_FAMILIES[0], 2 * GENERATED_PER_FAMILY)
    arrays["outlier_exposure"] = np.concatenate([embed([g]) for g in exposure])
    cache_dir.mkdir(parents=True, exist_ok=True)
    # numpy's stub takes the first keyword of **arrays for allow_pickle.
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return extract_embeddings(images, field_dir, other_dir, config, cache_dir, query_crops)


def recoloured_embeddings(embed: Embedder, crop: Image.Image, width: int) -> np.ndarray:
    """`[len(RECOLOURS), width]`: the serving crop in each colour; `[0, width]` for a photo
    with too little yellow to recolour."""
    if yellow_mask(crop).mean() < MIN_YELLOW_SHARE:
        return np.zeros((0, width), np.float32)
    return embed([recoloured_flowers(crop, colour) for colour in RECOLOURS])


# ------------------------------------------------------------------ methods


@dataclass
class FitData:
    views: list[np.ndarray]  # per training photo, [V, D] (serving crop first)
    labels: np.ndarray  # per training photo, label index
    head: Callable[[np.ndarray], np.ndarray] | None  # embeddings -> logits (trained head)
    hidden: Callable[[np.ndarray], np.ndarray] | None  # embeddings -> head's hidden layer
    outliers: np.ndarray | None = None  # outlier-exposure embeddings (not an evaluation set)
    recoloured: list[np.ndarray] | None = None  # per training photo, its recoloured crops

    def subset(self, keep: list[int] | np.ndarray) -> FitData:
        """The same data for the photos at `keep` only."""
        return replace(
            self,
            views=[self.views[i] for i in keep],
            labels=self.labels[keep],
            recoloured=None if self.recoloured is None else [self.recoloured[i] for i in keep],
        )


Score = Callable[[np.ndarray], np.ndarray]  # [N, D] -> [N]


ALL = slice(None)


def _knn(k: int, views: bool, centred: bool = False, part: slice = ALL):
    def fit(data: FitData) -> Score:
        rows = [v[:, part] for v in data.views] if views else [v[:1, part] for v in data.views]
        score = KnnCosine.fit(np.concatenate(rows), k, centred)
        return lambda x: score.scores(x[:, part])

    return fit


def _two_views(views: list[np.ndarray]) -> np.ndarray:
    """The serving crop and its mirror of each photo: what the PCA and the logistic
    regression are fitted on (all 8 views would cost 4x the time for the same subspace)."""
    return np.concatenate([v[:2] for v in views])


def _pca(views: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = views.mean(axis=0)
    _, singular, vt = np.linalg.svd(views - mean, full_matrices=False)
    variance = singular**2 / (len(views) - 1)
    return mean, vt[:components], variance[:components]


def _pca_residual(components: int):
    def fit(data: FitData) -> Score:
        mean, basis, _ = _pca(_two_views(data.views), components)

        def score(x: np.ndarray) -> np.ndarray:
            centred = x - mean
            return np.linalg.norm(centred - (centred @ basis.T) @ basis, axis=1)

        return score

    return fit


def _mahalanobis(components: int, per_class: bool):
    def fit(data: FitData) -> Score:
        groups = (
            [
                [v for v, y in zip(data.views, data.labels, strict=True) if y == c]
                for c in set(data.labels)
            ]
            if per_class
            else [data.views]
        )
        fitted = []
        for group in groups:
            mean, basis, variance = _pca(_two_views(group), components)
            fitted.append((mean, basis, variance * 1.0 + variance.mean() * 0.1))  # shrinkage

        def score(x: np.ndarray) -> np.ndarray:
            return np.min([(((x - m) @ b.T) ** 2 / v).sum(axis=1) for m, b, v in fitted], axis=0)

        return score

    return fit


def _from_head(kind: str):
    def fit(data: FitData) -> Score:
        head = data.head
        assert head is not None

        def score(x: np.ndarray) -> np.ndarray:
            logits = head(x)
            if kind == "energy":  # -logsumexp: low energy = familiar
                top = logits.max(axis=1)
                return -(top + np.log(np.exp(logits - top[:, None]).sum(axis=1)))
            if kind == "max_logit":
                return -logits.max(axis=1)
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            return 1 - (probs / probs.sum(axis=1, keepdims=True)).max(axis=1)

        return score

    return fit


def _knn_hidden(k: int):
    def fit(data: FitData) -> Score:
        hidden = data.hidden
        assert hidden is not None
        score = KnnCosine.fit(np.concatenate([hidden(v) for v in data.views]), k)
        return lambda x: score.scores(hidden(x))

    return fit


def _combined(*fitters):
    """Sum of each score's z-value against its own training-views distribution."""

    def fit(data: FitData) -> Score:
        parts = []
        # Each part's scale from photos it was not fitted on (even photos fit, odd ones
        # scored): scored on its own training photos a kNN distance is ~0 for all.
        even = data.subset(np.arange(0, len(data.views), 2))
        odd = np.stack([v[0] for v in data.views[1::2]])
        for fitter in fitters:
            reference = fitter(even)(odd)
            parts.append((fitter(data), reference.mean(), reference.std() + 1e-9))
        return lambda x: np.sum([(s(x) - m) / sd for s, m, sd in parts], axis=0)

    return fit


def _outlier_exposure(recoloured: bool):
    """Logistic regression: training views (familiar) against the generated `gradients`
    images (novel), and with `recoloured` the recoloured training photos too, on the
    standardised embedding; the score is its log-odds."""

    def fit(data: FitData) -> Score:
        assert data.outliers is not None
        novel = [data.outliers]
        if recoloured:
            assert data.recoloured is not None
            novel += data.recoloured
        return _logistic_score(_two_views(data.views), np.concatenate(novel))

    return fit


def _logistic_score(familiar: np.ndarray, novel: np.ndarray) -> Score:
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([familiar, novel])
    y = np.r_[np.zeros(len(familiar)), np.ones(len(novel))]
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=0.1, class_weight="balanced", max_iter=500)
    model.fit((x - mean) / std, y)
    return lambda q: model.decision_function((q - mean) / std)


# name -> (fitter, needs the trained head or outlier data, query crops)
METHODS: dict[str, tuple[Callable[[FitData], Score], bool, int]] = {
    "knn1_cosine_views": (_knn(1, views=True), False, 1),
    "knn5_cosine_views": (_knn(5, views=True), False, 1),
    "knn1_cosine_serving_crop_only": (_knn(1, views=False), False, 1),
    "knn1_cosine_views_avgpool_only": (_knn(1, views=True, part=slice(1280, None)), False, 1),
    "knn1_cosine_views_5crops_mean": (_knn(1, views=True), False, 5),
    "knn1_cosine_views_centred": (_knn(1, views=True, centred=True), False, 1),
    "knn5_cosine_views_centred": (_knn(5, views=True, centred=True), False, 1),
    "knn1_cosine_serving_crop_only_centred": (_knn(1, views=False, centred=True), False, 1),
    "knn1_cosine_views_avgpool_only_centred": (
        _knn(1, views=True, centred=True, part=slice(1280, None)),
        False,
        1,
    ),
    "pca64_residual": (_pca_residual(64), False, 1),
    "mahalanobis_pca64": (_mahalanobis(64, per_class=False), False, 1),
    "class_mahalanobis_pca64": (_mahalanobis(64, per_class=True), False, 1),
    "energy": (_from_head("energy"), True, 1),
    "max_logit": (_from_head("max_logit"), True, 1),
    "max_softmax": (_from_head("msp"), True, 1),
    "knn1_cosine_head_hidden": (_knn_hidden(1), True, 1),
    "knn1_views+pca64_residual": (_combined(_knn(1, True), _pca_residual(64)), False, 1),
    "knn1_views+energy": (_combined(_knn(1, True), _from_head("energy")), True, 1),
    "knn1_views+max_softmax": (_combined(_knn(1, True), _from_head("msp")), True, 1),
    "outlier_exposure_gradients": (_outlier_exposure(recoloured=False), False, 1),
    "knn1_views+outlier_exposure": (
        _combined(_knn(1, True), _outlier_exposure(recoloured=False)),
        False,
        1,
    ),
    "outlier_exposure_recoloured": (_outlier_exposure(recoloured=True), False, 1),
    "knn1_views+outlier_exposure_recoloured": (
        _combined(_knn(1, True), _outlier_exposure(recoloured=True)),
        False,
        1,
    ),
}


# ------------------------------------------------------------------ evaluation


def query_scores(score: Score, crops: np.ndarray, n_crops: int) -> np.ndarray:
    """Scores of `[n, 5, D]` embeddings: the serving crop, or the mean over the crops."""
    if n_crops == 1:
        return score(crops[:, 0])
    n, _, d = crops.shape
    return score(crops[:, :n_crops].reshape(n * n_crops, d)).reshape(n, n_crops).mean(axis=1)


def out_of_fold_scores(fitter, data: FitData, n_crops: int) -> np.ndarray:
    """Each training photo scored by the method fitted without it (INNER_FOLDS folds)."""
    n = len(data.views)
    order = np.random.default_rng(0).permutation(n)
    scores = np.zeros(n)
    for k in range(INNER_FOLDS):
        held = order[k::INNER_FOLDS]
        keep = np.setdiff1d(np.arange(n), held)
        score = fitter(data.subset(keep))
        served = np.stack([data.views[i][: max(n_crops, 1)] for i in held])
        scores[held] = query_scores(score, served, 1)
    return scores


def lolo_auroc(fitter, data: FitData, val_views: np.ndarray, val_labels: np.ndarray) -> float:
    """Leave one label out: fit on one label's training photos; the other label's training
    and validation photos are novel, the left label's validation photos familiar."""
    values = []
    for label in np.unique(data.labels):
        mine = data.labels == label
        score = fitter(replace(data.subset(np.flatnonzero(mine)), head=None, hidden=None))
        others = np.stack([v[0] for v, m in zip(data.views, mine, strict=True) if not m])
        novel = np.concatenate([score(others), score(val_views[val_labels != label])])
        values.append(auroc(novel, score(val_views[val_labels == label])))
    return float(np.mean(values))


def run_fold(
    images: Path, config: TrainConfig, fold: int, folds: int, emb: Embeddings, target: float
) -> dict[str, dict[str, float]]:
    dataset, paths = folder_fold(images, fold, folds)
    dataset, _ = apply_label_review(dataset, config.label_review)
    labels = dataset.labels
    items = training_items(dataset, paths)
    cache: FeatureCache = {}
    for item in items:  # the trained head sees exactly the cached views
        views = torch.from_numpy(emb.train_views[str(item.path)])
        cache[(str(item.path), True)] = views
        cache[(str(item.path), False)] = views[:1]
    trained = train(items, labels, config, None, cache)
    head_layers = trained.learner.model.head[2:].eval()

    def head(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return head_layers(torch.from_numpy(np.asarray(x, np.float32))).numpy() / (
                trained.temperature
            )

    def hidden(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return head_layers[:4](torch.from_numpy(np.asarray(x, np.float32))).numpy()

    train_items = [i for i in items if not i.is_valid]
    val_items = [i for i in items if i.is_valid]
    data = FitData(
        [emb.train_views[str(i.path)] for i in train_items],
        np.array([labels.index(i.label) for i in train_items]),
        head,
        hidden,
        emb.outlier_exposure,
        [emb.recoloured[str(i.path)] for i in train_items],
    )
    val = np.stack([emb.train_views[str(i.path)][0] for i in val_items])
    val_labels = np.array([labels.index(i.label) for i in val_items])
    test = np.stack([emb.train_views[str(paths[e.sha256])][0] for e in dataset.split("test")])
    results = {}
    for name, (fitter, needs_head, n_crops) in METHODS.items():
        if n_crops > emb.field.shape[1]:
            continue  # embeddings extracted without these crops (--query-crops)
        score = fitter(data)
        val_scores = score(val)
        threshold = choose_threshold(
            np.concatenate([out_of_fold_scores(fitter, data, n_crops), val_scores]), target
        )
        field = query_scores(score, emb.field, n_crops)
        other = query_scores(score, emb.other, n_crops)
        generated = {f: query_scores(score, g, n_crops) for f, g in emb.generated.items()}
        all_generated = np.concatenate(list(generated.values()))
        results[name] = {
            "lolo_auroc": float("nan") if needs_head else lolo_auroc(fitter, data, val, val_labels),
            "val_false_alarm": float(np.mean(val_scores > threshold)),
            "test_false_alarm": float(np.mean(score(test) > threshold)),
            "field_auroc": auroc(other, field),
            "other_flagged": float(np.mean(other > threshold)),
            "field_flagged": float(np.mean(field > threshold)),
            **{
                f"other_flagged_{kind}": float(np.mean(other[emb.other_kinds == kind] > threshold))
                for kind in np.unique(emb.other_kinds)
            },
            "generated_flagged": float(np.mean(all_generated > threshold)),
            "generated_auroc": auroc(all_generated, field),
            **{
                f"generated_flagged_{f}": float(np.mean(g > threshold))
                for f, g in generated.items()
            },
        }
        log.info("fold %d %s: %s", fold, name, {k: round(v, 3) for k, v in results[name].items()})
    return results


def summarise(per_fold: list[dict[str, dict[str, float]]], target: float) -> dict:
    methods: dict[str, dict[str, Any]] = {}
    for name in per_fold[0]:
        figures: dict[str, Any] = {}
        for key in per_fold[0][name]:
            values = [fold[name][key] for fold in per_fold]
            figures[key] = (
                None
                if any(np.isnan(values))
                else [round(statistics.fmean(values), 3), round(statistics.pstdev(values), 3)]
            )
        methods[name] = figures
    eligible = {n: m for n, m in methods.items() if m["lolo_auroc"] is not None}
    chosen = max(eligible, key=lambda n: eligible[n]["lolo_auroc"][0])
    c = methods[chosen]
    return {
        "folds": len(per_fold),
        "target_false_alarm_rate": target,
        "generated_per_family": GENERATED_PER_FAMILY,
        "chosen_by_lolo_auroc": chosen,
        "targets_met_by_chosen": {
            "generated_flagged>=0.95": c["generated_flagged"][0] >= 0.95,
            "field_auroc>=0.90": c["field_auroc"][0] >= 0.90,
            "other_flagged>=0.60": c["other_flagged"][0] >= 0.60,
            "field_flagged<=0.05": c["field_flagged"][0] <= 0.05,
        },
        "methods": methods,
    }


def run_novelty_bench(
    images: Path,
    field_dir: Path,
    other_dir: Path,
    config: TrainConfig,
    cache_dir: Path,
    folds: int = 5,
    target: float = 0.02,
    query_crops: int = QUERY_CROPS,
) -> dict:
    emb = extract_embeddings(images, field_dir, other_dir, config, cache_dir, query_crops)
    per_fold = [run_fold(images, config, fold, folds, emb, target) for fold in range(folds)]
    recoloured = sum(len(crops) > 0 for crops in emb.recoloured.values())
    return {**summarise(per_fold, target), "recoloured_training_photos": recoloured}


def export_fold_model(
    images: Path, config: TrainConfig, out: Path, field: FieldCheck | None, other: list[Path]
) -> dict[str, float]:
    """Train fold 0 as a run would and write its artifact layout under `out` (model/,
    plots/, metrics/) with the pipeline's own export: a real model folder to serve
    (`PLANTOPS_MODEL_PATH=out/model`) and time, without S3 or MLflow."""
    dataset, paths = folder_fold(images, 0, 5)
    dataset, _ = apply_label_review(dataset, config.label_review)
    items = training_items(dataset, paths)
    views: FeatureCache = {}
    trained = train(items, dataset.labels, config, None, views)
    evaluation = evaluate_and_export(
        trained,
        dataset.split("test"),
        paths,
        out,
        field,
        items=items,
        views=views,
        other_plants=other,
    )
    return evaluation.metrics
