"""The review queue: feedback rows waiting for a reviewer, and the reviewer's decisions.

Plain SQL on `plants_data` (columns from orchestration's migration
0001_feedback_review.sql). The queue shows first what most needs a person: items where the
visitor and the model disagree, then the model's least confident answers. A decision
updates a row only while it is still pending, so two reviewers acting on the same item
cannot both decide it; who decided, what and when is kept in the row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

PENDING = "pending"
ACCEPTED = "accepted"
REJECTED = "rejected"

# The label alphabet of orchestration (it becomes part of S3 keys and a class name).
LABEL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Action(StrEnum):
    ACCEPT = "accept"
    RELABEL = "relabel"
    REJECT = "reject"


# What each action records in review_action.
RECORDED = {Action.ACCEPT: "accepted", Action.RELABEL: "relabelled", Action.REJECT: "rejected"}


@dataclass(frozen=True)
class QueueItem:
    id: int
    url_source: str
    proposed_label: str
    model_label: str | None
    model_confidence: float | None
    model_version: str | None
    submitter: str
    submitted_at: datetime | None

    @property
    def disagrees(self) -> bool:
        return self.model_label != self.proposed_label


class DecisionRefused(ValueError):
    """The decision cannot be recorded (item gone or decided, label not valid)."""


ITEM_COLUMNS = (
    "SELECT id, url_source, COALESCE(proposed_label, label), model_label, model_confidence, "
    "model_version, COALESCE(submitter_id, ''), submitted_at FROM plants_data "
)
# `<=>` is NULL-safe equality (1 or 0): disagreements (0) sort first.
QUEUE_SQL = (
    ITEM_COLUMNS + "WHERE review_status = %s "
    "ORDER BY (model_label <=> COALESCE(proposed_label, label)) ASC, "
    "model_confidence IS NULL DESC, model_confidence ASC, id ASC LIMIT %s"
)


def queue(connection, limit: int = 50) -> list[QueueItem]:
    """Pending items: disagreements first, then the lowest confidence, then the oldest."""
    cursor = connection.cursor()
    try:
        cursor.execute(QUEUE_SQL, (PENDING, limit))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return [queue_item(row) for row in rows]


def pending_item(connection, item_id: int) -> QueueItem | None:
    cursor = connection.cursor()
    try:
        cursor.execute(ITEM_COLUMNS + "WHERE review_status = %s AND id = %s", (PENDING, item_id))
        found = cursor.fetchall()
    finally:
        cursor.close()
    return None if not found else queue_item(found[0])


def queue_item(row: tuple) -> QueueItem:
    """A row of ITEM_COLUMNS; the submitter is shown by the first 8 digits of its keyed hash."""
    return QueueItem(
        id=int(row[0]),
        url_source=str(row[1]),
        proposed_label=str(row[2]),
        model_label=row[3],
        model_confidence=None if row[4] is None else float(row[4]),
        model_version=row[5],
        submitter=str(row[6])[:8],
        submitted_at=row[7],
    )


def pending_count(connection) -> int:
    return _count(connection, "review_status = %s", (PENDING,))


def accepted_since(connection, moment: datetime) -> int:
    """Items a reviewer accepted after `moment` (the champion's training time)."""
    utc = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return _count(
        connection,
        "review_status = %s AND reviewed_at IS NOT NULL AND reviewed_at > %s",
        (ACCEPTED, utc),
    )


def accepted_counts(connection) -> dict[str, int]:
    """Accepted photos per label: what "accept with another label" may choose, and how far
    a new label is from the number of photos a dataset needs to include it."""
    cursor = connection.cursor()
    try:
        cursor.execute(
            "SELECT label, COUNT(*) FROM plants_data WHERE review_status = %s "
            "GROUP BY label ORDER BY label",
            (ACCEPTED,),
        )
        return {str(label): int(n) for label, n in cursor.fetchall()}
    finally:
        cursor.close()


def decide(connection, item_id: int, action: Action, reviewer: str, label: str | None) -> None:
    """Record the decision on a pending item; DecisionRefused if it cannot be."""
    if action is Action.RELABEL and not (label and LABEL_PATTERN.match(label)):
        raise DecisionRefused("Choose the label the photo should have.")
    state = REJECTED if action is Action.REJECT else ACCEPTED
    cursor = connection.cursor()
    try:
        cursor.execute(
            "UPDATE plants_data SET review_status = %s, review_action = %s, reviewed_by = %s, "
            "reviewed_at = CURRENT_TIMESTAMP, label = COALESCE(%s, label) "
            "WHERE id = %s AND review_status = %s",
            (
                state,
                RECORDED[action],
                reviewer,
                label if action is Action.RELABEL else None,
                item_id,
                PENDING,
            ),
        )
        changed = cursor.rowcount
        connection.commit()
    finally:
        cursor.close()
    if changed != 1:
        raise DecisionRefused("This item is no longer waiting for review.")


def _count(connection, where: str, params: tuple) -> int:
    cursor = connection.cursor()
    try:
        cursor.execute(f"SELECT COUNT(*) FROM plants_data WHERE {where}", params)
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()
