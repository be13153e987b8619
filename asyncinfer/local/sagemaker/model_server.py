"""A model server honouring the SageMaker container contract, serving the demo model.

``GET /ping`` answers 200 once the model is loaded (503 while it loads, 500 if loading failed);
``POST /invocations`` runs the entry point's ``input_fn -> predict_fn -> output_fn`` on the body
with the request's ``Content-Type`` and ``Accept``. The ``X-Amzn-SageMaker-Custom-Attributes``
header is logged and echoed back, as a container may.

An exception of the entry point is answered as the container's serving stack answers it
(``ServingStack``; the model's message is logged either way, as the containers log it):

- ``sagemaker-containers`` (the default: what the stack deploys, the scikit-learn image
  serving one model with gunicorn and the sagemaker-containers Flask worker): every
  exception of a user-supplied input_fn/predict_fn/output_fn is re-raised as
  ``sagemaker_containers._errors.ClientError`` by ``_functions.error_wrapper`` and becomes
  Flask's generic 500 page, whatever status the error carries (aws/sagemaker-containers,
  src/sagemaker_containers/_transformer.py ``Transformer.__init__`` and
  ``_default_transform_fn``; aws/sagemaker-scikit-learn-container,
  src/sagemaker_sklearn_container/serving.py ``serving_entrypoint`` and ``main``). Its 415
  and 406 come only from the container's default input_fn/output_fn, which an entry point
  that defines its own never reaches.
- ``inference-toolkit`` (the SageMaker inference toolkit's model server: multi-model
  endpoints of that image and the toolkit-based framework images): an error carrying its own
  status (``BaseInferenceToolkitError``: ``status_code``, ``message``, ``phrase``) is answered
  with that status and ``"<message>\n<traceback>"``; any other exception with 500 and its
  text (aws/sagemaker-inference-toolkit, src/sagemaker_inference/transformer.py
  ``Transformer.transform`` and ``handle_error``). The demo model's errors carry 400, 415
  (content type) or 406 (accept).

Run it as ``python -m asyncinfer.local.sagemaker.model_server --port 8080`` (``--port 0`` picks a
free port); it prints ``READY <port>`` once ``/ping`` answers 200 and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import threading
import traceback
from enum import StrEnum
from typing import Any, Protocol

from asyncinfer.local.http_service import (
    JSONRequestHandler,
    LoopbackHTTPService,
    RequestBodyError,
    serve_until_signalled,
)
from asyncinfer.model import inference

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8080
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
MAX_REQUEST_BYTES = 100 * 1024 * 1024
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
# Flask's page for an unhandled exception in a view, as Werkzeug 2.0 writes it
# (HTTPException.get_body; the 1.2-1 image pins Flask 1.1.1 and Werkzeug 2.0.3 in its
# requirements.txt).
FLASK_INTERNAL_SERVER_ERROR = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
    b"<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n"
    b"<p>The server encountered an internal error and was unable to complete your request. "
    b"Either the server is overloaded or there is an error in the application.</p>\n"
)


class ServingStack(StrEnum):
    """How a SageMaker framework container turns an entry point's exception into HTTP."""

    SAGEMAKER_CONTAINERS = "sagemaker-containers"
    INFERENCE_TOOLKIT = "inference-toolkit"


def error_response(error: BaseException, serving_stack: ServingStack) -> tuple[int, bytes, str]:
    """``(status, body, content type)`` the container answers for an entry point's exception."""
    if serving_stack is ServingStack.SAGEMAKER_CONTAINERS:
        return 500, FLASK_INTERNAL_SERVER_ERROR, HTML
    trace = "".join(traceback.format_exception(error))
    status = _carried_status(error)
    if status is None:
        # GenericInferenceToolkitError(INTERNAL_SERVER_ERROR, str(e)): message then traceback
        return 500, f"{error}\n{trace}".encode(), TEXT
    message = getattr(error, "message", None)
    return status, f"{message if message is not None else error}\n{trace}".encode(), TEXT


def _carried_status(error: BaseException) -> int | None:
    """The status of a BaseInferenceToolkitError (the toolkit honours any status it carries)."""
    status = getattr(error, "status_code", None)
    has_shape = hasattr(error, "message") and hasattr(error, "phrase")
    return status if isinstance(status, int) and has_shape else None


class EntryPoint(Protocol):
    """The four functions of a SageMaker framework-container entry point (``inference.py``)."""

    def model_fn(self, model_dir: str) -> Any: ...

    def input_fn(self, input_data: bytes, content_type: str | None) -> Any: ...

    def predict_fn(self, data: Any, model: Any) -> Any: ...

    def output_fn(self, prediction: Any, accept: str | None) -> Any: ...


class ModelServer:
    """The container's HTTP contract around an entry point (the demo model by default)."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        model_dir: str = ".",
        entry_point: EntryPoint | None = None,
        serving_stack: ServingStack = ServingStack.SAGEMAKER_CONTAINERS,
    ) -> None:
        self.entry_point: EntryPoint = entry_point if entry_point is not None else inference
        self.serving_stack = serving_stack
        self.model_dir = model_dir
        self.model: Any = None
        self.load_error: str | None = None
        self._loaded = threading.Event()
        self._loader: threading.Thread | None = None
        self._http = LoopbackHTTPService(_ModelRequestHandler, self, host, port, "model-server")

    def start(self) -> None:
        """Binds the port and loads the model in the background; ``/ping`` says when it is done."""
        self._http.start()
        self._loader = threading.Thread(target=self._load, name="model-server-loader", daemon=True)
        self._loader.start()

    def wait_until_ready(self, timeout: float) -> bool:
        """True once the model is loaded; False on timeout or when loading failed."""
        return self._loaded.wait(timeout) and self.load_error is None

    @property
    def ready(self) -> bool:
        return self._loaded.is_set() and self.load_error is None

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    def stop(self) -> None:
        self._http.stop()
        if self._loader is not None:
            self._loader.join()
            self._loader = None

    def _load(self) -> None:
        try:
            self.model = self.entry_point.model_fn(self.model_dir)
        except Exception as error:
            logger.exception("loading the model failed")
            self.load_error = f"loading the model failed: {error}"
        self._loaded.set()

    def invoke(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> tuple[int, bytes, str]:
        """Runs the entry point; returns ``(status, body, content type)``, never raises."""
        try:
            data = self.entry_point.input_fn(body, content_type)
            prediction = self.entry_point.predict_fn(data, self.model)
            result = self.entry_point.output_fn(prediction, accept)
        except Exception as error:
            status, error_body, error_type = error_response(error, self.serving_stack)
            logger.info(
                "the model failed a request (%d, %s): %s: %s",
                status,
                self.serving_stack,
                type(error).__name__,
                error,
                exc_info=status >= 500,
            )
            return status, error_body, error_type
        response_body, response_type = _response(result, accept)
        return 200, response_body, response_type


def _response(result: Any, accept: str | None) -> tuple[bytes, str]:
    """``output_fn`` returns the body, or ``(body, content type)`` as the containers accept."""
    content_type = accept if accept and "*" not in accept and "," not in accept else JSON
    if isinstance(result, tuple):
        result, content_type = result[0], str(result[1])
    if isinstance(result, str):
        return result.encode("utf-8"), content_type
    return bytes(result), content_type


class _ModelRequestHandler(JSONRequestHandler):
    max_body_bytes = MAX_REQUEST_BYTES

    @property
    def model_server(self) -> ModelServer:
        server: ModelServer = self.server.application
        return server

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/ping":
            self.send_json(404, {"error": f"no such resource: {self.path}"})
            return
        model_server = self.model_server
        if model_server.load_error is not None:
            self.send_json(500, {"error": model_server.load_error})
        elif not model_server.ready:
            self.send_json(503, {"error": "the model is loading"})
        else:
            self.send_json(200, {"status": "healthy"})

    def do_POST(self) -> None:
        custom_attributes = self.headers.get(CUSTOM_ATTRIBUTES_HEADER)
        echo = {CUSTOM_ATTRIBUTES_HEADER: custom_attributes} if custom_attributes else {}
        try:
            body = self.read_body()
        except RequestBodyError as error:
            self.send_json(error.status, {"error": str(error)}, echo)
            return
        if self.path.split("?", 1)[0] != "/invocations":
            self.send_json(404, {"error": f"no such resource: {self.path}"}, echo)
            return
        model_server = self.model_server
        if not model_server.ready:
            self.send_json(503, {"error": model_server.load_error or "the model is loading"}, echo)
            return
        content_type = self.headers.get("Content-Type")
        accept = self.headers.get("Accept")
        logger.info(
            "invocation: %d bytes of %s, accept %s, custom attributes %r",
            len(body),
            content_type,
            accept,
            custom_attributes,
        )
        status, response_body, response_type = model_server.invoke(body, content_type, accept)
        self.send_body(status, response_body, response_type, echo)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The demo model behind the container contract.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--model-dir", default=".", help="passed to model_fn")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument(
        "--serving-stack",
        choices=[stack.value for stack in ServingStack],
        default=ServingStack.SAGEMAKER_CONTAINERS.value,
        help="whose error mapping to emulate (default: the deployed scikit-learn image's)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    server = ModelServer(
        port=args.port,
        host=args.host,
        model_dir=args.model_dir,
        serving_stack=ServingStack(args.serving_stack),
    )

    def loaded() -> None:
        if not server.wait_until_ready(args.ready_timeout):
            raise SystemExit(server.load_error or "the model did not load in time")

    serve_until_signalled(server, when_started=loaded)


if __name__ == "__main__":
    main()
