"""The pipeline as a CDK construct for your own app (needs the ``cdk`` extra).

``pip install "asyncinfer[cdk]"``, then::

    from asyncinfer.construct import AsyncInferencePipeline, StackConfig
"""

from stacks.config import ConfigError, EventSourceChoice, StackConfig
from stacks.pipeline import AsyncInferencePipeline

__all__ = ["AsyncInferencePipeline", "ConfigError", "EventSourceChoice", "StackConfig"]
