"""This repository's app: one stack holding the ``AsyncInferencePipeline`` construct."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Stack
from constructs import Construct

from stacks.config import StackConfig
from stacks.pipeline import DEMO_MODEL_SOURCE_DIR, AsyncInferencePipeline


class AsyncInferenceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        model_source_dir: Path = DEMO_MODEL_SOURCE_DIR,
        build_dir: Path | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Serverless pipeline around a SageMaker asynchronous inference endpoint",
        )
        # "Default": CDK leaves this id out of logical ids, so the stack's resources keep the
        # logical ids they had before the pipeline became a construct (no replacement).
        self.pipeline = AsyncInferencePipeline(
            self,
            "Default",
            config=config,
            model_source_dir=model_source_dir,
            build_dir=build_dir,
        )
        self.storage = self.pipeline.storage
        self.endpoint = self.pipeline.endpoint
        self.ingest = self.pipeline.ingest
        self.results = self.pipeline.results
        self.reconciler = self.pipeline.reconciler
        self.monitoring = self.pipeline.monitoring
        self.result_events = self.pipeline.result_events
        self.jobs = self.pipeline.jobs
