"""The soak's files and what each must end as.

Every file is one object version with its own expected outcome: its label is what the demo model
answers for its own rows (``asyncinfer.model.inference``, computed here in-process), so a record
that carries another version's prediction is caught, not only a wrong status.

Kinds (by the file's number, so a run of any size has each of them):

* ``plain``: CSV or JSON rows of the iris data, COMPLETED with their label;
* ``rejected``: bytes the model refuses, FAILED at stage ``inference`` with a reason;
* ``overwritten``: a version overwritten at once by another version of the same key (both are
  files, both count): each still ends with its own bytes' label (small inputs are read at their
  version);
* ``deleted``: a version whose key gets a delete marker at once; ``purged``: a version deleted
  for good at once. Either ends COMPLETED with its own label (ingest read it first) or FAILED at
  ``ingest`` as deleted before submission;
* ``large``: over the inline limit, sent by ``InputLocation``; COMPLETED with its label.

Any file may also meet the endpoint's expiry (``expire_rate``): then FAILED, at stage
``expired`` when its failure notification was lost as well (the reconciler settled it), at
``inference`` otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from lambdas.common.records import FailureStage, InferenceRecord, Status, inference_id_for
from tests.reliability.support import MODEL_REJECTED_BODY, Harness

PREFIX = "soak/"
# Over inline_input_max_bytes (128,000 by default): the request names the key.
LARGE_BYTES = 130_000
DELETED_REASON = "deleted before it could be submitted"


@dataclass(frozen=True)
class SoakFile:
    inference_id: str
    key: str
    version_id: str | None
    kind: str
    label: str | None  # None: the model rejects it


@cache
def _iris() -> tuple[list[list[float]], list[str]]:
    """The iris rows and the label the demo model gives each one."""
    from sklearn.datasets import load_iris

    from asyncinfer.model.inference import train

    rows = [[float(value) for value in row] for row in load_iris().data]
    predictions = train().predict(np.array(rows, dtype=np.float64))
    return rows, [str(prediction["label"]) for prediction in predictions]


def row_and_label(number: int) -> tuple[list[float], str]:
    rows, labels = _iris()
    return rows[number % len(rows)], labels[number % len(rows)]


def body_of(number: int, *, pad_to: int = 0) -> tuple[bytes, str]:
    """One row as CSV (odd numbers) or JSON (even ones, optionally padded), and its label."""
    row, label = row_and_label(number)
    if number % 2 and not pad_to:
        return (",".join(str(value) for value in row) + "\n").encode(), label
    text = json.dumps({"instances": [row]})
    return (text + " " * max(0, pad_to - len(text))).encode(), label


def kind_of(number: int) -> str:
    """Per hundred files: 10 rejected, 2 overwritten, 2 deleted, 1 purged, 1 large, the rest
    plain; the first ten files already hold one of each."""
    position = number % 100
    races = {3: "overwritten", 53: "overwritten", 5: "deleted", 55: "deleted", 9: "purged"}
    if position in races:
        return races[position]
    if position == 7:
        return "large"
    if number % 10 == 1:
        return "rejected"
    return "plain"


def _put(harness: Harness, key: str, body: bytes, kind: str, label: str | None) -> SoakFile:
    response = harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=body)
    version = response.get("VersionId")
    inference_id = inference_id_for(harness.bucket, key, version, response["ETag"])
    return SoakFile(inference_id, key, version, kind, label)


def upload(harness: Harness, number: int) -> list[SoakFile]:
    """Uploads file ``number`` (and, for a race, does what races it); returns its versions."""
    kind = kind_of(number)
    key = f"{PREFIX}{kind}/{number:05d}." + ("csv" if number % 2 else "json")
    if kind == "rejected":
        return [_put(harness, key, MODEL_REJECTED_BODY, kind, None)]
    if kind == "large":
        body, label = body_of(number, pad_to=LARGE_BYTES)
        return [_put(harness, key.replace(".csv", ".json"), body, kind, label)]
    body, label = body_of(number)
    first = _put(harness, key, body, kind, label)
    if kind == "overwritten":
        other, other_label = body_of(number + 50)  # the iris classes come 50 rows apiece
        return [first, _put(harness, key, other, kind, other_label)]
    if kind == "deleted":
        harness.s3.delete_object(Bucket=harness.bucket, Key=key)
    elif kind == "purged":
        harness.s3.delete_object(Bucket=harness.bucket, Key=key, VersionId=first.version_id)
    return [first]


def label_of(harness: Harness, record: InferenceRecord) -> str | None:
    """The label in the record's result (the output object when the result is not inline)."""
    text = record.result
    if text is None and record.output_location:
        bucket, _, key = record.output_location.removeprefix("s3://").partition("/")
        text = harness.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    if text is None:
        return None
    document: Any = json.loads(text)
    return str(document["predictions"][0]["label"])


def wrong_outcome(
    harness: Harness,
    file: SoakFile,
    record: InferenceRecord | None,
    *,
    expired: bool,
    dropped: bool,
) -> str | None:
    """Why the file's record is not what it must be; None when it is right."""
    if record is None:
        return "no record"
    status, stage = record.status, record.failure_stage
    if expired:  # never run: the endpoint's failure, or the reconciler's if that was lost
        wanted = FailureStage.EXPIRED if dropped else FailureStage.INFERENCE
        right = status == Status.FAILED and stage == wanted
        return None if right else f"expired, recorded {status} at {stage} (wanted {wanted})"
    if file.label is None:
        right = status == Status.FAILED and stage == FailureStage.INFERENCE
        right = right and bool(record.failure_reason)
        return None if right else f"rejected by the model, recorded {status} at {stage}"
    deleted_first = (
        file.kind in ("deleted", "purged")
        and status == Status.FAILED
        and stage == FailureStage.INGEST
        and DELETED_REASON in (record.failure_reason or "")
    )
    if deleted_first:
        return None
    if status != Status.COMPLETED:
        return f"recorded {status} at {stage}: {record.failure_reason}"
    label = label_of(harness, record)
    return None if label == file.label else f"labelled {label}, its own input is {file.label}"
