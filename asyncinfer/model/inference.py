"""The demo model: an iris classifier behind the SageMaker scikit-learn serving contract.

The stack packages this file as the entry point of the model archive and the SageMaker
scikit-learn container (scikit-learn 1.2, Python 3.8 or later) imports it; local mode's model
server calls the same four functions. So it imports only the standard library, numpy and
scikit-learn, and keeps to Python 3.8 syntax.

The model is trained when it loads, on the iris data set that scikit-learn ships (no download,
no artifact to version): four measurements of a flower in, one of three species out. Training
is deterministic, so the same input always gets the same prediction.

Inputs (``input_fn``):

- ``application/json``: ``{"instances": [[5.1, 3.5, 1.4, 0.2], ...]}``, a bare list of rows,
  a single row, ``{"features": [...]}``, or rows as objects keyed by feature name
  (``{"sepal_length": 5.1, ...}``; scikit-learn's ``"sepal length (cm)"`` works too);
- ``text/csv``: one row of four numbers per line, optionally under a header row naming the
  four features in any order;
- ``application/jsonlines``: one row (a list or an object) per line.

Output (``output_fn``), ``application/json``:
``{"predictions": [{"label": "setosa", "class_index": 0, "probabilities": {...}}]}``.

Bad input raises a ``RequestError``: an error that carries its own HTTP status (400, 415 for an
unsupported content type, 406 for an unsupported accept) in the shape of the SageMaker
inference toolkit's ``BaseInferenceToolkitError`` (``status_code``, ``message``, ``phrase``),
and a subclass of it wherever the toolkit is installed, because the toolkit's transformer
tests ``isinstance(error, BaseInferenceToolkitError)`` and answers that error's status; any
other exception is a 500 (aws/sagemaker-inference-toolkit,
src/sagemaker_inference/transformer.py, ``Transformer.transform`` and ``handle_error``).

Which status the client sees depends on the container's serving stack, and local mode's
model server emulates both (asyncinfer/local/sagemaker/model_server.py):

- the scikit-learn image the stack deploys serves one model with gunicorn and the
  ``sagemaker-containers`` Flask worker (aws/sagemaker-scikit-learn-container,
  src/sagemaker_sklearn_container/serving.py ``serving_entrypoint``). Its transformer wraps
  each function of this module in ``_functions.error_wrapper``, which re-raises any exception
  as ``sagemaker_containers._errors.ClientError``; nothing catches that, so Flask answers 500
  (aws/sagemaker-containers, src/sagemaker_containers/_transformer.py). Even an unsupported
  format is a 500 there: only the container's *default* input_fn/output_fn give 415/406.
  The async endpoint reports it as a failed inference with the model's 500.
- the toolkit's model server (multi-model endpoints on this image, and the toolkit-based
  framework images) honours the status of these errors.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

if TYPE_CHECKING:
    from numpy.typing import NDArray

try:  # inside a SageMaker container that ships the inference toolkit
    from sagemaker_inference.errors import (  # type: ignore[import-not-found, unused-ignore]
        BaseInferenceToolkitError as _StatusError,
    )
except ImportError:  # local mode and the tests: the same shape without the toolkit

    class _StatusError(Exception):  # type: ignore[no-redef, unused-ignore]
        """sagemaker_inference.errors.BaseInferenceToolkitError's shape (toolkit 1.x)."""

        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code = status_code
            self.message = message
            self.phrase = phrase
            super().__init__(status_code, message, phrase)


logger = logging.getLogger(__name__)

FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
MAX_ROWS = 1000
MAX_BODY_BYTES = 1024 * 1024
RANDOM_STATE = 0
PROBABILITY_DECIMALS = 6

JSON_CONTENT_TYPES = frozenset({"application/json", "text/json"})
JSON_LINES_CONTENT_TYPES = frozenset(
    {
        "application/jsonlines",
        "application/x-jsonlines",
        "application/jsonl",
        "application/x-ndjson",
    }
)
CSV_CONTENT_TYPES = frozenset({"text/csv", "application/csv"})
RESPONSE_CONTENT_TYPE = "application/json"
ACCEPTED_MEDIA_RANGES = frozenset({RESPONSE_CONTENT_TYPE, "application/*", "*/*"})


class RequestError(_StatusError, ValueError):  # type: ignore[misc, unused-ignore]
    """The request cannot be served; ``http_status`` (= ``status_code``) is the answer a
    model server that honours status-carrying errors gives, with ``message`` as its body."""

    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(self.http_status, message, message)

    def __str__(self) -> str:
        return str(self.message)


class InvalidInputError(RequestError):
    """The body is not a batch of feature rows this model accepts."""

    http_status = 400


class UnsupportedContentTypeError(RequestError):
    http_status = 415


class UnsupportedAcceptError(RequestError):
    http_status = 406


class IrisModel:
    """A fitted classifier and the names of its classes, in class-index order."""

    def __init__(self, estimator: Any, class_names: tuple[str, ...]) -> None:
        self.estimator = estimator
        self.class_names = class_names

    def predict(self, rows: NDArray[np.float64]) -> list[dict[str, Any]]:
        probabilities = self.estimator.predict_proba(rows)
        predictions = []
        for row in probabilities:
            class_index = int(np.argmax(row))
            predictions.append(
                {
                    "label": self.class_names[class_index],
                    "class_index": class_index,
                    "probabilities": {
                        name: round(float(row[index]), PROBABILITY_DECIMALS)
                        for index, name in enumerate(self.class_names)
                    },
                }
            )
        return predictions


def train() -> IrisModel:
    iris = load_iris()
    estimator = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=1000, random_state=RANDOM_STATE)
    )
    estimator.fit(iris.data, iris.target)
    return IrisModel(estimator, tuple(str(name) for name in iris.target_names))


def model_fn(model_dir: str) -> IrisModel:
    """Trains the model; ``model_dir`` holds nothing it needs (the data ships with sklearn)."""
    model = train()
    logger.info("iris model trained (model_dir=%s)", model_dir)
    return model


def input_fn(input_data: str | bytes, content_type: str | None) -> NDArray[np.float64]:
    """Parses the body into an ``(n, 4)`` float array, or raises a ``RequestError``."""
    media_type = _media_type(content_type) or "application/json"
    if media_type in JSON_CONTENT_TYPES:
        rows = _rows_from_json(_load_json(_decode(input_data), "the body"))
    elif media_type in JSON_LINES_CONTENT_TYPES:
        rows = _rows_from_json_lines(_decode(input_data))
    elif media_type in CSV_CONTENT_TYPES:
        rows = _rows_from_csv(_decode(input_data))
    else:
        supported = sorted(JSON_CONTENT_TYPES | JSON_LINES_CONTENT_TYPES | CSV_CONTENT_TYPES)
        raise UnsupportedContentTypeError(
            f"content type {content_type!r} is not supported; use one of {', '.join(supported)}"
        )
    return _as_batch(rows)


def predict_fn(data: NDArray[np.float64], model: IrisModel) -> list[dict[str, Any]]:
    return model.predict(_as_batch(data))


def output_fn(prediction: list[dict[str, Any]], accept: str | None) -> tuple[str, str]:
    """Serializes to JSON; returns ``(body, content type)`` as the container expects."""
    if not _accepts_json(accept):
        raise UnsupportedAcceptError(
            f"accept {accept!r} is not supported; this model answers {RESPONSE_CONTENT_TYPE}"
        )
    return json.dumps({"predictions": prediction}), RESPONSE_CONTENT_TYPE


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _accepts_json(accept: str | None) -> bool:
    media_ranges = [_media_type(part) for part in (accept or "").split(",")]
    media_ranges = [media_range for media_range in media_ranges if media_range]
    return not media_ranges or any(item in ACCEPTED_MEDIA_RANGES for item in media_ranges)


def _decode(input_data: str | bytes) -> str:
    if isinstance(input_data, str):
        size = len(input_data.encode("utf-8"))
        text = input_data
    else:
        size = len(input_data)
        try:
            text = bytes(input_data).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidInputError(f"the body is not UTF-8 text: {error}") from error
    if size > MAX_BODY_BYTES:
        raise InvalidInputError(f"the body is {size} bytes; at most {MAX_BODY_BYTES} are accepted")
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InvalidInputError("the body is empty")
    return text


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidInputError(f"{where} is not valid JSON: {error}") from error


def _rows_from_json(document: Any) -> list[list[float]]:
    if isinstance(document, dict):
        if "instances" in document:
            instances = document["instances"]
            if not isinstance(instances, list):
                raise InvalidInputError('"instances" must be a list of rows')
            return [_row(item, f"instances[{index}]") for index, item in enumerate(instances)]
        if "features" in document:
            return [_row(document["features"], "features")]
        return [_row(document, "the body")]
    if isinstance(document, list):
        if document and all(_is_number(value) for value in document):
            return [_row(document, "the body")]
        return [_row(item, f"row {index}") for index, item in enumerate(document)]
    raise InvalidInputError(
        'expected {"instances": [[4 numbers], ...]}, a list of rows or one row, '
        f"not a JSON {type(document).__name__}"
    )


def _rows_from_json_lines(text: str) -> list[list[float]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        item = _load_json(line, where)
        if isinstance(item, dict) and "features" in item:
            item = item["features"]
        rows.append(_row(item, where))
        _check_row_count(len(rows))
    return rows


def _rows_from_csv(text: str) -> list[list[float]]:
    rows: list[list[float]] = []
    column_order: list[int] | None = None
    records = (record for record in csv.reader(io.StringIO(text)) if any(c.strip() for c in record))
    for number, record in enumerate(records, start=1):
        cells = [cell.strip() for cell in record]
        if number == 1 and not any(_parses_as_number(cell) for cell in cells):
            column_order = _header_order(cells)
            continue
        if column_order is not None and len(cells) == len(column_order):
            cells = [cells[index] for index in column_order]
        rows.append(_row([_csv_number(cell, number) for cell in cells], f"CSV row {number}"))
        _check_row_count(len(rows))
    return rows


def _header_order(cells: list[str]) -> list[int]:
    """The column index of each feature, read from a header row."""
    keys = [_feature_key(cell) for cell in cells]
    if sorted(keys) != sorted(FEATURE_NAMES):
        raise InvalidInputError(
            f"CSV row 1 is not numeric and not a header naming {', '.join(FEATURE_NAMES)}: "
            f"{cells!r}"
        )
    return [keys.index(name) for name in FEATURE_NAMES]


def _csv_number(cell: str, number: int) -> Any:
    if _parses_as_number(cell):
        return float(cell)
    raise InvalidInputError(f"CSV row {number}: {cell!r} is not a number")


def _parses_as_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _row(value: Any, where: str) -> list[float]:
    if isinstance(value, dict):
        value = _named_row(value, where)
    if not isinstance(value, list):
        raise InvalidInputError(
            f"{where}: expected a row of {len(FEATURE_NAMES)} numbers, not {_describe(value)}"
        )
    if len(value) != len(FEATURE_NAMES):
        raise InvalidInputError(
            f"{where}: expected {len(FEATURE_NAMES)} values ({', '.join(FEATURE_NAMES)}), "
            f"got {len(value)}"
        )
    for position, item in enumerate(value):
        if not _is_number(item):
            raise InvalidInputError(f"{where}[{position}]: {_describe(item)} is not a number")
        if not math.isfinite(item):
            raise InvalidInputError(f"{where}[{position}]: {item} is not a finite number")
    return [float(item) for item in value]


def _named_row(features: dict[str, Any], where: str) -> list[Any]:
    by_key: dict[str, Any] = {}
    for name, value in features.items():
        key = _feature_key(str(name))
        if key not in FEATURE_NAMES:
            raise InvalidInputError(
                f"{where}: unknown feature {name!r}; the features are {', '.join(FEATURE_NAMES)}"
            )
        if key in by_key:
            raise InvalidInputError(f"{where}: feature {key} is given twice")
        by_key[key] = value
    missing = [name for name in FEATURE_NAMES if name not in by_key]
    if missing:
        raise InvalidInputError(f"{where}: missing feature(s) {', '.join(missing)}")
    return [by_key[name] for name in FEATURE_NAMES]


def _feature_key(name: str) -> str:
    """``"Sepal length (cm)"``, ``"sepal-length"`` and ``"sepal_length"`` name one feature."""
    text = name.strip().lower()
    if text.endswith("(cm)"):
        text = text[: -len("(cm)")]
    return "_".join(text.replace("-", " ").replace("_", " ").split())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _check_row_count(count: int) -> None:
    if count > MAX_ROWS:
        raise InvalidInputError(f"more than {MAX_ROWS} rows; send at most {MAX_ROWS} per request")


def _as_batch(rows: Any) -> NDArray[np.float64]:
    batch = np.asarray(rows, dtype=np.float64)
    if batch.ndim > 0 and batch.shape[0] == 0:
        raise InvalidInputError("no rows to classify")
    if batch.ndim != 2 or batch.shape[1] != len(FEATURE_NAMES):
        raise InvalidInputError(
            f"expected rows of {len(FEATURE_NAMES)} numbers, got an array of shape {batch.shape}"
        )
    _check_row_count(batch.shape[0])
    return batch
