"""X-Ray tracing of the handlers through Powertools' Tracer, built only when tracing is on.

``Tracer()`` imports the X-Ray SDK (and ``wrapt``), which costs a good part of an import of
boto3 at every cold start, even when ``POWERTOOLS_TRACE_DISABLED`` only makes the Tracer switch
the SDK off. So with tracing off no Tracer is built and the SDK is never imported.

With tracing on, only botocore is patched: every call the functions make goes through it, and
Powertools' default (patch every library the SDK knows: requests, httplib, sqlite3, ...) would
import those libraries at every cold start for nothing. The handler-level subsegment plus one
subsegment per AWS call is the whole trace; the functions add no method-level subsegments.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools.shared.constants import TRACER_DISABLED_ENV
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

Handler = TypeVar("Handler", bound=Callable[..., Any])

PATCHED_MODULES = ("botocore",)


def tracing_disabled() -> bool:
    """True when ``POWERTOOLS_TRACE_DISABLED`` says so (local mode sets it)."""
    return resolve_truthy_env_var_choice(env=os.getenv(TRACER_DISABLED_ENV, "false"))


def traced(function: Handler) -> Handler:
    """Powertools Tracer's ``capture_lambda_handler`` when tracing is on; else ``function``."""
    if tracing_disabled():
        return function
    from aws_lambda_powertools import Tracer

    tracer = Tracer(patch_modules=PATCHED_MODULES)
    return cast("Handler", tracer.capture_lambda_handler(function))
