"""Loading and verifying a model folder; the spec decides labels and preprocessing."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import image_bytes
from modelkit import write_model

from plantops_inference_api.errors import ModelLoadError
from plantops_inference_api.model import ModelSource, load_model_dir
from plantops_inference_api.preprocessing import ImageBudget, preprocess_bytes

pytestmark = pytest.mark.unit

SOURCE = ModelSource(name="test", version="1", alias="champion")


@pytest.mark.parametrize("labels", [("red", "green", "blue"), ("a", "b", "c", "d", "e")])
def test_probabilities_cover_every_label_and_sum_to_one(tmp_path, labels):
    model = load_model_dir(write_model(tmp_path, labels=labels), SOURCE)
    x = preprocess_bytes(image_bytes((30, 220, 30)), model.spec, ImageBudget(10**7, 8.0))
    probs = model.probabilities(np.stack([x, x]))
    assert probs.shape == (2, len(labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert int(probs[0].argmax()) == 1  # the green channel drives the second label


def test_labels_and_order_come_from_the_spec(tmp_path):
    model = load_model_dir(write_model(tmp_path, labels=("r", "g", "b")), SOURCE)
    assert model.labels == ["r", "g", "b"]


def test_a_model_with_fewer_outputs_than_labels_is_refused(tmp_path):
    folder = write_model(tmp_path, labels=("red", "green", "blue"))
    spec = json.loads((folder / "preprocessing.json").read_text())
    spec["labels"] = ["red", "green", "blue", "yellow"]
    (folder / "preprocessing.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="3 outputs for 4 labels") as err:
        load_model_dir(folder, SOURCE)
    assert err.value.stage == "verify"


def test_a_spec_naming_another_input_is_refused(tmp_path):
    folder = write_model(tmp_path)
    spec = json.loads((folder / "preprocessing.json").read_text())
    spec["input_name"] = "pixels"
    (folder / "preprocessing.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="input 'pixels' not in the graph"):
        load_model_dir(folder, SOURCE)


def test_a_spatial_model_whose_input_size_differs_from_the_crop_is_refused(tmp_path):
    folder = write_model(tmp_path, kind="spatial", crop_size=32)
    spec = json.loads((folder / "preprocessing.json").read_text())
    spec["crop_size"] = 24
    (folder / "preprocessing.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="fails on a"):
        load_model_dir(folder, SOURCE)


def test_a_corrupt_onnx_file_is_refused(tmp_path):
    folder = write_model(tmp_path)
    (folder / "model.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        load_model_dir(folder, SOURCE)


@pytest.mark.parametrize("missing", ["model.onnx", "preprocessing.json"])
def test_a_missing_file_is_named(tmp_path, missing):
    folder = write_model(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(ModelLoadError, match=f"{missing} is missing"):
        load_model_dir(folder, SOURCE)


def test_a_novelty_model_scores_each_image_in_the_same_run(tmp_path):
    model = load_model_dir(write_model(tmp_path, novelty=True), SOURCE)
    budget = ImageBudget(10**7, 8.0)
    red = preprocess_bytes(image_bytes((230, 10, 10)), model.spec, budget)
    grey = preprocess_bytes(image_bytes((128, 128, 128)), model.spec, budget)
    output = model.predict(np.stack([red, grey]))
    np.testing.assert_allclose(output.probabilities, model.probabilities(np.stack([red, grey])))
    assert output.novelty_scores is not None
    assert output.novelty_scores[0] < 0.1 < 0.9 < output.novelty_scores[1]


def test_a_legacy_model_has_no_novelty_scores(tmp_path):
    model = load_model_dir(write_model(tmp_path), SOURCE)
    assert model.novelty is None
    assert model.predict(np.zeros((1, 3, 32, 32), np.float32)).novelty_scores is None


def test_missing_novelty_parameters_are_named(tmp_path):
    folder = write_model(tmp_path, novelty=True)
    (folder / "novelty.npz").unlink()
    with pytest.raises(ModelLoadError, match=r"novelty.npz \(novelty parameters\) is missing"):
        load_model_dir(folder, SOURCE)


def test_novelty_parameters_of_another_embedding_size_are_refused(tmp_path):
    folder = write_model(tmp_path, novelty=True)
    np.savez(folder / "novelty.npz", mean=np.zeros(5), bank=np.ones((3, 5)), k=np.int64(1))
    with pytest.raises(ModelLoadError, match="expect 5 values"):
        load_model_dir(folder, SOURCE)


def test_a_novelty_block_without_an_embedding_output_is_refused(tmp_path):
    folder = write_model(tmp_path, novelty=True)
    spec = json.loads((folder / "preprocessing.json").read_text())
    del spec["embedding_name"]
    (folder / "preprocessing.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="embedding_name"):
        load_model_dir(folder, SOURCE)


def test_onnxruntime_gets_one_thread_per_core_this_process_may_use(tmp_path):
    # Left at 0, onnxruntime would start one thread per core of the machine, each pinned
    # to its core, outside the process's taskset or cpuset.
    model = load_model_dir(write_model(tmp_path), SOURCE)
    threads = model.session.get_session_options().intra_op_num_threads
    assert threads == len(os.sched_getaffinity(0))
    assert (
        load_model_dir(write_model(tmp_path / "two"), SOURCE, 2)
        .session.get_session_options()
        .intra_op_num_threads
        == 2
    )
