"""The model's labels in a sentence, and the check of a label name a visitor proposes."""

import pytest

from plantops_webapp.labels import LabelRefused, normalise_new_label, sentence_of
from plantops_webapp.schemas import Prediction

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("labels", "sentence"),
    [
        (["dandelion", "grass"], "a dandelion or grass"),
        (["dandelion", "grass", "clover"], "a dandelion, grass or clover"),
        (["aster", "grass"], "an aster or grass"),
        (["moss"], "a moss"),
    ],
)
def test_the_sentence_names_every_label_of_the_model(labels, sentence):
    assert sentence_of(labels) == sentence


@pytest.mark.parametrize(
    ("typed", "label"),
    [
        ("clover", "clover"),
        ("  Clover ", "clover"),
        ("Sweet  Pea", "sweet-pea"),
        ("Pâquerette", "paquerette"),
        ("forget-me-not", "forget-me-not"),
        ("rosa_canina", "rosa_canina"),
        ("ivy2", "ivy2"),
    ],
)
def test_a_proposed_name_is_normalised_to_the_dataset_form(typed, label):
    assert normalise_new_label(typed) == label


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "Type the name of the plant"),
        ("   ", "Type the name of the plant"),
        ("x", "is 1 characters long"),
        ("a" * 41, "is 41 characters long"),
        ("a" * 500, "too long"),
        ("rose!", "cannot be a label name"),
        ("../grass", "cannot be a label name"),
        ("1rose", "cannot be a label name"),
        ("rose-", "cannot be a label name"),
        ("<script>", "cannot be a label name"),
        ("蒲公英", "cannot be a label name"),
        ("Unknown", "does not name a plant"),
        ("none", "does not name a plant"),
        ("test", "does not name a plant"),
    ],
)
def test_a_name_that_cannot_be_a_label_is_refused_with_the_reason(typed, reason):
    with pytest.raises(LabelRefused) as refused:
        normalise_new_label(typed)
    message = str(refused.value)
    assert reason in message
    assert "letters (a-z)" in message or "name a plant" in message  # says what to type


def test_novelty_fields_are_read_and_default_to_null_for_a_legacy_api():
    legacy = Prediction.model_validate(
        {"label": "grass", "confidence": 0.9, "probabilities": {"dandelion": 0.1, "grass": 0.9},
         "model": {"name": "m", "version": "1", "alias": "champion"}}
    )  # fmt: skip
    assert (legacy.novelty_score, legacy.out_of_distribution, legacy.unfamiliar) == (
        None,
        None,
        False,
    )
    unknown = legacy.model_copy(update={"novelty_score": 7.5, "out_of_distribution": True})
    assert unknown.unfamiliar and unknown.labels() == ["dandelion", "grass"]
