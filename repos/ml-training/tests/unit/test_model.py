"""Model assembly: parameter groups, freezing, and the flip-averaging serving model."""

import pytest
import torch

from plantops_ml_training.model import (
    LITE_WEIGHTS,
    EnsembleHead,
    ServingModel,
    build_backbone,
    build_classifier,
    splitter,
    tail_splitter,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def lite0():
    return build_classifier(build_backbone("efficientnet-lite0", 64), n_labels=3)


def test_lite0_maps_images_to_one_logit_per_label(lite0):
    assert lite0.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 3)


def test_splitter_gives_three_groups_covering_every_parameter_once(lite0):
    groups = splitter(lite0)
    assert len(groups) == 3
    ids = [id(p) for group in groups for p in group]
    assert len(ids) == len(set(ids)) == len(list(lite0.parameters()))
    head_ids = {id(p) for p in lite0.head.parameters()}
    assert {id(p) for p in groups[-1]} == head_ids


@pytest.mark.parametrize("name", sorted(LITE_WEIGHTS))
def test_pretrained_weights_are_loaded_offline_not_random(name):
    first = build_backbone(name, 64).body.net._conv_stem.weight
    second = build_backbone(name, 64).body.net._conv_stem.weight
    assert torch.equal(first, second)  # random initialisation would differ
    assert not torch.equal(
        first, build_backbone(name, 64, pretrained=False).body.net._conv_stem.weight
    )


def test_flip_tta_makes_the_output_mirror_invariant(lite0):
    serving = ServingModel(lite0, tta_flip=True).eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(serving(image), serving(torch.flip(image, dims=[3])), atol=1e-5)


def test_resnet_body_works_without_downloading_weights():
    model = build_classifier(build_backbone("resnet18", 64, pretrained=False), n_labels=2)
    assert len(splitter(model)) == 3
    assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_the_tail_of_a_lite_body_is_its_last_blocks_and_final_convolution(lite0):
    net = lite0.body.net
    groups = tail_splitter(lite0, blocks=2)
    ids = [id(p) for group in groups for p in group]
    assert len(ids) == len(set(ids)) == len(list(lite0.parameters()))
    tail = [*net._blocks[-2:], net._conv_head, net._bn1]
    assert {id(p) for p in groups[1]} == {id(p) for m in tail for p in m.parameters()}
    assert {id(p) for p in groups[2]} == {id(p) for p in lite0.head.parameters()}
    whole = tail_splitter(lite0, blocks=len(net._blocks))
    assert whole[0] == [] and len(whole[1]) == len(list(lite0.body.parameters()))


def test_the_tail_of_a_resnet_body_is_its_last_stages():
    body = build_backbone("resnet18", 64, pretrained=False).body
    assert body.tail(1) == [body.late[1]]  # layer4
    assert body.tail(3) == [body.stem[5], body.late[0], body.late[1]]
    assert body.tail(4) == [body]


def test_an_ensemble_head_averages_its_heads_logits(lite0):
    heads = [lite0.new_head().eval() for _ in range(3)]
    pooled = torch.rand(2, 2 * lite0.features)
    with torch.inference_mode():
        mean = torch.stack([h(pooled) for h in heads]).mean(dim=0)
        assert torch.allclose(EnsembleHead(heads).eval()(pooled), mean, atol=1e-6)
