"""The results table's layout steps (docs/operations.md, "Migrating the results table"): each step's
template, and that a deployed table can walk from layout 1 to layout 2 by ``cdk deploy``
alone, because consecutive steps create or delete exactly one global secondary index and
never change one in place (CloudFormation/DynamoDB: one GSI created or deleted per update)."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest

from bench.table import create_results_table
from stacks.config import TableLayout
from stacks.storage import LAYOUT_INDEXES, read_indexes
from tests.infra.assembly import Synthesized, synthesize

STEPS = [
    TableLayout.V1,
    TableLayout.ADD_STATUS_SHARD,
    TableLayout.DROP_STATUS,
    TableLayout.ADD_INPUT_KEYS,
    TableLayout.V2,
]
# The documented shapes, as literals (docs/records.md, "The record"), not the implementation's
# tables.
EXPECTED = {
    "by_input_location": ("input_location", "created_at", "ALL"),
    "by_status": ("status", "updated_at", "ALL"),
    "by_input_keys": ("input_location", "created_at", "KEYS_ONLY"),
    "by_status_shard": ("status_shard", "status_time", "KEYS_ONLY"),
}


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[TableLayout, Synthesized]:
    return {
        step: synthesize(
            {"table_layout": step.value}, tmp_path_factory.mktemp(f"layout-{step.value}") / "out"
        )
        for step in STEPS
    }


def table(stack: Synthesized) -> dict[str, Any]:
    return stack.properties(stack.output_target("ResultsTableName"))


def indexes(stack: Synthesized) -> dict[str, dict[str, Any]]:
    return {index["IndexName"]: index for index in table(stack)["GlobalSecondaryIndexes"]}


def shape(index: dict[str, Any]) -> tuple[str, str, str]:
    keys = {key["KeyType"]: key["AttributeName"] for key in index["KeySchema"]}
    return keys["HASH"], keys["RANGE"], index["Projection"]["ProjectionType"]


def test_layout_2_is_the_default_for_new_stacks(steps: dict[TableLayout, Synthesized]) -> None:
    default = synthesize({}, steps[TableLayout.V2].outdir.parent / "default")
    assert indexes(default) == indexes(steps[TableLayout.V2])


@pytest.mark.parametrize("step", STEPS, ids=[step.value for step in STEPS])
def test_each_step_has_its_indexes_with_the_documented_keys_and_projection(
    steps: dict[TableLayout, Synthesized], step: TableLayout
) -> None:
    found = indexes(steps[step])
    assert set(found) == set(LAYOUT_INDEXES[step])
    assert {name: shape(index) for name, index in found.items()} == {
        name: EXPECTED[name] for name in found
    }
    defined = {a["AttributeName"] for a in table(steps[step])["AttributeDefinitions"]}
    used = {"inference_id"} | {key for name in found for key in EXPECTED[name][:2]}
    assert defined == used  # CloudFormation rejects attribute definitions no key uses


@pytest.mark.parametrize(("before", "after"), list(pairwise(STEPS)))
def test_consecutive_steps_create_or_delete_exactly_one_index_and_change_none(
    steps: dict[TableLayout, Synthesized], before: TableLayout, after: TableLayout
) -> None:
    old, new = indexes(steps[before]), indexes(steps[after])
    assert len(set(old) ^ set(new)) == 1
    for name in set(old) & set(new):  # a changed key or projection is a delete plus a create
        assert json.dumps(old[name], sort_keys=True) == json.dumps(new[name], sort_keys=True)


@pytest.mark.parametrize("step", STEPS, ids=[step.value for step in STEPS])
def test_readers_are_pointed_at_indexes_that_exist_and_are_complete(
    steps: dict[TableLayout, Synthesized], step: TableLayout
) -> None:
    stack = steps[step]
    by_input, by_status = read_indexes(step)
    assert stack.output("InputLocationIndexName") == by_input
    assert stack.output("StatusIndexName") == by_status
    assert {by_input, by_status} <= set(indexes(stack))
    # an index added in this very step is still filling: nobody reads it yet
    previous = STEPS[STEPS.index(step) - 1] if step != TableLayout.V1 else step
    assert {by_input, by_status} <= set(LAYOUT_INDEXES[previous])
    function = stack.output_target("ReconcilerFunctionName")
    environment = stack.properties(function)["Environment"]["Variables"]
    assert environment["STATUS_INDEX"] == by_status


def test_the_table_the_tests_and_benchmarks_create_is_the_stacks(
    steps: dict[TableLayout, Synthesized],
) -> None:
    """``bench.table`` creates the results table for the tests and the listing benchmark
    outside a stack: it must be the table layout 2 declares, key, attributes and indexes."""

    requests: list[dict[str, Any]] = []

    class Recorder:
        def create_table(self, **request: Any) -> None:
            requests.append(request)

    create_results_table(Recorder(), "t", LAYOUT_INDEXES[TableLayout.V2])
    declared = table(steps[TableLayout.V2])
    [created] = requests
    assert created["KeySchema"] == declared["KeySchema"]
    assert created["BillingMode"] == declared["BillingMode"]

    def by_name(entries: list[dict[str, Any]], key: str) -> dict[str, Any]:
        return {entry[key]: entry for entry in entries}

    assert by_name(created["AttributeDefinitions"], "AttributeName") == by_name(
        declared["AttributeDefinitions"], "AttributeName"
    )
    assert by_name(created["GlobalSecondaryIndexes"], "IndexName") == by_name(
        declared["GlobalSecondaryIndexes"], "IndexName"
    )
