"""The model server on loopback: the SageMaker container contract around the demo model."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from asyncinfer.local.sagemaker.model_server import (
    FLASK_INTERNAL_SERVER_ERROR,
    ModelServer,
    ServingStack,
)
from tests.e2e.children import running_module

pytestmark = pytest.mark.e2e

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
SETOSA_CSV = b"5.1,3.5,1.4,0.2\n"


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    model_server = ModelServer(port=0)
    model_server.start()
    assert model_server.wait_until_ready(60)
    yield model_server
    model_server.stop()


@pytest.fixture(scope="module")
def toolkit_server() -> Iterator[ModelServer]:
    model_server = ModelServer(port=0, serving_stack=ServingStack.INFERENCE_TOOLKIT)
    model_server.start()
    assert model_server.wait_until_ready(60)
    yield model_server
    model_server.stop()


def request(
    server: ModelServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_ping_answers_200_once_loaded(server: ModelServer) -> None:
    status, _, body = request(server, "GET", "/ping")

    assert status == 200
    assert json.loads(body) == {"status": "healthy"}


def test_invocations_run_the_demo_model(server: ModelServer) -> None:
    status, headers, body = request(
        server,
        "POST",
        "/invocations",
        json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.9, 3.2, 5.7, 2.3]]}).encode(),
        {"Content-Type": "application/json", "Accept": "application/json"},
    )

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    predictions = json.loads(body)["predictions"]
    assert [prediction["label"] for prediction in predictions] == ["setosa", "virginica"]


def test_custom_attributes_are_echoed(server: ModelServer) -> None:
    attributes = "trace-id=abc123; tenant=7"

    status, headers, body = request(
        server,
        "POST",
        "/invocations",
        SETOSA_CSV,
        {"Content-Type": "text/csv", CUSTOM_ATTRIBUTES: attributes},
    )

    assert status == 200
    assert headers[CUSTOM_ATTRIBUTES] == attributes
    assert json.loads(body)["predictions"][0]["label"] == "setosa"


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"5.1,3.5\n", {"Content-Type": "text/csv"}, 400, "expected 4 values"),
        (b"{broken", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b"", {"Content-Type": "application/json"}, 400, "the body is empty"),
        (b"\x89PNG", {"Content-Type": "image/png"}, 415, "is not supported"),
        (SETOSA_CSV, {"Content-Type": "text/csv", "Accept": "text/csv"}, 406, "accept"),
    ],
)
def test_bad_requests_get_the_status_they_carry_from_the_inference_toolkit(
    toolkit_server: ModelServer, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    answer, response_headers, response = request(
        toolkit_server, "POST", "/invocations", body, {**headers, CUSTOM_ATTRIBUTES: "k=v"}
    )

    assert answer == status
    assert message in response.decode().split("\n", 1)[0]
    assert response_headers[CUSTOM_ATTRIBUTES] == "k=v"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"5.1,3.5\n", {"Content-Type": "text/csv"}),
        (b"\x89PNG", {"Content-Type": "image/png"}),
        (SETOSA_CSV, {"Content-Type": "text/csv", "Accept": "text/csv"}),
    ],
)
def test_bad_requests_are_500_as_in_the_deployed_scikit_learn_image(
    server: ModelServer, body: bytes, headers: dict[str, str]
) -> None:
    """sagemaker-containers re-raises every entry point error as ClientError: Flask's 500."""
    answer, response_headers, response = request(
        server, "POST", "/invocations", body, {**headers, CUSTOM_ATTRIBUTES: "k=v"}
    )

    assert answer == 500
    assert response == FLASK_INTERNAL_SERVER_ERROR
    assert response_headers["Content-Type"].startswith("text/html")
    assert response_headers[CUSTOM_ATTRIBUTES] == "k=v"


def test_unknown_paths_are_404(server: ModelServer) -> None:
    assert request(server, "GET", "/health")[0] == 404
    assert request(server, "POST", "/predict", SETOSA_CSV)[0] == 404


def test_keeps_connections_alive(server: ModelServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _ in range(3):
            connection.request(
                "POST", "/invocations", body=SETOSA_CSV, headers={"Content-Type": "text/csv"}
            )
            response = connection.getresponse()
            assert response.status == 200
            response.read()
    finally:
        connection.close()


class SlowLoadingModel:
    """An entry point whose model loads when the test says so, and fails on demand."""

    def __init__(self) -> None:
        self.loaded = threading.Event()

    def model_fn(self, model_dir: str) -> str:
        assert self.loaded.wait(10)
        return "model"

    def input_fn(self, input_data: bytes, content_type: str | None) -> bytes:
        return input_data

    def predict_fn(self, data: Any, model: Any) -> Any:
        if data == b"explode":
            raise RuntimeError("kaboom")
        return data

    def output_fn(self, prediction: Any, accept: str | None) -> bytes:
        return bytes(prediction)


def test_ping_is_503_until_the_model_loads() -> None:
    entry_point = SlowLoadingModel()
    model_server = ModelServer(port=0, entry_point=entry_point)
    model_server.start()
    try:
        assert request(model_server, "GET", "/ping")[0] == 503
        assert request(model_server, "POST", "/invocations", b"x")[0] == 503

        entry_point.loaded.set()

        assert model_server.wait_until_ready(10)
        assert request(model_server, "GET", "/ping")[0] == 200
        status, headers, body = request(
            model_server, "POST", "/invocations", b"raw", {"Accept": "application/x-raw"}
        )
        assert (status, headers["Content-Type"], body) == (200, "application/x-raw", b"raw")
    finally:
        entry_point.loaded.set()
        model_server.stop()


@pytest.mark.parametrize("serving_stack", list(ServingStack))
def test_unexpected_model_errors_are_500(serving_stack: ServingStack) -> None:
    entry_point = SlowLoadingModel()
    entry_point.loaded.set()
    model_server = ModelServer(port=0, entry_point=entry_point, serving_stack=serving_stack)
    model_server.start()
    try:
        assert model_server.wait_until_ready(10)

        status, _, body = request(model_server, "POST", "/invocations", b"explode")

        assert status == 500
        if serving_stack is ServingStack.INFERENCE_TOOLKIT:
            assert body.decode().startswith("kaboom\n")
        else:
            assert body == FLASK_INTERNAL_SERVER_ERROR
    finally:
        model_server.stop()


def test_a_failed_load_is_reported_by_ping() -> None:
    class BrokenModel(SlowLoadingModel):
        def model_fn(self, model_dir: str) -> str:
            raise FileNotFoundError(model_dir)

    model_server = ModelServer(port=0, model_dir="/nowhere", entry_point=BrokenModel())
    model_server.start()
    try:
        assert not model_server.wait_until_ready(10)
        status, _, body = request(model_server, "GET", "/ping")
        assert status == 500
        assert "/nowhere" in json.loads(body)["error"]
    finally:
        model_server.stop()


def test_stop_leaves_no_thread_even_with_idle_keep_alive_connections() -> None:
    before = set(threading.enumerate())
    model_server = ModelServer(port=0)
    model_server.start()
    assert model_server.wait_until_ready(60)
    idle = http.client.HTTPConnection("127.0.0.1", model_server.port, timeout=10)
    idle.request("GET", "/ping")
    idle.getresponse().read()

    model_server.stop()

    idle.close()
    assert [thread.name for thread in set(threading.enumerate()) - before] == []


def test_runs_as_a_module_and_stops_on_sigterm() -> None:
    module = "asyncinfer.local.sagemaker.model_server"
    with running_module(module, "--port", "0") as (process, port):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/invocations", SETOSA_CSV, {"Content-Type": "text/csv"})
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["predictions"][0]["label"] == "setosa"
        connection.close()

        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the model server did not stop within 10 s of SIGTERM")
        # 0, not -SIGTERM: the signal is handled and the server shuts down cleanly.
        assert returncode == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
