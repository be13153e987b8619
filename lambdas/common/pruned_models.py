"""botocore data pruned to what the functions call, shipped in every asset for a faster cold start.

A function's first client parses botocore's ``endpoints.json`` (about 730 KB: every service in
every partition, for its legacy endpoint resolver), and each client parses its whole service
model: S3's is about 1.3 MB, DynamoDB's 0.5 MB, nearly all of it operations the functions never
call. Measured as the benchmark measures a cold start (import plus first invocation, CPU, fresh
interpreters), that parsing is about 29 ms of ingest's 250 ms and 18 ms of results' 210 ms.
So the asset carries, in ``lambdas/common/botocore_data/``:

- ``endpoints.json`` with every partition and region as botocore has them, and the services
  the functions create clients for (``ENDPOINT_SERVICES``) only;
- the ``service-2.json`` of DynamoDB and S3 with the operations of ``OPERATIONS`` only, each
  with every shape it reaches, their ``documentation`` strings left out (botocore only uses
  them for help text). ``OPERATIONS`` holds what the functions call, and what botocore itself calls
  for them: S3's ``HeadBucket`` (the region redirector asks where a bucket lives) and
  ``CreateSession`` (directory buckets), DynamoDB's ``DescribeEndpoints`` (endpoint discovery).

``lambdas.common.sessions.function_session`` searches this folder before ``AWS_DATA_PATH`` and
botocore's own data; endpoint rules, paginators, waiters and every other file still come from
the runtime's botocore. A client asked for an operation left out has no such method (an
``AttributeError`` at the call): ``tests/unit/test_pruned_models.py`` finds every operation
the functions' code calls and checks that it is kept, that each kept operation resolves to the
same shapes as in botocore's full model, and that the files are what the pinned botocore gives;
``python -m lambdas.common.pruned_models`` rewrites them. The SageMaker runtime's model is
shipped whole, by ingest (``lambdas.ingest.service_models``: it needs the 2026 members).

No import beyond the standard library and botocore (which the runtime provides).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.loaders import create_loader

PRUNED_DATA_PATH = Path(__file__).resolve().parent / "botocore_data"
_DOCUMENTATION = ("documentation", "documentationUrl")
# The services a function's botocore session may create clients for.
ENDPOINT_SERVICES = ("dynamodb", "s3", "sagemaker-runtime", "sqs")
OPERATIONS: dict[str, tuple[str, ...]] = {
    "dynamodb": (
        "BatchGetItem",
        "DescribeEndpoints",
        "GetItem",
        "PutItem",
        "Query",
        "TransactWriteItems",
        "UpdateItem",
    ),
    "s3": (
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
        "CreateMultipartUpload",
        "CreateSession",
        "GetObject",
        "HeadBucket",
        "HeadObject",
        "PutObject",
        "UploadPart",
    ),
}


def pruned_model(model: dict[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """``model`` with ``operations`` only and the shapes they reach, without documentation."""
    shapes = model["shapes"]
    reached: set[str] = set()
    pending = [
        reference["shape"]
        for name in operations
        for reference in _operation_references(model["operations"][name])
    ]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        shape = shapes[name]
        references = [shape.get(key) for key in ("member", "key", "value")]
        references += list(shape.get("members", {}).values())
        pending += [reference["shape"] for reference in references if reference]
    return without_documentation(
        {
            **model,
            "operations": {name: model["operations"][name] for name in operations},
            "shapes": {name: shape for name, shape in shapes.items() if name in reached},
        }
    )


def pruned_endpoints(endpoints: dict[str, Any], services: tuple[str, ...]) -> dict[str, Any]:
    """``endpoints.json`` with every partition whole but its services cut to ``services``."""
    return {
        **endpoints,
        "partitions": [
            {
                **partition,
                "services": {
                    name: entry for name, entry in partition["services"].items() if name in services
                },
            }
            for partition in endpoints["partitions"]
        ],
    }


def render(data: dict[str, Any]) -> str:
    """Compact (parsing is the cost saved), in botocore's order (some of its models are ordered
    mappings)."""
    return json.dumps(data, separators=(",", ":")) + "\n"


def expected_files() -> dict[Path, str]:
    """Each shipped file and its text, from the botocore installed here."""
    loader = create_loader()
    files = {
        PRUNED_DATA_PATH / "endpoints.json": render(
            pruned_endpoints(loader.load_data("endpoints"), ENDPOINT_SERVICES)
        )
    }
    for service, operations in OPERATIONS.items():
        model = loader.load_service_model(service, "service-2")
        version = model["metadata"]["apiVersion"]
        path = PRUNED_DATA_PATH / service / version / "service-2.json"
        files[path] = render(pruned_model(model, operations))
    return files


def _operation_references(operation: dict[str, Any]) -> list[dict[str, Any]]:
    references = [operation[key] for key in ("input", "output") if key in operation]
    return references + list(operation.get("errors", []))


def without_documentation(model: dict[str, Any]) -> dict[str, Any]:
    """A service model without the documentation of the service, its operations and shapes
    (botocore only uses those for help text). Other sections keep theirs: botocore reads the
    documentation of ``clientContextParams`` when it builds a client."""
    return {
        **{key: value for key, value in model.items() if key not in _DOCUMENTATION},
        "operations": {
            name: _stripped(operation) for name, operation in model["operations"].items()
        },
        "shapes": {name: _stripped(shape) for name, shape in model["shapes"].items()},
    }


def _stripped(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _stripped(value) for key, value in node.items() if key not in _DOCUMENTATION}
    if isinstance(node, list):
        return [_stripped(value) for value in node]
    return node


if __name__ == "__main__":
    for file, text in expected_files().items():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
        print(f"wrote {file} ({len(text):,} bytes)")
