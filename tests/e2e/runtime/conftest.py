"""The local runtime tests' fixtures: one local AWS and one demo model server for the package (as
when the tests were one module), the toolkit-served model for the tests that need it, and a
gated model and a runtime factory per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from asyncinfer.local.sagemaker.model_server import ModelServer, ServingStack
from tests.e2e.runtime.support import (
    Aws,
    GatedModel,
    RuntimeFactory,
    gated_model_server,
    local_aws,
    model_server,
    runtime_factory,
)


@pytest.fixture(scope="package")
def aws() -> Iterator[Aws]:
    with local_aws() as started:
        yield started


@pytest.fixture(scope="package")
def demo_model() -> Iterator[ModelServer]:
    with model_server() as server:
        yield server


@pytest.fixture(scope="package")
def toolkit_model() -> Iterator[ModelServer]:
    """The demo model behind the inference toolkit's serving stack, which answers a model's
    client error with its own status: the path where SageMaker reports a 4xx from the model."""
    with model_server(serving_stack=ServingStack.INFERENCE_TOOLKIT) as server:
        yield server


@pytest.fixture
def gated_model() -> Iterator[tuple[GatedModel, ModelServer]]:
    with gated_model_server() as gated:
        yield gated


@pytest.fixture
def make_runtime(aws: Aws, demo_model: ModelServer) -> Iterator[RuntimeFactory]:
    with runtime_factory(aws, demo_model) as make:
        yield make
