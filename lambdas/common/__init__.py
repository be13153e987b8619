"""Shared by both functions and bundled into each function's asset."""
