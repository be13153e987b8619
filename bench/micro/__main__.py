"""``python -m bench.micro PLAN_JSON OUT_JSON``: one child, measuring its plan's function."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from bench.micro.ingest import measure_ingest
from bench.micro.plan import Plan
from bench.micro.results import measure_results


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 2:
        raise SystemExit("usage: python -m bench.micro PLAN_JSON OUT_JSON")
    plan = Plan.model_validate_json(Path(arguments[0]).read_text())
    measured: BaseModel = (
        measure_ingest(plan) if plan.function == "ingest" else measure_results(plan)
    )
    Path(arguments[1]).write_text(measured.model_dump_json())


if __name__ == "__main__":
    main()
