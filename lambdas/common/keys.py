"""Which object keys the pipeline infers: the ingest function's filter, which a job's entries
also pass through (an entry ingest would never infer fails at once instead of waiting).

Standard library only: it ships in every function's asset (``lambdas/common``).
"""

from __future__ import annotations

from collections.abc import Sequence


def key_selected(key: str, prefixes: Sequence[str], suffixes: Sequence[str]) -> bool:
    """Both filters must pass; an empty filter passes every key (S3's own filter rules)."""
    prefix_ok = not prefixes or key.startswith(tuple(prefixes))
    suffix_ok = not suffixes or key.endswith(tuple(suffixes))
    return prefix_ok and suffix_ok


def under_jobs_prefix(key: str, jobs_prefix: str) -> bool:
    """Objects under ``jobs_prefix`` (manifests) are never inferred; "" means no jobs."""
    return bool(jobs_prefix) and key.startswith(jobs_prefix)
