"""The create-mode tests read one template: the stack as `cdk deploy` makes it with no context,
synthesized once for the package (as when the tests were one module; a synthesis takes seconds,
and tests/conftest.py keeps the package on one xdist worker). No test changes it."""

from __future__ import annotations

import pytest

from tests.infra.assembly import Synthesized, synthesize
from tests.infra.create_mode.support import main_resource_ids


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize({}, tmp_path_factory.mktemp("create") / "cdk.out")


@pytest.fixture(scope="package")
def ids(stack: Synthesized) -> dict[str, str]:
    return main_resource_ids(stack)
