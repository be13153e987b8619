"""Shared by the functions (ingest, results, reconciler) and bundled into each function's asset."""
