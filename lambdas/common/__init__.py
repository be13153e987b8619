"""Shared by the three functions and bundled into each function's asset."""
