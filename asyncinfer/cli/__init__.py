"""The user's command line: ``python -m asyncinfer`` (see ``app``).

Where code goes:

* ``commands/``: one module per typer command, named for it (``submit.py``, ``status.py``,
  ``results.py``, ``fetch.py``, ``watch.py``, ``redrive.py``, ``reconcile.py``, ``backfill.py``,
  ``demo.py``, ``local.py``): its options and its flow. What only one command uses sits beside
  it as ``<command>_<what>.py`` (``submit_upload.py``, ``submit_view.py``, ``watch_stats.py``,
  ...); ``backfill``, ``reconcile``'s repair, also uses the ``reconcile_*`` modules. What several
  commands share is ``commands/common.py``. A command never imports another command's module.
* ``access/``: the CLI's data access, where its AWS calls are made, each inside
  ``clients.calling`` (which turns an SDK error into the CLI's): ``clients.py`` (the sessions
  and clients), ``stacks.py`` (a stack's outputs), ``table.py`` (the results table),
  ``status_index.py`` (layout 2's sharded status index), ``objects.py`` (S3 uploads and
  downloads), ``versions.py`` (the input bucket's object versions), ``messaging.py`` (SQS
  queues, Lambda invocations). One command keeps its own clients: ``demo``, which talks to the
  local mode it has just started.
* the modules beside this one, shared by every command: ``app.py`` (the typer app, the global
  options, the commands' registration), ``context.py`` (what a command runs with: the target
  and the access objects), ``target.py`` (which pipeline: a stack or local mode),
  ``render.py`` (how records and messages look), ``timewindow.py`` (``--since``/``--until``)
  and ``errors.py`` (exit codes, one-line errors; ``access/`` uses it too).

Imports go one way: ``app`` -> ``commands/`` -> ``context``, ``target``, ``render``,
``timewindow`` -> ``access/`` -> ``errors``. Only ``app`` imports ``commands/``;
``tests/unit/cli/test_layout.py`` checks the rule.
"""
