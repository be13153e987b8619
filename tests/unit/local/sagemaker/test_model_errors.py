"""The model server answers an entry point's exception as the container's serving stack does."""

from __future__ import annotations

import pytest

from asyncinfer.local.sagemaker.model_server import (
    FLASK_INTERNAL_SERVER_ERROR,
    ServingStack,
    error_response,
)
from asyncinfer.model.inference import (
    InvalidInputError,
    RequestError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)

MODEL_ERRORS = [
    (InvalidInputError("CSV row 1: 'abc' is not a number"), 400),
    (UnsupportedContentTypeError("content type 'image/png' is not supported"), 415),
    (UnsupportedAcceptError("accept 'text/csv' is not supported"), 406),
]


def raised(error: Exception) -> Exception:
    """The error with a traceback, as the server catches it."""
    try:
        raise error
    except Exception as caught:
        return caught


@pytest.mark.parametrize(("error", "status"), MODEL_ERRORS)
def test_the_deployed_scikit_learn_image_answers_500_whatever_the_error_carries(
    error: RequestError, status: int
) -> None:
    """sagemaker-containers wraps input_fn/predict_fn/output_fn in error_wrapper (ClientError)."""
    answer = error_response(raised(error), ServingStack.SAGEMAKER_CONTAINERS)

    assert answer == (500, FLASK_INTERNAL_SERVER_ERROR, "text/html; charset=utf-8")


def test_the_deployed_scikit_learn_image_answers_500_to_any_other_exception() -> None:
    status, body, _ = error_response(raised(KeyError("x")), ServingStack.SAGEMAKER_CONTAINERS)

    assert (status, body) == (500, FLASK_INTERNAL_SERVER_ERROR)


@pytest.mark.parametrize(("error", "status"), MODEL_ERRORS)
def test_the_inference_toolkit_answers_the_status_an_error_carries(
    error: RequestError, status: int
) -> None:
    """Transformer.handle_error: set_response_status(status_code), body "message\\ntrace"."""
    answer_status, body, content_type = error_response(
        raised(error), ServingStack.INFERENCE_TOOLKIT
    )

    assert answer_status == status == error.status_code
    message, trace = body.decode().split("\n", 1)
    assert message == error.message
    assert "Traceback" in trace
    assert content_type.startswith("text/plain")


def test_the_inference_toolkit_answers_500_with_the_text_of_any_other_exception() -> None:
    """GenericInferenceToolkitError(INTERNAL_SERVER_ERROR, str(e)) for anything else."""
    status, body, _ = error_response(raised(RuntimeError("kaboom")), ServingStack.INFERENCE_TOOLKIT)

    assert status == 500
    assert body.decode().startswith("kaboom\n")


def test_the_inference_toolkit_honours_any_status_of_its_own_error_shape() -> None:
    class GenericInferenceToolkitError(Exception):  # sagemaker_inference.errors' shape
        def __init__(self, status_code: int, message: str) -> None:
            self.status_code, self.message, self.phrase = status_code, message, message
            super().__init__(status_code, message, message)

    status, body, _ = error_response(
        raised(GenericInferenceToolkitError(422, "no")), ServingStack.INFERENCE_TOOLKIT
    )

    assert status == 422
    assert body.decode().startswith("no\n")
