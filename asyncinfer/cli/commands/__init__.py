"""One module per command of the ``asyncinfer`` CLI, its helpers beside it as
``<command>_<what>.py``; ``asyncinfer.cli.app`` registers them (the rule: ``asyncinfer.cli``)."""
