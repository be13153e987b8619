"""The results function's metrics.

Outcomes are added to the handler's Powertools ``Metrics`` with the ``EndpointName``
dimension; ignored notifications concern no endpoint of ours and are emitted without it.
"""

from __future__ import annotations

from enum import StrEnum

ENDPOINT_DIMENSION = "EndpointName"


class Metric(StrEnum):
    INFERENCES_COMPLETED = "InferencesCompleted"
    INFERENCES_FAILED = "InferencesFailed"
    INFERENCE_LATENCY = "InferenceLatency"
    END_TO_END_LATENCY = "EndToEndLatency"
    TEST_NOTIFICATIONS_IGNORED = "TestNotificationsIgnored"
    UNKNOWN_ENDPOINT_IGNORED = "UnknownEndpointIgnored"
