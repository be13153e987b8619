"""The pruned botocore data every asset ships (``lambdas.common.pruned_models``): current, found
first, complete for every operation the functions call, and the same as botocore's full data
for what it keeps. (That it works on the Lambda runtime's older botocore:
``tests/unit/ingest/test_service_models.py``.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.loaders import create_loader
from botocore.model import Shape

from lambdas.common import pruned_models
from lambdas.common.pruned_models import (
    ENDPOINT_SERVICES,
    OPERATIONS,
    PRUNED_DATA_PATH,
    expected_files,
)
from lambdas.common.sessions import function_session

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
# What botocore itself calls for the functions' operations, never named in their code.
CALLED_BY_BOTOCORE = {"DescribeEndpoints", "HeadBucket", "CreateSession"}


def test_the_shipped_files_are_the_pinned_botocore_data_pruned() -> None:
    # Fails when constraints.txt moves botocore, or OPERATIONS changes: run
    # `python -m lambdas.common.pruned_models` and commit the files.
    expected = expected_files()
    shipped = {path for path in PRUNED_DATA_PATH.rglob("*") if path.is_file()}
    assert shipped == set(expected)
    for path, text in expected.items():
        assert path.read_text(encoding="utf-8") == text, path


def _called_in_code(operation_names: list[str]) -> set[str]:
    """Operations whose client method (``.put_item(``) or paginator (``"query"``) the
    functions' code names."""
    code = "\n".join(path.read_text(encoding="utf-8") for path in LAMBDAS.rglob("*.py"))
    found = set()
    for name in operation_names:
        method = botocore.xform_name(name)
        if re.search(rf"\.{method}\(|get_paginator\(\s*[\"']{method}[\"']", code):
            found.add(name)
    return found


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_every_operation_the_functions_call_is_kept(service: str) -> None:
    full = create_loader().load_service_model(service, "service-2")
    called = _called_in_code(list(full["operations"]))
    assert called, "the scan found no call at all: it is broken"
    assert called <= set(OPERATIONS[service]), "add them to pruned_models.OPERATIONS"
    assert set(OPERATIONS[service]) - called <= CALLED_BY_BOTOCORE, "kept but never called"


def _shape_tree(shape: Shape | None, seen: frozenset[str] = frozenset()) -> Any:
    """A shape as comparable data: its serialization, and its members' trees (recursive
    shapes stop at the repeat)."""
    if shape is None:
        return None
    if shape.name in seen:
        return shape.name
    seen = seen | {shape.name}
    tree: dict[str, Any] = {"name": shape.name, "serialization": shape.serialization}
    tree["metadata"] = shape.metadata
    if shape.type_name == "structure":
        tree["members"] = {
            name: _shape_tree(member, seen)
            for name, member in shape.members.items()  # type: ignore[attr-defined]
        }
    elif shape.type_name == "list":
        tree["member"] = _shape_tree(shape.member, seen)  # type: ignore[attr-defined]
    elif shape.type_name == "map":
        tree["key"] = _shape_tree(shape.key, seen)  # type: ignore[attr-defined]
        tree["value"] = _shape_tree(shape.value, seen)  # type: ignore[attr-defined]
    return tree


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_each_kept_operation_is_as_botocore_defines_it(service: str) -> None:
    pruned = function_session([service]).get_service_model(service)
    full = botocore.session.get_session().get_service_model(service)
    assert pruned.metadata == full.metadata
    assert sorted(pruned.operation_names) == sorted(OPERATIONS[service])
    for name in OPERATIONS[service]:
        ours, theirs = pruned.operation_model(name), full.operation_model(name)
        assert ours.http == theirs.http
        assert ours.metadata == theirs.metadata
        assert ours.context_parameters == theirs.context_parameters
        assert ours.static_context_parameters == theirs.static_context_parameters
        assert ours.http_checksum == theirs.http_checksum
        assert _shape_tree(ours.input_shape) == _shape_tree(theirs.input_shape)
        assert _shape_tree(ours.output_shape) == _shape_tree(theirs.output_shape)
        assert [_shape_tree(error) for error in ours.error_shapes] == [
            _shape_tree(error) for error in theirs.error_shapes
        ]


def test_the_endpoints_keep_every_partition_and_the_functions_services() -> None:
    pruned = function_session(ENDPOINT_SERVICES).get_component("data_loader").load_data("endpoints")
    full = create_loader().load_data("endpoints")
    assert [p["partition"] for p in pruned["partitions"]] == [
        p["partition"] for p in full["partitions"]
    ]
    for ours, theirs in zip(pruned["partitions"], full["partitions"], strict=True):
        assert {key: value for key, value in ours.items() if key != "services"} == {
            key: value for key, value in theirs.items() if key != "services"
        }
        assert ours["services"] == {
            name: entry for name, entry in theirs["services"].items() if name in ENDPOINT_SERVICES
        }
    assert "s3" in pruned["partitions"][0]["services"]


def test_a_session_loads_the_pruned_files() -> None:
    loader = function_session(["s3"]).get_component("data_loader")
    _, path = loader.load_data_with_path("endpoints")
    assert Path(path) == PRUNED_DATA_PATH / "endpoints"
    _, path = loader.load_data_with_path("s3/2006-03-01/service-2")
    assert Path(path) == PRUNED_DATA_PATH / "s3" / "2006-03-01" / "service-2"


def test_pruning_keeps_every_shape_an_operation_reaches() -> None:
    model = {
        "metadata": {"apiVersion": "1"},
        "documentation": "gone",
        "operations": {
            "Kept": {"input": {"shape": "In"}, "errors": [{"shape": "Oops"}]},
            "Dropped": {"input": {"shape": "Other"}},
        },
        "shapes": {
            "In": {"type": "structure", "members": {"a": {"shape": "List"}}},
            "List": {"type": "list", "member": {"shape": "Map"}},
            "Map": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "In"}},
            "S": {"type": "string", "documentation": "gone"},
            "Oops": {"type": "structure", "members": {}, "exception": True},
            "Other": {"type": "structure", "members": {}},
        },
    }
    pruned = pruned_models.pruned_model(model, ("Kept",))
    assert set(pruned["operations"]) == {"Kept"}
    assert set(pruned["shapes"]) == {"In", "List", "Map", "S", "Oops"}
    assert "documentation" not in pruned_models.render(pruned)
