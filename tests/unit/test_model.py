"""The demo model: input formats, determinism, and a clear error for every bad input."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from asyncinfer.model import inference
from asyncinfer.model.inference import (
    InvalidInputError,
    IrisModel,
    RequestError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)

SETOSA = [5.1, 3.5, 1.4, 0.2]  # iris sample 0
VERSICOLOR = [5.0, 2.0, 3.5, 1.0]  # iris sample 60
VIRGINICA = [6.9, 3.2, 5.7, 2.3]  # iris sample 120
NAMED_VIRGINICA = {
    "sepal_length": 6.9,
    "sepal_width": 3.2,
    "petal_length": 5.7,
    "petal_width": 2.3,
}


@pytest.fixture(scope="module")
def model() -> IrisModel:
    return inference.model_fn("/opt/ml/model")


def run(model: IrisModel, body: str | bytes, content_type: str | None) -> list[dict[str, Any]]:
    """The container's pipeline: input_fn, predict_fn, output_fn; returns the predictions."""
    data = inference.input_fn(body, content_type)
    response, response_type = inference.output_fn(
        inference.predict_fn(data, model), "application/json"
    )
    assert response_type == "application/json"
    predictions: list[dict[str, Any]] = json.loads(response)["predictions"]
    return predictions


def labels(predictions: list[dict[str, Any]]) -> list[str]:
    return [prediction["label"] for prediction in predictions]


def test_classifies_one_flower_of_each_species(model: IrisModel) -> None:
    body = json.dumps({"instances": [SETOSA, VERSICOLOR, VIRGINICA]})

    predictions = run(model, body, "application/json")

    assert labels(predictions) == ["setosa", "versicolor", "virginica"]
    assert [prediction["class_index"] for prediction in predictions] == [0, 1, 2]
    for prediction in predictions:
        probabilities = prediction["probabilities"]
        assert list(probabilities) == ["setosa", "versicolor", "virginica"]
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert max(probabilities, key=probabilities.__getitem__) == prediction["label"]


def test_training_is_deterministic(model: IrisModel) -> None:
    body = json.dumps({"instances": [SETOSA, VERSICOLOR, VIRGINICA, [6.0, 2.9, 4.5, 1.5]]})

    first = run(model, body, "application/json")
    retrained = run(inference.model_fn("."), body, "application/json")

    assert retrained == first


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            json.dumps({"instances": [SETOSA, VIRGINICA]}),
            "application/json",
            ["setosa", "virginica"],
        ),
        (json.dumps([SETOSA, VIRGINICA]), "application/json", ["setosa", "virginica"]),
        (json.dumps(VIRGINICA), "application/json", ["virginica"]),
        (json.dumps({"features": VIRGINICA}), "application/json", ["virginica"]),
        (json.dumps({"features": NAMED_VIRGINICA}), "application/json", ["virginica"]),
        (json.dumps(NAMED_VIRGINICA), "application/json", ["virginica"]),
        (
            json.dumps({"instances": [NAMED_VIRGINICA, SETOSA]}),
            "application/json; charset=utf-8",
            ["virginica", "setosa"],
        ),
        (
            json.dumps(
                {
                    "sepal length (cm)": 6.9,
                    "Sepal Width (cm)": 3.2,
                    "petal-length": 5.7,
                    "petal width": 2.3,
                }
            ),
            "application/json",
            ["virginica"],
        ),
        ("5.1,3.5,1.4,0.2\n6.9,3.2,5.7,2.3\n", "text/csv", ["setosa", "virginica"]),
        ("5.1, 3.5, 1.4, 0.2\r\n\r\n6.9,3.2,5.7,2.3", "text/csv; charset=utf-8", None),
        (
            "petal_width,petal_length,sepal_width,sepal_length\n2.3,5.7,3.2,6.9\n",
            "text/csv",
            ["virginica"],
        ),
        (
            "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
            "5.1,3.5,1.4,0.2",
            "text/csv",
            ["setosa"],
        ),
        (
            json.dumps(SETOSA) + "\n\n" + json.dumps({"features": NAMED_VIRGINICA}) + "\n",
            "application/jsonlines",
            ["setosa", "virginica"],
        ),
        (json.dumps(NAMED_VIRGINICA), "application/x-jsonlines", ["virginica"]),
        (json.dumps({"instances": [SETOSA]}), None, ["setosa"]),
    ],
)
def test_accepts_every_documented_format(
    model: IrisModel, body: str, content_type: str | None, expected: list[str] | None
) -> None:
    predictions = run(model, body, content_type)

    assert labels(predictions) == (expected or ["setosa", "virginica"])


def test_bytes_and_text_bodies_give_the_same_answer(model: IrisModel) -> None:
    body = "\ufeff5.1,3.5,1.4,0.2\n"

    assert run(model, body.encode("utf-8"), "text/csv") == run(model, body, "text/csv")
    assert labels(run(model, body.encode("utf-8"), "text/csv")) == ["setosa"]


@pytest.mark.parametrize(
    "accept", [None, "", "application/json", "*/*", "application/*", "text/csv, application/json"]
)
def test_answers_json_to_any_accept_that_allows_it(accept: str | None) -> None:
    body, content_type = inference.output_fn([], accept)

    assert content_type == "application/json"
    assert json.loads(body) == {"predictions": []}


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("", "application/json", "the body is empty"),
        ("  \n", "text/csv", "the body is empty"),
        (b"\xff\xfe\x00", "application/json", "not UTF-8"),
        ("{not json", "application/json", "not valid JSON"),
        ("5.1,3.5,1.4,0.2", "application/json", "not valid JSON"),
        ('"a string"', "application/json", "not a JSON str"),
        ("42", "application/json", "not a JSON int"),
        ("[]", "application/json", "no rows"),
        ('{"instances": []}', "application/json", "no rows"),
        ('{"instances": "5.1,3.5,1.4,0.2"}', "application/json", '"instances" must be a list'),
        ("[5.1, 3.5, 1.4]", "application/json", "expected 4 values"),
        ("[[5.1, 3.5, 1.4, 0.2, 9.9]]", "application/json", "row 0: expected 4 values"),
        ('{"instances": [[5.1, 3.5, 1.4, 0.2], [1, 2]]}', "application/json", "instances[1]"),
        ('[[5.1, "3.5", 1.4, 0.2]]', "application/json", "'3.5' is not a number"),
        ("[[5.1, true, 1.4, 0.2]]", "application/json", "a bool is not a number"),
        ("[[5.1, null, 1.4, 0.2]]", "application/json", "null is not a number"),
        ("[[5.1, NaN, 1.4, 0.2]]", "application/json", "not a finite number"),
        ("[[5.1, Infinity, 1.4, 0.2]]", "application/json", "not a finite number"),
        ('[["a", "b"]]', "application/json", "expected 4 values"),
        ("[[[1, 2, 3, 4]]]", "application/json", "row 0: expected 4 values"),
        ('{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}', None, "missing feature"),
        ('{"features": {"color": 1}}', "application/json", "unknown feature 'color'"),
        (
            '{"sepal_length": 1, "sepal length": 1, "sepal_width": 2, "petal_length": 3}',
            "application/json",
            "given twice",
        ),
        ("5.1,3.5,1.4\n", "text/csv", "CSV row 1: expected 4 values"),
        ("5.1,3.5,1.4,0.2\n5.1,3.5,1.4,0.2,7\n", "text/csv", "CSV row 2: expected 4 values"),
        ("5.1,3.5,abc,0.2\n", "text/csv", "CSV row 1: 'abc' is not a number"),
        ("5.1,3.5,,0.2\n", "text/csv", "CSV row 1: '' is not a number"),
        ("5.1,3.5,nan,0.2\n", "text/csv", "not a finite number"),
        ("a,b,c,d\n5.1,3.5,1.4,0.2\n", "text/csv", "not numeric and not a header"),
        ("sepal_length,sepal_width,petal_length,petal_width\n", "text/csv", "no rows"),
        ("[5.1, 3.5, 1.4, 0.2]\nnot json\n", "application/jsonlines", "line 2 is not valid JSON"),
        ('"text"\n', "application/jsonlines", "line 1: expected a row of 4 numbers"),
    ],
)
def test_rejects_bad_input_with_a_clear_message(
    body: str | bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        inference.input_fn(body, content_type)

    assert message in str(raised.value)
    assert raised.value.http_status == 400


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps([SETOSA] * (inference.MAX_ROWS + 1)), "application/json"),
        ("5.1,3.5,1.4,0.2\n" * (inference.MAX_ROWS + 1), "text/csv"),
        ((json.dumps(SETOSA) + "\n") * (inference.MAX_ROWS + 1), "application/jsonlines"),
    ],
)
def test_rejects_too_many_rows(body: str, content_type: str) -> None:
    with pytest.raises(InvalidInputError, match=f"more than {inference.MAX_ROWS} rows"):
        inference.input_fn(body, content_type)


def test_accepts_exactly_the_row_limit() -> None:
    batch = inference.input_fn("5.1,3.5,1.4,0.2\n" * inference.MAX_ROWS, "text/csv")

    assert batch.shape == (inference.MAX_ROWS, 4)


def test_rejects_a_body_over_the_size_limit() -> None:
    body = b" " * inference.MAX_BODY_BYTES + b"[5.1, 3.5, 1.4, 0.2]"

    with pytest.raises(InvalidInputError, match="bytes; at most"):
        inference.input_fn(body, "application/json")


@pytest.mark.parametrize("content_type", ["image/png", "application/octet-stream", "text/plain"])
def test_rejects_unsupported_content_types_as_415(content_type: str) -> None:
    with pytest.raises(UnsupportedContentTypeError, match="is not supported") as raised:
        inference.input_fn(b"\x89PNG", content_type)

    assert raised.value.http_status == 415


@pytest.mark.parametrize("accept", ["text/csv", "image/png", "text/*"])
def test_rejects_unsupported_accept_as_406(accept: str) -> None:
    with pytest.raises(UnsupportedAcceptError, match="application/json") as raised:
        inference.output_fn([], accept)

    assert raised.value.http_status == 406


def test_predict_fn_checks_the_shape_of_its_input(model: IrisModel) -> None:
    with pytest.raises(InvalidInputError, match=r"shape \(1, 3\)"):
        inference.predict_fn(np.array([[1.0, 2.0, 3.0]]), model)


def test_every_request_error_is_a_value_error() -> None:
    for error_class in (InvalidInputError, UnsupportedContentTypeError, UnsupportedAcceptError):
        assert issubclass(error_class, RequestError)
        assert issubclass(error_class, ValueError)


def test_runs_in_the_scikit_learn_container() -> None:
    """The container runs Python 3.8 with scikit-learn 1.2: stdlib, numpy and sklearn only."""
    source = Path(inference.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 8))

    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])

    # sagemaker_inference only where the container has it (imported under try/except)
    assert imported - sys.stdlib_module_names <= {"numpy", "sklearn", "sagemaker_inference"}
    (guarded,) = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Try)
        and any(
            isinstance(item, ast.ImportFrom) and item.module == "sagemaker_inference.errors"
            for item in node.body
        )
    ]
    assert [ast.unparse(handler.type) for handler in guarded.handlers if handler.type] == [
        "ImportError"
    ]
    assert "__future__" in imported  # annotations stay strings, so 3.8 never evaluates them


@pytest.mark.parametrize(
    ("error_class", "status"),
    [(InvalidInputError, 400), (UnsupportedContentTypeError, 415), (UnsupportedAcceptError, 406)],
)
def test_request_errors_carry_their_status_as_the_inference_toolkit_reads_it(
    error_class: type[RequestError], status: int
) -> None:
    """sagemaker_inference's Transformer.handle_error reads status_code, phrase and message."""
    error = error_class("the body is empty")

    assert (error.status_code, error.http_status) == (status, status)
    assert error.message == error.phrase == "the body is empty"
    assert str(error) == "the body is empty"


def test_request_errors_are_the_toolkits_own_errors_where_it_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The toolkit tests isinstance(error, BaseInferenceToolkitError): a look-alike fails."""

    class BaseInferenceToolkitError(Exception):
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code, self.message, self.phrase = status_code, message, phrase
            super().__init__(status_code, message, phrase)

    errors = types.ModuleType("sagemaker_inference.errors")
    errors.BaseInferenceToolkitError = BaseInferenceToolkitError  # type: ignore[attr-defined]
    package = types.ModuleType("sagemaker_inference")
    package.errors = errors  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sagemaker_inference", package)
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", errors)
    spec = importlib.util.spec_from_file_location("inference_in_container", inference.__file__)
    assert spec is not None
    assert spec.loader is not None
    in_container = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(in_container)

    with pytest.raises(BaseInferenceToolkitError) as raised:
        in_container.input_fn("", "application/json")

    assert raised.value.status_code == 400
    assert raised.value.message == "the body is empty"
