"""Asynchronous invocations (SNS -> Lambda) run up to the function's concurrency, as on AWS:
its reserved concurrency, else the account's, within the local cap."""

from __future__ import annotations

import pytest

from asyncinfer.local.lambda_runner.runner import (
    LOCAL_ASYNC_CONCURRENCY_CAP,
    async_concurrency_of,
)
from asyncinfer.local.provision.spec import FunctionSpec


def function(reserved: int | None) -> FunctionSpec:
    return FunctionSpec(
        "results", "lambdas.results.handler.handler", {}, 10, 256, reserved_concurrency=reserved
    )


def test_a_function_without_reservation_gets_the_account_pool_up_to_the_local_cap() -> None:
    assert async_concurrency_of(function(None)) == LOCAL_ASYNC_CONCURRENCY_CAP > 4


@pytest.mark.parametrize("reserved", [1, 2, LOCAL_ASYNC_CONCURRENCY_CAP - 1])
def test_a_reserved_concurrency_below_the_cap_is_the_bound(reserved: int) -> None:
    assert async_concurrency_of(function(reserved)) == reserved


def test_a_reserved_concurrency_above_the_cap_is_capped() -> None:
    assert async_concurrency_of(function(500)) == LOCAL_ASYNC_CONCURRENCY_CAP
