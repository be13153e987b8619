"""`local up` and `demo` before anything starts: context options, and an installation
without the `local` extra (one line, 253, and not listed in --help)."""

from __future__ import annotations

import importlib

import pytest
from typer.testing import CliRunner

from asyncinfer.cli import app as app_module
from asyncinfer.cli import target
from asyncinfer.cli.commands.common import parse_context
from asyncinfer.cli.errors import CliError


def test_context_pairs_are_parsed_as_cdk_takes_them() -> None:
    assert parse_context(["max_concurrency=", "key_prefixes=a/,b/", "x=y=z"]) == {
        "max_concurrency": "",
        "key_prefixes": "a/,b/",
        "x": "y=z",
    }
    with pytest.raises(CliError) as raised:
        parse_context(["no-equals-sign"])
    assert raised.value.exit_code == 252


def test_a_bad_context_pair_is_a_usage_error_before_anything_starts() -> None:
    result = CliRunner().invoke(app_module.app, ["local", "up", "-c", "novalue"])

    assert result.exit_code == 252
    assert "invalid -c 'novalue': expected key=value" in result.stderr


@pytest.mark.parametrize("command", [["local", "up"], ["demo"]])
def test_without_the_local_extra_local_mode_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setattr(target, "LOCAL_EXTRA_MODULES", ("moto", "no_such_module_of_the_extra"))

    result = CliRunner().invoke(app_module.app, command)

    assert result.exit_code == 253
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "local mode needs the 'local' extra (no_such_module_of_the_extra" in lines[0]


def test_without_the_local_extra_help_does_not_list_local_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(target, "LOCAL_EXTRA_MODULES", ("no_such_module_of_the_extra",))
    try:
        reloaded = importlib.reload(app_module)
        listed = CliRunner().invoke(reloaded.app, ["--help"]).stdout
    finally:
        monkeypatch.undo()
        importlib.reload(app_module)

    section = listed.split("Commands:", 1)[1]
    commands = [line.split()[0] for line in section.splitlines() if line.strip()]
    assert "submit" in commands
    assert "demo" not in commands
    assert "local" not in commands
