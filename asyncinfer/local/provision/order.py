"""The order CloudFormation creates a template's resources in, and what exists by then.

CloudFormation infers a resource's dependencies from ``Ref``, ``Fn::GetAtt`` and the
``${Name}`` / ``${Name.Attribute}`` references of ``Fn::Sub`` anywhere in its properties
(through ``Fn::If``, ``Fn::Join`` and any other nesting), plus its ``DependsOn``; nothing else
orders two resources, and resources without a path between them are created in parallel
(CloudFormation user guide, "DependsOn attribute": "resources that don't have dependencies are
created in parallel"). A cycle is refused ("Circular dependency between resources").

So a resource may count, at its creation, only on its transitive dependencies: anything else
may be created after it (``dependencies_of``).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator, Mapping
from typing import Any

from asyncinfer.local.provision.template import TemplateError

_SUB_REFERENCE = re.compile(r"\$\{([^}!][^}]*)\}")


def _sub_references(argument: Any, resources: Mapping[str, Any]) -> Iterator[str]:
    """``Fn::Sub``: its variables' values, and each ``${Name}`` / ``${Name.Attribute}`` of the
    text that is not one of its variables (``${!Literal}`` is text)."""
    text, variables = (argument, {}) if isinstance(argument, str) else argument
    yield from _references(variables, resources)
    for expression in _SUB_REFERENCE.findall(str(text)):
        target = expression.split(".", 1)[0]
        if expression not in variables and target in resources:
            yield target


def _references(value: Any, resources: Mapping[str, Any]) -> Iterator[str]:
    """The logical ids of the resources ``value`` refers to, however deeply nested."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item, resources)
        return
    if not isinstance(value, Mapping):
        return
    if len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref":
            if isinstance(argument, str) and argument in resources:
                yield argument
            return
        if name == "Fn::GetAtt":
            target = argument[0] if isinstance(argument, list) else str(argument).split(".")[0]
            if target in resources:
                yield target
            if isinstance(argument, list):  # the attribute name may itself be a Ref
                yield from _references(argument[1:], resources)
            return
        if name == "Fn::Sub":
            yield from _sub_references(argument, resources)
            return
    for item in value.values():
        yield from _references(item, resources)


def direct_dependencies(resources: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Logical id -> the resources it names (Ref, GetAtt, Sub) or lists in ``DependsOn``."""
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        named = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        unknown = sorted(named - set(resources))
        if unknown:
            raise TemplateError(f"{logical_id} DependsOn unknown resources: {', '.join(unknown)}")
        found = set(_references(resource.get("Properties", {}), resources))
        graph[logical_id] = (named | found) - {logical_id}
    return graph


def creation_order(graph: Mapping[str, set[str]]) -> list[str]:
    """A topological order (dependencies first; ties by logical id, so always the same one).

    Raises ``TemplateError`` naming the resources of a cycle, as CloudFormation refuses it."""
    waiting = {logical_id: len(dependencies) for logical_id, dependencies in graph.items()}
    dependents: dict[str, list[str]] = {logical_id: [] for logical_id in graph}
    for logical_id, dependencies in graph.items():
        for dependency in dependencies:
            dependents[dependency].append(logical_id)
    ready = [logical_id for logical_id, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        logical_id = heapq.heappop(ready)
        order.append(logical_id)
        for dependent in dependents[logical_id]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) < len(graph):
        stuck = sorted(logical_id for logical_id, count in waiting.items() if count > 0)
        raise TemplateError(f"Circular dependency between resources: {', '.join(stuck)}")
    return order


class CreationOrder:
    """The template's dependency graph: the creation order and each resource's dependencies."""

    def __init__(self, resources: Mapping[str, Mapping[str, Any]]) -> None:
        self._graph = direct_dependencies(resources)
        self.order = creation_order(self._graph)
        self._closure: dict[str, frozenset[str]] = {}
        for logical_id in self.order:  # dependencies come first, so their closure is known
            closure: set[str] = set()
            for dependency in self._graph[logical_id]:
                closure |= {dependency, *self._closure[dependency]}
            self._closure[logical_id] = frozenset(closure)

    def dependencies_of(self, logical_id: str) -> frozenset[str]:
        """What CloudFormation has created, whatever it parallelizes, when it creates this."""
        return self._closure[logical_id]
