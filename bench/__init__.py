"""Benchmarks of the pipeline, as ratios measured side by side in one run (``make bench``).

The machine is shared and noisy, so no figure is an absolute time: each one divides the
pipeline's time by the time of a reference measured in the same run, interleaved with it, and
reports medians, in rounds: a figure with a goal reports its worst round. ``python -m bench``
runs every benchmark, prints one line per figure (``bench: NAME=VALUE (goal OP X)``) and writes
``bench/RESULTS.md``.

Modules: ``settings`` (sizes of a run), ``figures`` (a measured figure and its goal),
``measure`` (timing, medians, CPU of process trees, profiles), ``stack`` (the local AWS APIs,
model server and SageMaker runtime for the handler benchmarks), ``micro`` (the handler
benchmarks, run in a child process with the function's environment), ``naive`` and ``naive_results``
(the reference handlers public samples write), ``coldstart`` and ``first_call`` (import times,
first invocations and asset sizes), ``throughput``
(the whole pipeline in local mode), ``listing`` (the CLI's ``results`` at any table size, on a
results table ``table`` creates as the stack declares it), ``cost`` (dollars per million files)
and ``report``.
"""
