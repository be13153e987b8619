"""Local mode's Lambda: the event runner and the worker processes that run the handlers.

``runner`` (``EventRunner``) composes the event sources, ``sqs``, ``sns`` and ``schedule``,
which implement ``source.EventSource``; ``event_shapes`` builds the Lambda events and records;
``pool`` (parent side) and ``worker`` (child side) are the execution environments; ``execution``
is what Lambda gives a function (ARN, environment, context object).
"""
