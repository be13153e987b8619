"""The handler benchmarks (figures 1-3), each run in a child process with its function's
environment: ``python -m bench.micro PLAN_JSON OUT_JSON`` (the plan names the function).

The child imports the real handler, feeds it real events (SQS messages that S3 sent for real
objects; SNS envelopes of the notifications the local runtime published) and times it against
a reference measured in the same process, interleaved with it, against the same servers. The
handler's log output (stdout) goes to a file, as it goes to CloudWatch Logs on AWS.

Between two timed runs the child waits until the local runtime has processed every accepted
request, so no run competes with the background work another run started.

The handler modules (and ``bench.naive``, which builds its clients at import) are imported
inside the measuring functions: the parent imports this module too, without a function's
environment.

Bare calls: the reference of the overhead figures is the exact list of calls the handler's
own logic makes for one record, recorded once through recording clients (``RecordingClient``)
and replayed for other records with their ids, keys and versions substituted. They go through
clients configured as the handler's (``create_clients`` and the results handler's client
config), so the only difference left is the handler around them.

Modules: ``plan`` (what a child measures and reports), ``replay`` (helpers both children
share), ``ingest`` and ``results`` (the two children), ``parent`` (runs them).
"""
