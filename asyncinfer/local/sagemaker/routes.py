"""The runtime's HTTP routes: ``InvokeEndpointAsync`` as botocore calls it, and the admin API
(``GET /_local/stats``, ``GET|POST /_local/faults``, ``POST /_local/reset``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.http_service import JSONRequestHandler, RequestBodyError
from asyncinfer.local.sagemaker import wire
from asyncinfer.local.sagemaker.wire import AcceptedInvocation, ApiError

ADMIN_PREFIX = "/_local"


class RuntimeApplication(Protocol):
    """What the routes call on the runtime they serve (``state.LocalRuntime``)."""

    @property
    def faults(self) -> FaultSettings: ...

    def update_faults(self, changes: Mapping[str, Any]) -> FaultSettings: ...

    def stats(self) -> dict[str, Any]: ...

    def reset_stats(self) -> None: ...

    def invoke_async(
        self, endpoint_name: str, headers: Mapping[str, str], body: bytes
    ) -> AcceptedInvocation: ...


class RuntimeRequestHandler(JSONRequestHandler):
    max_body_bytes = wire.MAX_INLINE_BODY_BYTES * 8

    @property
    def runtime(self) -> RuntimeApplication:
        runtime: RuntimeApplication = self.server.application
        return runtime

    def _request_id_header(self) -> dict[str, str]:
        return {"x-amzn-RequestId": str(uuid.uuid4())}

    def _send_error(self, error: ApiError) -> None:
        headers = {**error.headers(), **self._request_id_header()}
        self.send_json(error.status, error.body(), headers)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == f"{ADMIN_PREFIX}/stats":
            self.send_json(200, self.runtime.stats())
        elif path == f"{ADMIN_PREFIX}/faults":
            self.send_json(200, self.runtime.faults.model_dump(mode="json"))
        else:
            self._send_error(_unknown_operation("GET", path))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            body = self.read_body()
        except RequestBodyError as error:
            self._send_error(ApiError(wire.VALIDATION_ERROR, str(error), error.status))
            return
        if path.startswith(ADMIN_PREFIX + "/"):
            self._admin(path, body)
            return
        match = wire.INVOKE_PATH.fullmatch(path)
        if match is None:
            self._send_error(_unknown_operation("POST", path))
            return
        try:
            invocation = self.runtime.invoke_async(
                unquote(match["endpoint"]),
                {name: _utf8_header(value) for name, value in self.headers.items()},
                body,
            )
        except ApiError as error:
            self._send_error(error)
            return
        headers = {
            wire.OUTPUT_LOCATION_HEADER: invocation.output_location,
            wire.FAILURE_LOCATION_HEADER: invocation.failure_location,
            **self._request_id_header(),
        }
        self.send_json(202, {"InferenceId": invocation.inference_id}, headers)

    def _admin(self, path: str, body: bytes) -> None:
        runtime = self.runtime
        if path == f"{ADMIN_PREFIX}/reset":
            runtime.reset_stats()
            self.send_json(200, runtime.stats())
        elif path == f"{ADMIN_PREFIX}/faults":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of fault settings")
                faults = runtime.update_faults(changes)
            except (ValueError, ValidationError) as error:
                self.send_json(400, {"error": str(error)})
                return
            self.send_json(200, faults.model_dump(mode="json"))
        else:
            self.send_json(404, {"error": f"no admin resource {path}"})


def _utf8_header(value: str) -> str:
    """http.server reads header bytes as Latin-1; botocore sends non-ASCII values (an S3 key
    such as ``red flower ü.json`` in ``InputLocation``) as UTF-8, which SageMaker honours."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _unknown_operation(method: str, path: str) -> ApiError:
    return ApiError(wire.UNKNOWN_OPERATION, f"No operation matches {method} {path}.")
