"""botocore sessions for functions that know which services they call.

botocore's loader checks every model it loads against ``list_available_services``, which lists
the directories of every search path: over 400 services in the SDK the Lambda runtime ships,
walked once per model type a client loads (``service-2`` and ``endpoint-rule-set-1``). That is
about 20 ms of CPU at every cold start, spent to answer a question whose answer the function
knows: it calls two or three services, fixed by its code. ``function_session`` registers a
loader (botocore's own, the documented ``data_loader`` component) that answers with those
services; everything else it loads as botocore does, from the same search paths. Asking it for
any other service fails as botocore fails for a service it lacks (``UnknownServiceError``).
The search paths begin with the asset's pruned botocore data (``lambdas.common.pruned_models``).

No import beyond the standard library and botocore (which the runtime provides).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import botocore.session
from botocore.loaders import Loader

from lambdas.common.pruned_models import ENDPOINT_SERVICES, PRUNED_DATA_PATH


class FunctionLoader(Loader):
    """botocore's loader, told the services the function calls."""

    def __init__(self, services: Iterable[str], search_paths: Iterable[str] = ()) -> None:
        super().__init__(extra_search_paths=list(search_paths))
        self._services = sorted(set(services))

    def list_available_services(self, type_name: str) -> list[str]:
        return list(self._services)


def function_session(
    services: Iterable[str], *, first_search_paths: Iterable[str] = ()
) -> botocore.session.Session:
    """A new botocore session that loads the models of ``services`` only.

    Its loader searches ``first_search_paths``, then the pruned data the asset ships, then what
    ``AWS_DATA_PATH`` configures (as botocore's own loader does), then botocore's data.
    """
    services = tuple(services)
    unknown = sorted(set(services) - set(ENDPOINT_SERVICES))
    if unknown:
        raise ValueError(
            f"{unknown}: not in the pruned endpoints.json; add them to "
            "lambdas.common.pruned_models.ENDPOINT_SERVICES and regenerate its files"
        )
    session = botocore.session.get_session()
    configured = session.get_config_variable("data_path") or ""
    paths = [
        *first_search_paths,
        str(PRUNED_DATA_PATH),
        *(path for path in configured.split(os.pathsep) if path),
    ]
    session.register_component("data_loader", FunctionLoader(services, paths))
    return session
