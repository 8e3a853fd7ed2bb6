"""The two recipe-search methods of issue 13 on real photos: an ensemble of heads on one
frozen body, exported as one graph, and the head followed by a short fine-tune of the
body's tail."""

from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from plantops_ml_training.config import load_config
from plantops_ml_training.export import export_onnx, max_output_differences, onnx_outputs
from plantops_ml_training.model import EnsembleHead, build_backbone
from plantops_ml_training.novelty import EMBEDDING_NAME
from plantops_ml_training.pipeline import fit_model_novelty
from plantops_ml_training.preprocessing import preprocess_batch
from plantops_ml_training.train import Item, TrainedModel, train

pytestmark = pytest.mark.unit

LABELS = ["dandelion", "grass"]
SMALL = {"image_size": 64, "head_epochs": 2, "feature_views": 3}


def items(images_dir) -> list[Item]:
    return [
        Item(images_dir / label / f"{i:08d}.jpg", label, i >= 10)
        for label in LABELS
        for i in range(13)
    ]


def unseen(images_dir) -> list:
    return [images_dir / label / f"{i:08d}.jpg" for label in LABELS for i in range(100, 104)]


@pytest.fixture(scope="module")
def ensemble(images_dir) -> TrainedModel:
    return train(items(images_dir), LABELS, load_config(overrides={**SMALL, "ensemble_heads": 3}))


def pooled_and_members(trained: TrainedModel, paths) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model = trained.learner.model.eval()
    batch = torch.from_numpy(preprocess_batch(paths, trained.spec))
    with torch.inference_mode():
        pooled = model.pooled(batch)
        return pooled, [head(pooled) for head in model.head[2].heads]


def test_the_ensemble_graph_serves_the_mean_of_its_heads_logits_over_the_temperature(
    ensemble, images_dir, tmp_path
):
    head = ensemble.learner.model.head[2]
    assert isinstance(head, EnsembleHead) and len(head.heads) == 3
    paths = unseen(images_dir)
    pooled, members = pooled_and_members(ensemble, paths)
    assert not torch.allclose(members[0], members[1], atol=1e-3)  # seeds differ: heads differ
    spec = replace(ensemble.spec, embedding_name=EMBEDDING_NAME)
    path = export_onnx(ensemble.serving_model_with_embedding(), spec, tmp_path / "model.onnx")
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == ["logits", EMBEDDING_NAME]
    probs, embedding = onnx_outputs(path, spec, paths)
    expected = torch.softmax(torch.stack(members).mean(dim=0) / ensemble.temperature, dim=1)
    assert np.abs(probs - expected.numpy()).max() < 1e-5
    assert np.abs(embedding - pooled.numpy()).max() < 1e-3  # features up to ~10
    # check-skew: what the API computes from the graph is what training predicts.
    assert np.abs(probs - ensemble.predict_probs(paths)).max() < 1e-5
    differences = max_output_differences(ensemble.serving_model_with_embedding(), path, spec, paths)
    assert differences["logits"] < 1e-4


def test_the_first_head_of_an_ensemble_is_the_single_head_recipe(ensemble, images_dir):
    single = train(items(images_dir), LABELS, load_config(overrides=SMALL))
    paths = unseen(images_dir)
    pooled, members = pooled_and_members(ensemble, paths)
    with torch.inference_mode():
        alone = single.learner.model.eval().logits_of_pooled(pooled)
    assert torch.allclose(members[0], alone, atol=1e-5)


def test_head_then_tune_trains_the_tail_and_the_head_and_leaves_the_rest(images_dir):
    config = load_config(overrides={**SMALL, "method": "head_then_tune", "tune_epochs": 1})
    pretrained = build_backbone(config.backbone, 64).body
    trained = train(items(images_dir), LABELS, config)
    model = trained.learner.model
    before, after = pretrained.state_dict(), model.body.state_dict()
    tail = {name for name in after if name.startswith(("net._blocks.14.", "net._blocks.15."))}
    tail |= {name for name in after if name.startswith(("net._conv_head.", "net._bn1."))}
    frozen = [name for name in after if name not in tail]
    assert all(torch.equal(before[name], after[name]) for name in frozen)  # BN stats too
    tuned = [name for name in tail if not torch.equal(before[name], after[name])]
    assert {name.split(".")[1 if "_blocks" not in name else 2] for name in tuned} == {
        "14",
        "15",
        "_conv_head",
        "_bn1",
    }
    head_only = train(items(images_dir), LABELS, load_config(overrides=SMALL))
    head_weight = model.head[-1].weight
    assert not torch.allclose(head_weight, head_only.learner.model.head[-1].weight)
    assert all(p.requires_grad for p in model.parameters())
    probs = trained.predict_probs(unseen(images_dir))
    assert probs.shape == (8, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_a_tuned_body_s_novelty_bank_comes_from_the_served_graph_not_the_cache(
    images_dir, tmp_path
):
    """The feature cache holds the views of the body before its tail was tuned: a bank of
    those would not match the embeddings the API computes."""
    config = load_config(overrides={**SMALL, "method": "head_then_tune", "tune_epochs": 1})
    cache: dict = {}
    trained = train(items(images_dir), LABELS, config, None, cache)
    spec = replace(trained.spec, embedding_name=EMBEDDING_NAME)
    path = export_onnx(trained.serving_model_with_embedding(), spec, tmp_path / "model.onnx")
    reference, _ = fit_model_novelty(trained, items(images_dir), path, spec, cache)
    train_paths = [i.path for i in items(images_dir) if not i.is_valid]
    _, served = onnx_outputs(path, spec, train_paths)
    unit = served / np.linalg.norm(served, axis=1, keepdims=True)
    assert reference.score.bank.shape == unit.shape  # one row per photo: its serving crop
    assert np.abs(reference.score.bank.astype(np.float32) - unit).max() < 1e-3
