"""Label names as visitors read and write them: the model's labels in a sentence, and the
check of a new label name a visitor proposes.

A proposed name becomes, once a reviewer accepts it, a `plants_data` label: part of S3
keys (`fmt/<label>/...`) and a class name of the next model. So it is held to
orchestration's label alphabet (`[a-z0-9][a-z0-9_-]{0,63}`) and stricter: it starts with
a letter, is 2 to 40 characters long, and is not a word that means "no label".
"""

from __future__ import annotations

import re
import unicodedata

NEW_LABEL_MIN_LENGTH = 2
# Well under the column's 64: long enough for "common-evening-primrose", short enough to show.
NEW_LABEL_MAX_LENGTH = 40
# Words of one or more parts (letters and digits) joined by single hyphens or underscores.
NEW_LABEL_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
# Answers that are not a plant's name, and the pipeline's own words: as labels they would
# teach the model a class of "anything" or read as a state (pending, test split, ...).
RESERVED_LABELS = frozenset(
    {
        "unknown", "other", "others", "none", "null", "nil", "nan", "undefined", "na", "n-a",
        "idk", "not-sure", "dont-know", "nothing", "something", "anything", "misc",
        "label", "labels", "new", "test", "train", "val", "pending", "accepted", "rejected",
        "correct", "wrong", "true", "false", "yes", "no",
    }
)  # fmt: skip
HINT = (
    f"Use {NEW_LABEL_MIN_LENGTH} to {NEW_LABEL_MAX_LENGTH} letters (a-z), digits, spaces or "
    'hyphens, starting with a letter, for example "daisy" or "sweet pea".'
)


class LabelRefused(ValueError):
    """The proposed label name cannot be used; the message says why and what to type."""


def sentence_of(labels: list[str]) -> str:
    """The labels the model knows, as the words before "photo": "a dandelion or grass",
    "a clover, dandelion or grass" (the article agrees with the first label)."""
    if not labels:
        return "a"
    names = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"
    article = "an" if labels[0][:1].lower() in "aeiou" else "a"
    return f"{article} {names}"


def normalise_new_label(text: str) -> str:
    """The label a visitor typed, in the dataset's form, or LabelRefused.

    Lower-case, accents dropped ("Pâquerette" → "paquerette"), spaces become hyphens
    ("Sweet  pea" → "sweet-pea"); then the length, characters and reserved words are checked.
    """
    shown = text.strip()[:60]
    if not shown:
        raise LabelRefused(f"Type the name of the plant. {HINT}")
    # Far past the longest name allowed: refused without normalising a page of text.
    if len(text.strip()) > 4 * NEW_LABEL_MAX_LENGTH:
        raise LabelRefused(f"That name is too long. {HINT}")
    folded = unicodedata.normalize("NFKD", text.strip()).encode("ascii", "ignore").decode()
    label = re.sub(r"\s+", "-", folded.lower())
    if not NEW_LABEL_PATTERN.match(label):
        raise LabelRefused(f'"{shown}" cannot be a label name. {HINT}')
    if not NEW_LABEL_MIN_LENGTH <= len(label) <= NEW_LABEL_MAX_LENGTH:
        raise LabelRefused(f'"{shown}" is {len(label)} characters long. {HINT}')
    if label in RESERVED_LABELS:
        raise LabelRefused(
            f'"{label}" cannot be a label: it does not name a plant. Type the plant\'s name, '
            'for example "daisy"; if you do not know it, you need not send anything.'
        )
    return label
