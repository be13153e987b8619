"""IAM resource-policy evaluation for the policies local mode acts on (topics, queues).

moto evaluates identity policies but not resource policies (``moto.iam.access_control``: "TODO
add support for resource-based policies"). This is the part of IAM's evaluation logic the
stack's resource policies need: ``Action``/``Resource`` patterns, ``AWS`` (ARN, account, ``*``)
and ``Service`` principals, and the condition operators below. An operator outside that list
raises ``IamError`` rather than being guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from asyncinfer.local.provision.template import TemplateError


class IamError(TemplateError):
    """The template's IAM cannot work as it stands, or local mode cannot judge a policy."""


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value) is not None


_CONDITION_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringNotEquals": lambda expected, actual: actual != expected,
    "StringLike": _matches,
    "StringNotLike": lambda expected, actual: not _matches(expected, actual),
    "ArnEquals": lambda expected, actual: actual == expected,
    "ArnNotEquals": lambda expected, actual: actual != expected,
    "ArnLike": _matches,
    "ArnNotLike": lambda expected, actual: not _matches(expected, actual),
    "Bool": lambda expected, actual: actual.lower() == str(expected).lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    """IAM condition evaluation for the operators the stack's resource policies use.

    A key missing from ``context`` fails a positive operator and satisfies a negated one, as in
    IAM; an operator outside this list raises (a policy local mode cannot judge)."""
    for operator, entries in condition.items():
        test = _CONDITION_OPERATORS.get(operator)
        if test is None:
            raise IamError(f"local mode cannot evaluate the condition operator {operator}")
        for key, expected in entries.items():
            actual = context.get(key)
            if actual is None:
                if operator not in _NEGATED:
                    return False
                continue
            values = [str(value) for value in as_list(expected)]
            if operator in _NEGATED:
                if not all(test(value, actual) for value in values):
                    return False
            elif not any(test(value, actual) for value in values):
                return False
    return True


def _principal_matches(principal: Any, caller: Mapping[str, str]) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if "AWS" in principal:
        aws = [str(value) for value in as_list(principal["AWS"])]
        if "*" in aws or caller.get("arn") in aws:
            return True
        account_root = f"arn:aws:iam::{caller.get('account', '')}:root"
        if account_root in aws or caller.get("account") in aws:
            return True
    return caller.get("service") in as_list(principal.get("Service"))


def resource_policy_decision(
    policy: Mapping[str, Any],
    action: str,
    resource: str,
    caller: Mapping[str, str],
    context: Mapping[str, str],
) -> str:
    """``"deny"``, ``"allow"`` or ``"neutral"``: what a resource policy says about one call.

    ``caller`` has ``arn`` and ``account`` (an IAM principal) or ``service`` (a service
    principal); ``context`` holds the global condition keys (``aws:SourceArn``...)."""
    decision = "neutral"
    for statement in as_list(policy.get("Statement")):
        if not any(_matches(pattern, action) for pattern in as_list(statement.get("Action"))):
            continue
        resources = as_list(statement.get("Resource", "*"))
        if not any(_matches(str(pattern), resource) for pattern in resources):
            continue
        if not _principal_matches(statement.get("Principal"), caller):
            continue
        if not _condition_holds(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect") == "Deny":
            return "deny"
        decision = "allow"
    return decision
