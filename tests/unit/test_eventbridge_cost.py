from __future__ import annotations

import pytest

from bench.cost import eventbridge_cost_per_million


def test_eventbridge_adds_a_dollar_forty_per_million_files() -> None:
    cost = eventbridge_cost_per_million()
    assert cost.events_in == 0.0
    assert cost.events_out == pytest.approx(1.40)
    assert cost.total == pytest.approx(1.40)
    # a detail above 64 KB is billed as two chunks on both sides
    assert eventbridge_cost_per_million(event_detail_bytes=65 * 1024).total == pytest.approx(2.80)
