"""Functions keep to themselves: no ``lambdas/<fn>`` imports another (what two share lives in
``lambdas/common``, which imports no function), and ``lambdas/`` has no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"


def module_name(path: Path) -> str:
    parts = path.relative_to(LAMBDAS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every ``lambdas.*`` module the file imports, deferred and type-only imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] == "lambdas"}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) for path in LAMBDAS.rglob("*.py")}


def package_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_no_function_imports_another_and_common_imports_no_function() -> None:
    crossings = sorted(
        f"{module} imports {imported}"
        for module, imports in import_graph().items()
        for imported in imports
        if package_of(imported) not in ("common", "", package_of(module))
    )
    assert crossings == []


def test_lambdas_have_no_import_circle() -> None:
    graph = import_graph()
    circles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                circles.append([*path[path.index(imported) :], imported])
            elif imported not in state and imported in graph:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_graph_sees_imports() -> None:
    """The checks above would pass on an empty graph: the reconciler's own imports show."""
    graph = import_graph()
    assert "lambdas.common.outcomes" in graph["lambdas.reconciler.logic"]
    assert "lambdas.reconciler.clients" in graph["lambdas.reconciler.handler"]
