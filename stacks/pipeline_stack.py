"""The whole pipeline as one stack: storage, endpoint, ingest, results, monitoring, outputs."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import StackConfig
from stacks.endpoint import AsyncEndpoint, EndpointTarget, imported_endpoint
from stacks.ingest import Ingest
from stacks.monitoring import Monitoring
from stacks.notifications import EndpointTopics, Topics, imported_topics
from stacks.reconciler import Reconciler
from stacks.results import Results
from stacks.storage import (
    FAILURE_PREFIX,
    INPUT_LOCATION_INDEX,
    OUTPUT_PREFIX,
    STATUS_INDEX,
    Storage,
)


class AsyncInferenceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        model_source_dir: Path,
        build_dir: Path,
    ) -> None:
        """``model_source_dir``: the demo model's code; ``build_dir``: where its archive goes."""
        super().__init__(
            scope,
            construct_id,
            description="Serverless pipeline around a SageMaker asynchronous inference endpoint",
        )
        storage = Storage(self, "Storage", config=config)
        self.storage = storage
        self.endpoint: AsyncEndpoint | None = None
        topics: Topics
        target: EndpointTarget
        if storage.output_bucket is not None:
            endpoint_topics = EndpointTopics(self, "Notifications")
            self.endpoint = AsyncEndpoint(
                self,
                "Endpoint",
                config=config,
                input_bucket=storage.input_bucket,
                output_bucket=storage.output_bucket,
                topics=endpoint_topics,
                model_source_dir=model_source_dir,
                build_dir=build_dir,
            )
            topics, target = endpoint_topics.topics, self.endpoint.target
            output_bucket: s3.IBucket | None = storage.output_bucket
            output_prefix = f"{OUTPUT_PREFIX}/"
        else:
            if config.endpoint_name is None:  # StackConfig requires it in import mode
                raise ValueError("import mode needs endpoint_name")
            topics = imported_topics(self, config)
            target = imported_endpoint(self, config.endpoint_name)
            output_bucket = (
                s3.Bucket.from_bucket_name(self, "OutputBucket", config.output_bucket_name)
                if config.output_bucket_name
                else None
            )
            output_prefix = ""  # the imported endpoint's own config names its output prefix
        self.ingest = Ingest(
            self,
            "Ingest",
            config=config,
            input_bucket=storage.input_bucket,
            table=storage.table,
            endpoint=target,
        )
        self.results = Results(
            self,
            "Results",
            config=config,
            table=storage.table,
            topics=topics,
            endpoint_name=target.name,
            output_bucket=output_bucket,
            output_prefix=output_prefix,
        )
        self.reconciler = Reconciler(
            self,
            "Reconciler",
            config=config,
            table=storage.table,
            endpoint_name=target.name,
            output_bucket=output_bucket,
            object_prefixes=[output_prefix, f"{FAILURE_PREFIX}/"] if output_prefix else [""],
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            ingest_queue=self.ingest.queue,
            dead_letter_queues={
                "IngestDeadLetterQueue": self.ingest.dead_letter_queue,
                "SuccessDeadLetterQueue": self.results.success_dead_letter_queue,
                "ErrorDeadLetterQueue": self.results.error_dead_letter_queue,
                "ResultsFailureQueue": self.results.failure_queue,
            },
            functions={
                "Ingest": self.ingest.function,
                "Results": self.results.function,
                "Reconciler": self.reconciler.function,
            },
            endpoint_name=target.name,
        )
        self.monitoring.watch_reconciler(target.name)

        outputs = {
            "InputBucketName": storage.input_bucket.bucket_name,
            "ResultsTableName": storage.table.table_name,
            "InputLocationIndexName": INPUT_LOCATION_INDEX,
            "StatusIndexName": STATUS_INDEX,
            "IngestQueueUrl": self.ingest.queue.queue_url,
            "IngestDeadLetterQueueUrl": self.ingest.dead_letter_queue.queue_url,
            "SuccessTopicArn": topics.success.topic_arn,
            "ErrorTopicArn": topics.error.topic_arn,
            "SuccessDeadLetterQueueUrl": self.results.success_dead_letter_queue.queue_url,
            "ErrorDeadLetterQueueUrl": self.results.error_dead_letter_queue.queue_url,
            "ResultsFailureQueueUrl": self.results.failure_queue.queue_url,
            "ResultsFunctionName": self.results.function.function_name,
            "IngestFunctionName": self.ingest.function.function_name,
            "ReconcilerFunctionName": self.reconciler.function.function_name,
            "EndpointName": target.name,
        }
        if output_bucket is not None:
            outputs["OutputBucketName"] = output_bucket.bucket_name
        if self.endpoint is not None:
            outputs["OutputPath"] = self.endpoint.output_path
            outputs["FailurePath"] = self.endpoint.failure_path
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
