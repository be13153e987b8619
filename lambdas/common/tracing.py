"""X-Ray tracing of the handlers through Powertools' Tracer, built only when tracing is on, and
only when the first invocation arrives.

``Tracer()`` imports the X-Ray SDK (and ``wrapt``, which imports ``asyncio``): with tracing
off no Tracer is built and the SDK is never imported. With tracing on, the Tracer is built by
the container's first invocation rather than by the handler's import, which keeps the SDK off
the import path that every cold start's init phase measures (bench/RESULTS.md, cold imports);
the first invocation pays for it instead (the bench's first-invocation figure shows how much).
Nothing is lost: Lambda's own segment covers init either way, the SDK has nothing to trace
before the first invocation (the functions create their AWS clients in it), and the botocore
patch wraps botocore's client class, so it covers every client whenever it was created.

Only botocore is patched: every call the functions make goes through it, and Powertools'
default (patch every library the SDK knows: requests, httplib, sqlite3, ...) would import
those libraries at every cold start for nothing. The handler-level subsegment plus one
subsegment per AWS call is the whole trace; the functions add no method-level subsegments.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools.shared.constants import TRACER_DISABLED_ENV
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

from lambdas.common.collector import collector_paused

Handler = TypeVar("Handler", bound=Callable[..., Any])

PATCHED_MODULES = ("botocore",)


def tracing_disabled() -> bool:
    """True when ``POWERTOOLS_TRACE_DISABLED`` says so (local mode sets it)."""
    return resolve_truthy_env_var_choice(env=os.getenv(TRACER_DISABLED_ENV, "false"))


def traced(function: Handler) -> Handler:
    """Powertools Tracer's ``capture_lambda_handler`` when tracing is on, the Tracer built on
    the first call; else ``function`` itself."""
    if tracing_disabled():
        return function

    @functools.cache
    @collector_paused()
    def captured() -> Callable[..., Any]:
        from aws_lambda_powertools import Tracer

        tracer = Tracer(patch_modules=PATCHED_MODULES)
        return tracer.capture_lambda_handler(function)

    @functools.wraps(function)
    def handler(event: Any, context: Any) -> Any:
        return captured()(event, context)

    return cast("Handler", handler)
