"""Turns a run's measurements into figures, the printed lines and ``bench/RESULTS.md``."""

from __future__ import annotations

from bench import cost
from bench.layout_report import dynamodb_section
from bench.run import Report
from bench.sections import (
    cold_imports,
    context_section,
    figure_table,
    how_handlers_are_measured,
    how_the_rest_is_measured,
    pipeline_runs,
    preamble,
    service_model_section,
    where_the_time_goes,
)
from bench.verdicts import cost_assumptions, cost_levers, cost_table, goals_missed, quantity

# --- text -------------------------------------------------------------------------------


def cost_table_text(rows: list[cost.Row]) -> str:
    """The cost model as a plain-text table (printed by ``make bench``)."""
    header = f"{'component':<30} {'per file (ours / naive)':>28} {'$/M ours':>10} {'$/M naive':>10}"
    lines = [header, "-" * len(header)]
    for row in rows:
        quantities = f"{quantity(row.ours_per_file)} / {quantity(row.naive_per_file)} {row.unit}"
        lines.append(
            f"{row.component:<30} {quantities:>28} {row.ours_dollars:>10.3f} "
            f"{row.naive_dollars:>10.3f}"
        )
    ours, naive = cost.totals(rows)
    lines.append("-" * len(header))
    lines.append(f"{'total':<30} {'':>28} {ours:>10.3f} {naive:>10.3f}")
    return "\n".join(lines)


def render(report: Report) -> str:
    figures = report.figures()
    sections = [
        preamble(report.settings.rounds),
        context_section(report),
        ["## Figures", "", *figure_table(figures), ""],
        how_handlers_are_measured(report),
        how_the_rest_is_measured(report),
        where_the_time_goes(report),
        cold_imports(report.cold),
        service_model_section(report.service_model),
        pipeline_runs(report.e2e_rounds),
        cost_table(report),
        cost_assumptions(report),
        cost_levers(report),
        dynamodb_section(report),
        goals_missed(report, figures),
    ]
    return "\n".join(line for section in sections for line in section) + "\n"
