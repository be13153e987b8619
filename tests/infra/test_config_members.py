"""The issue-14 settings: output_naming and inline_input_max_bytes."""

from __future__ import annotations

import pytest

from lambdas.common.contract import INLINE_INPUT_CAP_BYTES, OutputNaming
from stacks.config import ConfigError, StackConfig


def test_defaults_name_outputs_after_inputs_and_send_small_inputs_inline() -> None:
    config = StackConfig()
    assert config.output_naming is OutputNaming.INPUT
    assert config.inline_input_max_bytes == INLINE_INPUT_CAP_BYTES == 128_000


@pytest.mark.parametrize(
    ("context", "naming", "inline"),
    [
        ({"output_naming": "service"}, OutputNaming.SERVICE, 128_000),
        ({"inline_input_max_bytes": "0"}, OutputNaming.INPUT, 0),
        (
            {"inline_input_max_bytes": 4096, "output_naming": "input"},
            OutputNaming.INPUT,
            4096,
        ),
    ],
)
def test_accepted_values(context: dict[str, object], naming: OutputNaming, inline: int) -> None:
    config = StackConfig.from_context(context)
    assert config.output_naming is naming
    assert config.inline_input_max_bytes == inline


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"output_naming": "key"}, "accepted values: input, service"),
        ({"inline_input_max_bytes": "128001"}, "an integer from 0 to 128000"),
        ({"inline_input_max_bytes": "-1"}, "an integer from 0 to 128000"),
        ({"inline_input_max_bytes": "lots"}, "an integer from 0 to 128000"),
    ],
)
def test_refused_values_name_the_key(context: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        StackConfig.from_context(context)
    message = str(raised.value)
    assert next(iter(context)) in message
    assert expected in message
    assert "\n" not in message
