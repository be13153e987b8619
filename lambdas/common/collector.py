"""Pausing the garbage collector while a container builds what it keeps for its life.

A cold start allocates mostly long-lived objects: modules, classes, pydantic schemas, botocore's
service models and clients. The collector's passes over them find nothing to free, and they
cost a cold start tens of milliseconds of CPU (bench/RESULTS.md, cold imports). So each handler
pauses the collector during its import, and builds its first invocation's collaborators (the
Tracer, the clients, the processors) in functions decorated with ``collector_paused()``; what
was built is then frozen (``gc.freeze()``: left out of every later collection) and collection
resumes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collection while the block (or the decorated function) runs; what exists at its end
    is frozen. For what a container builds once (under ``functools.cache``): each use freezes
    every object alive at that moment, garbage cycles included."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
