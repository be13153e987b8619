"""Local-only changes to what the template says, for tests: a function's environment, and how
often the scheduled rules fire. On AWS neither exists: the template's values apply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from asyncinfer.local.processes import LocalModeError
from asyncinfer.local.provision.spec import FunctionSpec, LocalPipelineSpec


def with_function_environment(
    spec: LocalPipelineSpec, overrides: Mapping[str, Mapping[str, str]]
) -> LocalPipelineSpec:
    """The spec with each named function's environment updated by ``overrides[name]``."""
    known = {
        spec.ingest.function.name,
        *(source.function.name for source in spec.queues),
        *(source.function.name for source in spec.results),
        *(source.function.name for source in spec.schedules),
    }
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise LocalModeError(f"no function named {', '.join(unknown)} (known: {sorted(known)})")

    def updated(function: FunctionSpec) -> FunctionSpec:
        extra = overrides.get(function.name)
        if not extra:
            return function
        return replace(function, environment={**function.environment, **extra})

    return replace(
        spec,
        ingest=replace(spec.ingest, function=updated(spec.ingest.function)),
        queues=tuple(replace(source, function=updated(source.function)) for source in spec.queues),
        results=tuple(
            replace(source, function=updated(source.function)) for source in spec.results
        ),
        schedules=tuple(
            replace(source, function=updated(source.function)) for source in spec.schedules
        ),
    )


def with_schedule_period(
    spec: LocalPipelineSpec, period_seconds: float | None
) -> LocalPipelineSpec:
    """The spec with every schedule firing each ``period_seconds`` (None: as the template says).

    A local-only speed-up for tests: on AWS the rule's own rate applies."""
    if period_seconds is None:
        return spec
    if period_seconds <= 0:
        raise LocalModeError(f"schedule_period_seconds must be positive, got {period_seconds}")
    return replace(
        spec,
        schedules=tuple(
            replace(source, period_seconds=float(period_seconds)) for source in spec.schedules
        ),
    )
