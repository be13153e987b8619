"""Fixtures shared by every test folder: in-process moto, the results table's schema, and
one synthesis per CDK context for the whole session. Also how the tests share three pytest-xdist
workers (``make test``), and the reliability suite's summary line, which is printed by whichever
process reports the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import bench.table
from asyncinfer.local.provision.synth import SHARED_CACHE_VARIABLE
from lambdas.common.contract import INDEX_KEYS

REGION = "us-east-1"
TABLE_NAME = "results"


def create_results_table(client: Any, table_name: str = TABLE_NAME) -> None:
    """The table as the stack defines it, with the indexes of both layouts (as during the
    migration, steps 1a to 1c): tests read either layout from the same writes."""
    bench.table.create_results_table(client, table_name, tuple(INDEX_KEYS))


@pytest.fixture(scope="session", autouse=True)
def shared_synth_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Local mode starts in a fresh state folder per test or module; each would synthesize the
    same app again (a Node.js start-up and cdk-nag: 10-20 s on two cores). One cloud assembly
    per sources digest and context serves the whole session, copied into each state folder.
    Under ``make test`` the controller made the folder (``pytest_configure``) and the workers
    inherit it."""
    inherited = os.environ.get(SHARED_CACHE_VARIABLE)
    if inherited:
        yield Path(inherited)
        return
    folder = tmp_path_factory.mktemp("synth-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SHARED_CACHE_VARIABLE, str(folder))
        yield folder


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, so nothing can ever reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def moto_aws(aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(moto_aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    create_results_table(client)
    return client


os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AsyncInference")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


# With ``-n 3 --dist loadscope`` (make test): the tests that start whole local pipelines
# (processes, timing-sensitive waits) form one scope, so one worker runs them one at a time in
# collection order; the two that spend most of their minutes waiting for the endpoint's minimum
# TTL (60 s) to pass before the reconciler may call a request expired (the fault run, the soak's
# scenario on a few dozen files, and the reconciler's run) are a scope of their own on a second
# worker, and the third takes the unit and infra tests, a module at a time (an infra module
# synthesizes once). The two pipeline scopes go out first, whatever their size. pytest-xdist's own
# --dist loadgroup cannot do this here: it renames node ids through an attribute pytest 9 no
# longer reads.
SERIAL_PREFIXES = ("tests/e2e/", "tests/reliability/")
# ... except the bench's smoke run, which times nothing (its docstring) and is the longest set-up
# of tests/e2e: a scope of its own, so the worker that runs the unit and infra tests takes it
# (scopes go out largest first: it comes after the big unit modules) instead of the critical path.
OWN_SCOPES = ("tests/e2e/test_bench_smoke.py",)
# The create-mode package reads one synthesis of the stack without context (a package-scoped
# fixture, tests/infra/create_mode/conftest.py): one scope, so one worker synthesizes.
ONE_SYNTHESIS = ("tests/infra/create_mode/",)
ONE_SYNTHESIS_SCOPE = "create-mode-one-synthesis"
WAITING_FOR_TTL = ("tests/reliability/test_faults.py", "tests/reliability/test_reconciler.py")
TTL_SCOPE = "local-pipelines-waiting-for-the-ttl"
SERIAL_SCOPE = "local-pipelines"
FIRST_SCOPES = (TTL_SCOPE, SERIAL_SCOPE)
RELIABILITY_SUPPORT = "tests.reliability.support"
SUMMARY_KEY = "reliability_summary"


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hooks: absent without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class PipelinesFirst(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(WAITING_FOR_TTL):
                return TTL_SCOPE
            if nodeid.startswith(SERIAL_PREFIXES) and not nodeid.startswith(OWN_SCOPES):
                return SERIAL_SCOPE
            if nodeid.startswith(ONE_SYNTHESIS):
                return ONE_SYNTHESIS_SCOPE
            return str(super()._split_scope(nodeid))

        def _assign_work_unit(self, node: Any) -> None:
            for scope in reversed(FIRST_SCOPES):  # the work queue is an OrderedDict
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return PipelinesFirst(config, log)


PRESYNTH = pytest.StashKey[tuple[Path, "subprocess.Popen[bytes]"]]()


def _runs_local_pipelines(config: pytest.Config) -> bool:
    """Whether the run's paths include the local-pipeline tests (``make test``: all of them)."""
    for argument in config.args:
        path = Path(argument.split("::")[0]).resolve()
        relative = (
            path.relative_to(config.rootpath).as_posix()
            if path.is_relative_to(config.rootpath)
            else ""
        )
        if relative in (".", "tests") or f"{relative}/".startswith(SERIAL_PREFIXES):
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    """The xdist controller (``make test``) synthesizes the local pipelines' contexts ahead
    of the worker that runs them (tests/presynth.py), into a cache the workers inherit."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if os.environ.get(SHARED_CACHE_VARIABLE) or not _runs_local_pipelines(config):
        return
    from tests import presynth

    cache = Path(tempfile.mkdtemp(prefix="synth-cache-"))
    os.environ[SHARED_CACHE_VARIABLE] = str(cache)
    config.stash[PRESYNTH] = (cache, presynth.start(cache))


def pytest_unconfigure(config: pytest.Config) -> None:
    started = config.stash.get(PRESYNTH, None)
    if started is None:
        return
    from tests import presynth

    cache, process = started
    presynth.stop(process)
    os.environ.pop(SHARED_CACHE_VARIABLE, None)
    shutil.rmtree(cache, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its reliability counts to the controller, which prints them."""
    support = sys.modules.get(RELIABILITY_SUPPORT)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and support is not None:
        workeroutput[SUMMARY_KEY] = support.SUMMARY.counts()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    counts = getattr(node, "workeroutput", {}).get(SUMMARY_KEY)
    if counts:
        from tests.reliability.support import SUMMARY

        SUMMARY.add(**counts)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The reliability suite's totals at the end of the run, with or without ``-s``."""
    support = sys.modules.get(RELIABILITY_SUPPORT)
    if support is not None and support.SUMMARY.files:
        terminalreporter.write_line(support.SUMMARY.line())
