"""A function's botocore session loads the models of its own services only."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import UnknownServiceError

from lambdas.common.pruned_models import PRUNED_DATA_PATH
from lambdas.common.sessions import function_session


def test_the_session_lists_the_functions_services_without_walking_the_sdk() -> None:
    session = function_session(["s3", "dynamodb", "s3"])
    loader = session.get_component("data_loader")
    assert loader.list_available_services("service-2") == ["dynamodb", "s3"]
    assert session.get_available_services() == ["dynamodb", "s3"]


def test_a_client_of_a_listed_service_is_botocores_own() -> None:
    client = function_session(["dynamodb"]).create_client("dynamodb", region_name="us-east-1")
    assert client.meta.service_model.service_name == "dynamodb"
    assert "PutItem" in client.meta.service_model.operation_names


def test_a_service_the_function_does_not_call_is_unknown() -> None:
    with pytest.raises(UnknownServiceError):
        function_session(["dynamodb"]).create_client("sqs", region_name="us-east-1")


def test_the_first_search_paths_and_the_pruned_data_come_before_aws_data_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", os.pathsep.join(["/opt/a", "/opt/b"]))
    session = function_session(["s3"], first_search_paths=["/opt/first"])
    assert session.get_component("data_loader").search_paths[:4] == [
        "/opt/first",
        str(PRUNED_DATA_PATH),
        "/opt/a",
        "/opt/b",
    ]


def test_a_service_the_pruned_endpoints_lack_is_refused() -> None:
    with pytest.raises(ValueError, match="ENDPOINT_SERVICES"):
        function_session(["lambda"])
