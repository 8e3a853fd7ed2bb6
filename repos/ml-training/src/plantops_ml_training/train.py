"""Fine-tuning with fastai: data loaders, the Learner and the schedule.

Training images get random crops and flips; the validation images go through the
serving preprocessing (`preprocessing.resize_and_crop`), so validation accuracy
measures what the API will see.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)
import numpy as np
import torch
from fastai.callback.core import Callback, TrainEvalCallback
from fastai.callback.progress import ProgressCallback
from fastai.data.block import CategoryBlock, DataBlock, TransformBlock
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.data.transforms import FuncSplitter, IntToFloatTensor, Normalize
from fastai.learner import Learner, Recorder
from fastai.losses import CrossEntropyLossFlat, LabelSmoothingCrossEntropyFlat
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from fastai.vision.augment import RandomResizedCrop, aug_transforms
from fastai.vision.core import PILImage
from fasttransform import Transform
from PIL import Image, ImageOps
from torch import nn

from plantops_ml_training.calibration import fit_temperature
from plantops_ml_training.config import Augmentation, TrainConfig
from plantops_ml_training.model import (
    BackboneSpec,
    Classifier,
    ServingModel,
    ServingModelWithEmbedding,
    build_backbone,
    build_classifier,
    splitter,
    tail_splitter,
)
from plantops_ml_training.preprocessing import (
    PreprocessingSpec,
    load_rgb,
    preprocess_batch,
    resize_and_crop,
    to_model_input,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One training or validation image (a class, not a tuple: fastai maps over tuples)."""

    path: Path
    label: str
    is_valid: bool


# The return value is ignored (mlflow.log_metrics returns a RunOperations or None).
MetricSink = Callable[[dict[str, float], int], object]
# Pooled body features of one photo's views, by (photo, training views or not). Valid
# for one recipe only (backbone, size, views, augmentation, seed): the benchmark keeps
# one per recipe, so each photo goes through the frozen body once, not once per fold.
FeatureCache = dict[tuple[str, bool], torch.Tensor]


def open_image(path: Path) -> PILImage:
    """Open a training image the way serving does: EXIF orientation, RGB."""
    return PILImage.create(load_rgb(path))


class ServingResizeCrop(Transform):
    """Validation item transform: exactly the serving resize and centre crop."""

    split_idx = 1
    order = 1

    def __init__(self, spec: PreprocessingSpec) -> None:
        super().__init__()
        self.spec = spec

    def encodes(self, image: PILImage) -> PILImage:
        return PILImage(resize_and_crop(image, self.spec))


class EpochMetrics(Callback):
    """Send each epoch's losses and accuracies to a sink (MLflow) and the log."""

    order = Recorder.order + 1

    def __init__(self, sink: MetricSink | None) -> None:
        self.sink = sink
        self.step = 0

    def after_epoch(self) -> None:
        names = self.recorder.metric_names[1:-1]  # without "epoch" and "time"
        values = dict(zip(names, map(float, self.recorder.values[-1]), strict=True))
        log.info("epoch %d: %s", self.step, {k: round(v, 4) for k, v in values.items()})
        if self.sink:
            self.sink(values, self.step)
        self.step += 1


def serving_spec(config: TrainConfig, backbone: BackboneSpec, labels: list[str]):
    return PreprocessingSpec(
        labels=list(labels),
        resize_shorter_side=config.resize_shorter_side,
        crop_size=config.image_size,
        mean=list(backbone.mean),
        std=list(backbone.std),
    )


def build_dataloaders(
    items: list[Item], labels: list[str], config: TrainConfig, spec: PreprocessingSpec
) -> DataLoaders:
    aug = config.augmentation
    train_crop = RandomResizedCrop(config.image_size, min_scale=aug.min_scale if aug.enabled else 1)
    train_crop.split_idx = 0  # training only; validation uses ServingResizeCrop
    batch_tfms = []
    if aug.enabled:
        batch_tfms = aug_transforms(
            do_flip=aug.flip,
            max_rotate=aug.max_rotate,
            max_zoom=aug.max_zoom,
            max_lighting=aug.max_lighting,
        )
    block = DataBlock(
        blocks=(
            TransformBlock(type_tfms=open_image, batch_tfms=IntToFloatTensor),
            CategoryBlock(vocab=labels),
        ),
        get_x=attrgetter("path"),
        get_y=attrgetter("label"),
        splitter=FuncSplitter(attrgetter("is_valid")),
        item_tfms=[train_crop, ServingResizeCrop(spec)],
        batch_tfms=[*batch_tfms, Normalize.from_stats(spec.mean, spec.std)],
    )
    return block.dataloaders(items, bs=config.batch_size, num_workers=0, device="cpu")


@dataclass
class TrainedModel:
    learner: Learner
    spec: PreprocessingSpec
    config: TrainConfig
    seconds: float
    # Fitted on the validation split after training (1.0: not calibrated).
    temperature: float = 1.0

    def serving_model(self) -> ServingModel:
        return ServingModel(self.learner.model, self.config.tta_flip, self.temperature).eval()

    def serving_model_with_embedding(self) -> ServingModelWithEmbedding:
        """What is exported: the serving model's logits and the embedding (model.py)."""
        model = self.learner.model
        return ServingModelWithEmbedding(model, self.config.tta_flip, self.temperature).eval()

    def predict_probs(self, paths: list[Path], batch_size: int = 32) -> np.ndarray:
        """Class probabilities with the serving preprocessing (TTA and temperature, as served)."""
        logits = predict_logits(self.serving_model(), paths, self.spec, batch_size)
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    def calibrate(self, valid: list[Item]) -> float:
        """Fit the temperature on the validation items (serving preprocessing, as served)."""
        self.temperature = 1.0
        logits = predict_logits(self.serving_model(), [i.path for i in valid], self.spec)
        targets = np.array([self.spec.labels.index(i.label) for i in valid])
        self.temperature = fit_temperature(logits, targets)
        log.info("temperature %.3f fitted on %d validation images", self.temperature, len(valid))
        return self.temperature


def predict_logits(
    model: torch.nn.Module, paths: list[Path], spec: PreprocessingSpec, batch_size: int = 32
) -> np.ndarray:
    outputs = [np.zeros((0, len(spec.labels)), dtype=np.float32)]
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = torch.from_numpy(preprocess_batch(paths[start : start + batch_size], spec))
            outputs.append(model(batch).numpy())
    return np.concatenate(outputs)


def train(
    items: list[Item],
    labels: list[str],
    config: TrainConfig,
    sink: MetricSink | None = None,
    feature_cache: FeatureCache | None = None,
) -> TrainedModel:
    """Train the configured backbone and head on `items` with the recipe's method
    (`feature_cache`: see FeatureCache; frozen_body and head_then_tune, whose head is
    trained on the ImageNet body's features before its tail is tuned)."""
    set_seed(config.seed, reproducible=True)
    backbone = build_backbone(config.backbone, config.image_size, config.pretrained)
    spec = serving_spec(config, backbone, labels)
    learner = quiet_learner(
        build_dataloaders(items, labels, config, spec),
        build_classifier(backbone, len(labels)),
        config,
        sink,
        splitter=splitter,
        train_bn=config.train_bn,
    )
    started = time.perf_counter()
    with learner.no_logging():
        if config.method == "fine_tune":
            fine_tune(learner, config)
        else:
            train_head_on_features(learner, items, labels, config, spec, sink, feature_cache)
        if config.method == "head_then_tune":
            tune_tail(learner, config, sink)
    trained = TrainedModel(learner, spec, config, time.perf_counter() - started)
    if config.calibrate:
        trained.calibrate([item for item in items if item.is_valid])
    return trained


def quiet_learner(
    dls: DataLoaders, model: nn.Module, config: TrainConfig, sink: MetricSink | None, **kwargs
) -> Learner:
    """A Learner with the recipe's loss and accuracy, reporting each epoch through
    EpochMetrics (train metrics included) instead of progress bars, which flood logs."""
    learner = Learner(
        dls,
        model,
        loss_func=loss_function(config),
        metrics=accuracy,
        cbs=[EpochMetrics(sink)],
        **kwargs,
    )
    learner.recorder.train_metrics = True
    learner.remove_cb(ProgressCallback)
    return learner


def loss_function(config: TrainConfig) -> Callable:
    if config.label_smoothing:
        return LabelSmoothingCrossEntropyFlat(eps=config.label_smoothing)
    return CrossEntropyLossFlat()


def fine_tune(learner: Learner, config: TrainConfig) -> None:
    """Frozen epochs for the head, then the whole network with discriminative rates."""
    if config.frozen_epochs:
        learner.freeze()
        # One frozen epoch is a warm-up for the head (fastai's fine_tune); a longer
        # frozen phase is a proper cycle of its own.
        warmup = 0.99 if config.frozen_epochs == 1 else 0.25
        learner.fit_one_cycle(config.frozen_epochs, slice(config.lr), pct_start=warmup)
    if config.epochs:
        learner.unfreeze()
        lr = config.lr / 2 if config.frozen_epochs else config.lr
        learner.fit_one_cycle(config.epochs, slice(lr / 100, lr), pct_start=0.3, div=5.0)


def train_head_on_features(
    learner: Learner,
    items: list[Item],
    labels: list[str],
    config: TrainConfig,
    spec: PreprocessingSpec,
    sink: MetricSink | None,
    cache: FeatureCache | None = None,
) -> None:
    """Train only the head of `learner.model`, on features the frozen body computes once.

    The body never changes, so running it every epoch (what `freeze()` does) would
    compute the same features again and again; here each view of each image goes
    through it once, and the head's epochs take milliseconds. The head is trained in
    place: afterwards `learner.model` is the whole trained classifier. With
    `ensemble_heads` > 1 the next heads are trained on the same features with seeds
    seed + 1, ..., and the model's head averages all of their logits.
    """
    model = learner.model
    pool = model.head[:2]  # concat-pool + flatten; the head(s) classify what it gives
    train_items = [item for item in items if not item.is_valid]
    valid_items = [item for item in items if item.is_valid]
    train_x, train_y = pooled_features(model.body, pool, train_items, labels, spec, config, cache)
    valid_x, valid_y = pooled_features(model.body, pool, valid_items, labels, spec, None, cache)
    dls = DataLoaders(
        DataLoader(list(zip(train_x, train_y, strict=True)), bs=config.batch_size, shuffle=True),
        DataLoader(list(zip(valid_x, valid_y, strict=True)), bs=64),
        device="cpu",
    )
    heads = [fit_head(model.head[2:], dls, config, sink)]
    for member in range(1, config.ensemble_heads):
        set_seed(config.seed + member, reproducible=True)
        heads.append(fit_head(model.new_head(), dls, config, sink))
    if len(heads) > 1:
        model.use_ensemble(heads)
    model.eval()


def fit_head(
    head: nn.Module, dls: DataLoaders, config: TrainConfig, sink: MetricSink | None
) -> nn.Module:
    """Train `head` in place on pooled features (`dls`), the recipe's epochs and rate."""
    head_learner = quiet_learner(dls, head, config, sink)
    with head_learner.no_logging():
        head_learner.fit_one_cycle(config.head_epochs, config.lr)
    return head


class TailOnlyTrains(Callback):
    """The body but its tail stays in eval mode while training (batch-norm statistics and
    drop-connect as in the features the head was trained on)."""

    order = TrainEvalCallback.order + 1  # after it has put the whole model in train mode

    def __init__(self, blocks: int) -> None:
        self.blocks = blocks

    def before_train(self) -> None:
        body = self.learn.model.body
        body.eval()
        for module in body.tail(self.blocks):
            module.train()


def tune_tail(learner: Learner, config: TrainConfig, sink: MetricSink | None) -> None:
    """After the head: the body's last `tune_blocks` blocks and the head trained together
    for `tune_epochs` at `tune_lr`, on the training images with the recipe's
    augmentation; the rest of the body stays frozen, in eval mode."""
    model: Classifier = learner.model
    tuner = quiet_learner(
        learner.dls,
        model,
        config,
        sink,
        splitter=lambda m: tail_splitter(m, config.tune_blocks),
        train_bn=False,
    )
    tuner.add_cb(TailOnlyTrains(config.tune_blocks))
    tuner.freeze_to(1)
    with tuner.no_logging():
        tuner.fit_one_cycle(config.tune_epochs, config.tune_lr)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.eval()


def pooled_features(
    body: nn.Module,
    pool: nn.Module,
    items: list[Item],
    labels: list[str],
    spec: PreprocessingSpec,
    config: TrainConfig | None = None,
    cache: FeatureCache | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pooled body features of each image's views (only the serving crop without a
    config), with the label index of each row."""
    body.eval()
    rows, targets = [], []
    with torch.inference_mode():
        for item in items:
            key = (str(item.path), config is not None)
            if cache is None or key not in cache:
                views = image_views(load_rgb(item.path), spec, config, photo_seed(item, config))
                batch = torch.from_numpy(np.stack([to_model_input(v, spec) for v in views]))
                features = pool(body(batch))
                if cache is not None:
                    cache[key] = features
            else:
                features = cache[key]
            rows.append(features)
            targets += [labels.index(item.label)] * len(features)
    return torch.cat(rows), torch.tensor(targets)


def photo_seed(item: Item, config: TrainConfig | None) -> str:
    """The seed of a photo's random views: the recipe's seed and the photo's file, so its
    views are the same whichever other photos are trained with (and can be cached)."""
    return f"{config.seed if config else 0}/{item.path.parent.name}/{item.path.name}"


def image_views(
    image: Image.Image,
    spec: PreprocessingSpec,
    config: TrainConfig | None,
    seed: str = "",
) -> list[Image.Image]:
    """The serving crop, then (training, with augmentation) its mirror, random resized
    crops and `mosaic_views` zoomed-out mosaics, each mirrored or not: `feature_views`
    views in all, drawn from a generator seeded with `seed` (the global one is left as
    it was)."""
    served = resize_and_crop(image, spec)
    if config is None or not config.augmentation.enabled:
        return [served]
    aug = config.augmentation
    views = [served, ImageOps.mirror(served)] if aug.flip else [served]
    mosaics = min(aug.mosaic_views, max(0, config.feature_views - len(views)))
    crop = RandomResizedCrop(spec.crop_size, min_scale=aug.min_scale)
    state = random.getstate()  # fastai's crop draws from the global generator
    random.seed(seed)
    try:
        while len(views) < config.feature_views - mosaics:
            views.append(_maybe_mirrored(crop(PILImage.create(image), split_idx=0), aug.flip))
        views += [mosaic(image, spec.crop_size, aug) for _ in range(mosaics)]
    finally:
        random.setstate(state)
    return views[: config.feature_views]


def _maybe_mirrored(view: Image.Image, flip: bool) -> Image.Image:
    return ImageOps.mirror(view) if flip and random.random() < 0.5 else view


MOSAIC_GRID = 2  # tiles a side: the plants at half their size, four times as many


def mosaic(image: Image.Image, size: int, aug: Augmentation) -> Image.Image:
    """A `size` x `size` view tiled with MOSAIC_GRID x MOSAIC_GRID random resized crops of
    `image`, each mirrored or not: the photo's plants smaller and more of them, as a wider
    shot shows them. Draws from the global generator (seeded by `image_views`)."""
    tile = size // MOSAIC_GRID
    crop = RandomResizedCrop(tile, min_scale=aug.min_scale)
    canvas = Image.new("RGB", (size, size))
    for row in range(MOSAIC_GRID):
        for col in range(MOSAIC_GRID):
            piece = _maybe_mirrored(crop(PILImage.create(image), split_idx=0), aug.flip)
            canvas.paste(piece, (col * tile, row * tile))
    return canvas
