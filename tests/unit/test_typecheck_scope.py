"""mypy reads only the aws_cdk modules the checked code uses (pyproject.toml: the rest are
skipped, as Any, to keep a fresh clone's typecheck short). A module used but not listed would be
Any without a word: every ``aws_cdk`` module the checked code imports must be listed."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def mypy_settings() -> dict[str, object]:
    settings: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "mypy"
    ]
    return settings


def read_cdk_modules() -> set[str]:
    overrides = mypy_settings()["overrides"]
    assert isinstance(overrides, list)
    return {
        module
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
    }


def imported_cdk_modules() -> dict[str, str]:
    """Every aws_cdk module the checked files import -> one file that imports it."""
    files = mypy_settings()["files"]
    assert isinstance(files, list)
    found: dict[str, str] = {}
    for entry in files:
        path = ROOT / entry
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                    if node.module == "aws_cdk":  # from aws_cdk import aws_s3 as s3
                        names += [f"aws_cdk.{a.name}" for a in node.names if a.name[0].islower()]
                for name in names:
                    if name == "aws_cdk" or name.startswith("aws_cdk."):
                        found.setdefault(name, str(source.relative_to(ROOT)))
    return found


def test_every_aws_cdk_module_the_code_imports_is_type_checked() -> None:
    imported = imported_cdk_modules()
    assert "aws_cdk.aws_lambda" in imported  # the scan sees the stacks' imports
    missing = {name: where for name, where in imported.items() if name not in read_cdk_modules()}
    assert missing == {}, "add these to pyproject.toml's aws_cdk list"


def test_the_list_names_only_modules_in_use() -> None:
    assert read_cdk_modules() - set(imported_cdk_modules()) == set()
