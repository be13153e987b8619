"""The reconciler's metrics.

Both are added once per run to the handler's Powertools ``Metrics``, with the ``EndpointName``
dimension the results function's outcomes carry (the alarm and the dashboard select it), zeros
included, so the alarm sees data points rather than gaps. The outcomes the reconciler records
from output or failure objects are also counted where every outcome is, in
``lambdas.common.outcomes`` (``InferencesCompleted``, ``InferencesFailed``).
"""

from __future__ import annotations

from enum import StrEnum

from lambdas.common.outcomes import ENDPOINT_DIMENSION

__all__ = ["ENDPOINT_DIMENSION", "Metric"]


class Metric(StrEnum):
    INFERENCES_SETTLED = "InferencesSettledByReconciler"  # completed, failed or expired
    INFERENCES_EXPIRED = "InferencesExpired"  # of which expired: nothing found by the deadline
