"""Fine-tuning with fastai: data loaders, the Learner and the schedule.

Training images get random crops and flips; the validation images go through the
serving preprocessing (`preprocessing.resize_and_crop`), so validation accuracy
measures what the API will see.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)
import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback
from fastai.data.block import CategoryBlock, DataBlock, TransformBlock
from fastai.data.core import DataLoaders
from fastai.data.transforms import FuncSplitter, IntToFloatTensor, Normalize
from fastai.learner import Learner, Recorder
from fastai.losses import CrossEntropyLossFlat, LabelSmoothingCrossEntropyFlat
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from fastai.vision.augment import RandomResizedCrop, aug_transforms
from fastai.vision.core import PILImage
from fasttransform import Transform

from plantops_ml_training.config import TrainConfig
from plantops_ml_training.model import (
    BackboneSpec,
    ServingModel,
    build_backbone,
    build_classifier,
    splitter,
)
from plantops_ml_training.preprocessing import (
    PreprocessingSpec,
    load_rgb,
    preprocess_batch,
    resize_and_crop,
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

    def serving_model(self) -> ServingModel:
        return ServingModel(self.learner.model, self.config.tta_flip).eval()

    def predict_probs(self, paths: list[Path], batch_size: int = 32) -> np.ndarray:
        """Class probabilities with the serving preprocessing (and TTA, as served)."""
        return predict_probs(self.serving_model(), paths, self.spec, batch_size)


def predict_probs(
    model: torch.nn.Module, paths: list[Path], spec: PreprocessingSpec, batch_size: int = 32
) -> np.ndarray:
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = torch.from_numpy(preprocess_batch(paths[start : start + batch_size], spec))
            outputs.append(torch.softmax(model(batch), dim=1).numpy())
    return np.concatenate(outputs)


def train(
    items: list[Item], labels: list[str], config: TrainConfig, sink: MetricSink | None = None
) -> TrainedModel:
    """Fine-tune the configured backbone on `items`: frozen epochs, then unfrozen ones."""
    set_seed(config.seed, reproducible=True)
    backbone = build_backbone(config.backbone, config.image_size, config.pretrained)
    spec = serving_spec(config, backbone, labels)
    dls = build_dataloaders(items, labels, config, spec)
    loss = (
        LabelSmoothingCrossEntropyFlat(eps=config.label_smoothing)
        if config.label_smoothing
        else CrossEntropyLossFlat()
    )
    learner = Learner(
        dls,
        build_classifier(backbone, len(labels)),
        loss_func=loss,
        metrics=accuracy,
        splitter=splitter,
        train_bn=config.train_bn,
        cbs=[EpochMetrics(sink)],
    )
    learner.recorder.train_metrics = True
    learner.remove_cb(ProgressCallback)  # progress bars flood logs; EpochMetrics logs instead
    started = time.perf_counter()
    with learner.no_logging():
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
    return TrainedModel(learner, spec, config, time.perf_counter() - started)
