"""The pipeline as a CDK construct for your own app (needs the ``cdk`` extra).

From a clone (the package is not on PyPI): ``pip install ".[cdk]"``, then::

    from asyncinfer.construct import AsyncInferencePipeline, StackConfig
"""

from stacks.config import ConfigError, EventSourceChoice, StackConfig
from stacks.pipeline import AsyncInferencePipeline

__all__ = ["AsyncInferencePipeline", "ConfigError", "EventSourceChoice", "StackConfig"]
