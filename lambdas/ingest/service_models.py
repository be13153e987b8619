"""The SageMaker runtime model the ingest function ships, so old botocore sends new members.

The python3.13 Lambda runtime includes a boto3/botocore that predates the 2026 members of
``InvokeEndpointAsync`` (``S3OutputPathExtension``, ``Filename``, the inline ``Body``). botocore
is data-driven: a client serializes exactly the members its service model lists, and rejects
any other parameter before sending anything. So instead of bundling a whole newer botocore
(about 25 MB unpacked, most of it other services' models, and seconds of extra upload per
deploy), the function ships the one model file it needs:

    lambdas/ingest/botocore_data/sagemaker-runtime/2017-05-13/service-2.json

and puts that folder first in its botocore session's loader search path (``botocore_session``
below, a ``lambdas.common.sessions`` session, which loads the models of the function's services
only). botocore looks a model up in its search paths in order, so this copy wins over the
runtime's own for the same API version, whatever ``AWS_DATA_PATH`` says (a configured
``AWS_DATA_PATH`` is still searched, after the bundled folder). Everything else (endpoint
rules, partitions, other services) still comes from the runtime's botocore.

The file is the ``sagemaker-runtime`` model of the botocore pinned in ``constraints.txt``, with
``documentation`` strings removed (they are about two thirds of its size and botocore never
reads them when sending). ``python -m lambdas.ingest.service_models`` rewrites it from the
installed botocore; ``tests/unit/ingest/test_service_models.py`` checks that it matches and that
a client built on the Lambda runtime's botocore sends the new members.

No import beyond the standard library and botocore (which the runtime provides).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import botocore.session
from botocore.loaders import create_loader

from lambdas.common.pruned_models import without_documentation
from lambdas.common.sessions import function_session

SERVICE_NAME = "sagemaker-runtime"
API_VERSION = "2017-05-13"
BUNDLED_DATA_PATH = Path(__file__).resolve().parent / "botocore_data"
BUNDLED_MODEL = BUNDLED_DATA_PATH / SERVICE_NAME / API_VERSION / "service-2.json"
# The members the pipeline needs that older botocore models lack.
REQUIRED_MEMBERS = ("S3OutputPathExtension", "Filename", "Body")


def botocore_session(services: Iterable[str] = (SERVICE_NAME,)) -> botocore.session.Session:
    """A new botocore session for ``services`` whose models are looked up in the bundled
    folder first (then ``AWS_DATA_PATH``, then botocore's own).

    ``lambdas.ingest.clients.create_clients`` creates the function's clients on it.
    """
    return function_session(services, first_search_paths=[str(BUNDLED_DATA_PATH)])


def installed_model() -> dict[str, Any]:
    """The ``sagemaker-runtime`` model of the botocore installed here (not the bundled one)."""
    model: dict[str, Any] = create_loader().load_service_model(
        SERVICE_NAME, "service-2", API_VERSION
    )
    return model


def render(model: dict[str, Any]) -> str:
    return json.dumps(without_documentation(model), indent=1, sort_keys=True) + "\n"


def main() -> None:
    model = installed_model()
    members = model["shapes"]["InvokeEndpointAsyncInput"]["members"]
    missing = [name for name in REQUIRED_MEMBERS if name not in members]
    if missing:
        raise SystemExit(f"the installed botocore's model lacks {', '.join(missing)}")
    BUNDLED_MODEL.parent.mkdir(parents=True, exist_ok=True)
    BUNDLED_MODEL.write_text(render(model), encoding="utf-8")
    print(f"wrote {BUNDLED_MODEL} ({BUNDLED_MODEL.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
