"""The results function's settings: read from the environment once, validated, then passed down.

Each field's alias is its environment variable (``lambdas.common.contract.Env``); see
``lambdas.common.environment`` for how they are loaded. They are the settings of recording an
outcome (``lambdas.common.outcomes.OutcomeConfig``), which the reconciler reads too.
"""

from __future__ import annotations

from lambdas.common.contract import Service
from lambdas.common.outcomes import OutcomeConfig


class ResultsConfig(OutcomeConfig):
    function = Service.RESULTS
