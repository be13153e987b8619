"""Handlers for the event runner's tests: they record what they receive, then do as told.

Every import (a cold start) and every invocation appends one JSON line to
``$SPY_DIR/spy.jsonl``, so the test sees events, contexts, environments and worker pids.

Each message (an SQS body, or an SNS ``Message``) is a JSON instruction
``{"id": ..., "action": ..., "until": n, "hold": seconds}``. ``delivery`` is the message's
``ApproximateReceiveCount`` (SQS) or its attempt number (SNS, counted from the spy); an action
applies while ``delivery < until`` (always if ``until`` is absent):

* ``fail``: listed in ``batchItemFailures``; ``bogus``: the response names a message that is
  not in the batch; ``raise``: the handler raises; ``crash``: the worker exits at once;
  ``hang``: sleeps far past any timeout; ``hold``: does nothing else than stay in flight;
  ``log``: prints lines of every kind Lambda's level filter tells apart (``_log_lines``).

An active instruction with ``hold`` keeps the invocation in flight that many seconds before
it acts (with any action), and the number of invocations in flight at once is tracked in
``$SPY_DIR/concurrency.json``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SPY_DIR = Path(os.environ["SPY_DIR"])


@contextmanager
def _locked(name: str) -> Iterator[Path]:
    with (_SPY_DIR / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield _SPY_DIR / name
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _record(entry: dict[str, Any]) -> None:
    with _locked("spy.jsonl") as path, path.open("a", encoding="utf-8") as spy:
        spy.write(json.dumps(entry) + "\n")


def _attempts_so_far(message_id: str) -> int:
    with _locked("spy.jsonl") as path:
        lines = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if json.loads(line).get("sns_message_id") == message_id)


@contextmanager
def _in_flight() -> Iterator[None]:
    def change(delta: int) -> None:
        with _locked("concurrency.json") as path:
            state = json.loads(path.read_text()) if path.exists() else {"now": 0, "max": 0}
            state["now"] += delta
            state["max"] = max(state["max"], state["now"])
            path.write_text(json.dumps(state))

    change(+1)
    try:
        yield
    finally:
        change(-1)


_SPY_DIR.mkdir(parents=True, exist_ok=True)
_record({"kind": "init", "pid": os.getpid()})


def _invocation(event: dict[str, Any], context: Any, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "invocation",
        "pid": os.getpid(),
        "event": event,
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
        "environment": dict(os.environ),
        **extra,
    }


def _active(instruction: dict[str, Any], delivery: int) -> bool:
    return bool(delivery < instruction.get("until", delivery + 1))


def _log_lines() -> None:
    """JSON lines with a level and an RFC 3339 timestamp, one with a timestamp Lambda cannot
    read, a metrics document (no level), plain text and the root logger's lines."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    for level in ("DEBUG", "INFO", "ERROR"):
        print(json.dumps({"level": level, "timestamp": stamp, "message": f"spy {level}"}))
    print(json.dumps({"level": "ERROR", "timestamp": "yesterday", "message": "spy undated"}))
    print(json.dumps({"_aws": {"CloudWatchMetrics": []}, "spy_metric": 1}))
    print("spy plain text", flush=True)
    logging.getLogger("spy").debug("spy root debug")
    logging.getLogger("spy").warning("spy root warning")


def _act(instructions: list[tuple[dict[str, Any], int]]) -> None:
    """The whole-invocation actions (log, hold, hang, crash, raise), in that order."""
    active = [
        instruction for instruction, delivery in instructions if _active(instruction, delivery)
    ]
    actions = {instruction["action"] for instruction in active}
    if "log" in actions:
        _log_lines()
    hold = max((instruction.get("hold", 0) for instruction in active), default=0)
    if hold:
        with _in_flight():
            time.sleep(hold)
    if "hang" in actions:
        time.sleep(3600)
    if "crash" in actions:
        os._exit(3)
    if "raise" in actions:
        raise RuntimeError("told to raise")


def sqs_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record(_invocation(event, context))
    records = event["Records"]
    instructions = [
        (json.loads(record["body"]), int(record["attributes"]["ApproximateReceiveCount"]))
        for record in records
    ]
    print("handled", [instruction["id"] for instruction, _ in instructions], flush=True)
    _act(instructions)
    failures = [
        {"itemIdentifier": record["messageId"]}
        for record, (instruction, delivery) in zip(records, instructions, strict=True)
        if instruction["action"] == "fail" and _active(instruction, delivery)
    ]
    if any(
        instruction["action"] == "bogus" and _active(instruction, delivery)
        for instruction, delivery in instructions
    ):
        failures.append({"itemIdentifier": "not-a-message-of-this-batch"})
    return {"batchItemFailures": failures}


def sns_handler(event: dict[str, Any], context: Any) -> None:
    notification = event["Records"][0]["Sns"]
    _record(_invocation(event, context, sns_message_id=notification["MessageId"]))
    attempt = _attempts_so_far(notification["MessageId"])
    _act([(json.loads(notification["Message"]), attempt)])
