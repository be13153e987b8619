"""The CLI's rule of where code goes (``asyncinfer/cli/__init__.py``), checked on the tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import asyncinfer.cli
from asyncinfer.cli.app import app

ROOT = Path(asyncinfer.cli.__file__).parent
PACKAGE = "asyncinfer.cli"
BELOW_ACCESS = {f"{PACKAGE}.errors"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported(module: str) -> set[str]:
    """The CLI modules ``module`` imports, including those imported only for type checking."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module in MODULES:
                found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if f"{node.module}.{alias.name}" in MODULES
            )
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
    found.discard(module)
    return found


GRAPH = {module: imported(module) for module in MODULES}


def cycle_through(start: str) -> list[str] | None:
    """A chain of imports leading from ``start`` back to it, if there is one."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        module, chain = stack.pop()
        for dependency in GRAPH[module]:
            if dependency == start:
                return [*chain, start]
            if dependency not in seen:
                seen.add(dependency)
                stack.append((dependency, [*chain, dependency]))
    return None


def test_the_graph_sees_the_package() -> None:
    assert f"{PACKAGE}.access.table" in GRAPH[f"{PACKAGE}.context"]
    assert f"{PACKAGE}.commands.submit" in GRAPH[f"{PACKAGE}.app"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_itself_back(module: str) -> None:
    assert cycle_through(module) is None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(f"{PACKAGE}.access.")))
def test_access_imports_only_access_and_errors(module: str) -> None:
    outside = {
        m for m in GRAPH[module] if not m.startswith(f"{PACKAGE}.access") and m not in BELOW_ACCESS
    }
    assert not outside


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if not m.startswith(f"{PACKAGE}.commands"))
)
def test_only_the_app_imports_the_commands(module: str) -> None:
    commands = {m for m in GRAPH[module] if m.startswith(f"{PACKAGE}.commands")}
    assert not commands or module == f"{PACKAGE}.app"


def command_of(module: str) -> str:
    """``submit`` for ``commands.submit`` and ``commands.submit_view``."""
    return module.rsplit(".", 1)[1].split("_", 1)[0]


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith(f"{PACKAGE}.commands."))
)
def test_a_command_imports_only_its_own_helpers_and_the_shared_ones(module: str) -> None:
    own = command_of(module)
    allowed = {own, "common"} | ({"reconcile"} if own == "backfill" else set())
    others = {
        m
        for m in GRAPH[module]
        if m.startswith(f"{PACKAGE}.commands.") and command_of(m) not in allowed
    }
    assert not others


def test_every_command_lives_in_its_own_module() -> None:
    for info in app.registered_commands:
        assert info.callback is not None
        name = info.name or info.callback.__name__
        assert info.callback.__module__ == f"{PACKAGE}.commands.{name}"
    for group in app.registered_groups:
        assert group.typer_instance is not None
        assert group.name is not None
        for info in group.typer_instance.registered_commands:
            assert info.callback is not None
            assert info.callback.__module__ == f"{PACKAGE}.commands.{group.name}"
