"""``AsyncInferencePipeline``: the whole pipeline as one construct, for this app or any other.

This repository's app wraps it in ``AsyncInferenceStack`` (stacks/pipeline_stack.py). Another
CDK app installs the package with the ``cdk`` extra (``pip install "asyncinfer[cdk]"``) and
adds it to a stack of its own::

    from asyncinfer.construct import AsyncInferencePipeline, StackConfig

    config = StackConfig(endpoint_mode="import", endpoint_name="my-endpoint", ...)
    AsyncInferencePipeline(stack, "Inference", config=config)

``config`` is the same validated model the app builds from CDK context (``StackConfig``;
``StackConfig.from_context`` for a mapping of strings). The Lambda code ships in the package
(``lambdas/``), so the construct bundles it wherever the package is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import CfnOutput, Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.common.contract import StackOutput
from stacks.config import StackConfig
from stacks.endpoint import AsyncEndpoint, EndpointTarget, imported_endpoint
from stacks.events_out import ResultEvents
from stacks.ingest import Ingest
from stacks.jobs import Jobs
from stacks.monitoring import Monitoring
from stacks.notifications import EndpointTopics, Topics, imported_topics
from stacks.reconciler import Reconciler
from stacks.results import Results
from stacks.storage import FAILURE_PREFIX, OUTPUT_PREFIX, Storage, read_indexes

# the demo model's code, inside the installed package as in the repository
DEMO_MODEL_SOURCE_DIR = Path(__file__).resolve().parent.parent / "asyncinfer" / "model"


S3_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


class AsyncInferencePipeline(Construct):
    """Storage, endpoint (created or imported), ingest, results, reconciler, monitoring,
    outgoing events and, unless ``outputs=False``, the stack outputs the CLI reads."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        model_source_dir: Path = DEMO_MODEL_SOURCE_DIR,
        build_dir: Path | None = None,
        outputs: bool = True,
    ) -> None:
        """``model_source_dir``: the demo model's code; ``build_dir``: where its archive goes
        (default: ``build/<construct path>`` beside the cloud assembly)."""
        super().__init__(scope, construct_id)
        # S3 server access logs are delivered under a bucket policy, never the log bucket's
        # LogDeliveryWrite ACL (which its BucketOwnerEnforced ownership forbids): CDK decides by
        # this feature flag, which `cdk init` sets and a bare App() lacks, so the construct sets
        # it for its own subtree (before it has children: context is read upwards from each).
        self.node.set_context(S3_LOGS_USE_BUCKET_POLICY, True)
        if build_dir is None:
            stage = Stage.of(self)
            outdir = Path(stage.outdir if stage is not None else "cdk.out").resolve()
            build_dir = outdir.parent / "build" / self.node.path.replace("/", "-")
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
            if config.endpoint_role_arn is not None and isinstance(storage.input_bucket, s3.Bucket):
                # an imported input bucket's policy is its owner's (docs/fitting-in.md)
                allow_endpoint_to_read_inputs(storage.input_bucket, config.endpoint_role_arn)
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
        self.result_events: ResultEvents | None = None
        if config.publish_events:
            self.result_events = ResultEvents(
                self, "ResultEvents", table=storage.table, bus_name=config.event_bus_name
            )
        self.jobs = self._jobs(config, output_bucket)
        dead_letter_queues, functions = self._watched()
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            ingest_queue=self.ingest.queue,
            dead_letter_queues=dead_letter_queues,
            functions=functions,
            endpoint_name=target.name,
        )
        self.monitoring.watch_reconciler(target.name)

        results = self.results
        stack_outputs: dict[StackOutput, str] = {
            StackOutput.INPUT_BUCKET_NAME: storage.input_bucket.bucket_name,
            StackOutput.RESULTS_TABLE_NAME: storage.table.table_name,
            # the indexes readers use in this layout step: the CLI follows these outputs
            StackOutput.INPUT_LOCATION_INDEX_NAME: read_indexes(config.table_layout)[0],
            StackOutput.STATUS_INDEX_NAME: read_indexes(config.table_layout)[1],
            StackOutput.INGEST_QUEUE_URL: self.ingest.queue.queue_url,
            StackOutput.INGEST_DEAD_LETTER_QUEUE_URL: self.ingest.dead_letter_queue.queue_url,
            StackOutput.SUCCESS_TOPIC_ARN: topics.success.topic_arn,
            StackOutput.ERROR_TOPIC_ARN: topics.error.topic_arn,
            StackOutput.SUCCESS_DEAD_LETTER_QUEUE_URL: results.success_dead_letter_queue.queue_url,
            StackOutput.ERROR_DEAD_LETTER_QUEUE_URL: results.error_dead_letter_queue.queue_url,
            StackOutput.RESULTS_FAILURE_QUEUE_URL: self.results.failure_queue.queue_url,
            StackOutput.RESULTS_FUNCTION_NAME: self.results.function.function_name,
            StackOutput.INGEST_FUNCTION_NAME: self.ingest.function.function_name,
            StackOutput.RECONCILER_FUNCTION_NAME: self.reconciler.function.function_name,
            StackOutput.ENDPOINT_NAME: target.name,
            # The CLI prints where an output is expected to land from it (the record's
            # output_location, from SageMaker's response, stays authoritative).
            StackOutput.OUTPUT_NAMING: config.output_naming.value,
            # the CLI then refuses a key too long for InputLocation only if it cannot go inline
            StackOutput.INLINE_INPUT_MAX_BYTES: str(config.inline_input_max_bytes),
            StackOutput.RECONCILE_DEADLINES: json.dumps(
                self.reconciler.deadline_settings, separators=(",", ":"), sort_keys=True
            ),
        }
        if output_bucket is not None:
            stack_outputs[StackOutput.OUTPUT_BUCKET_NAME] = output_bucket.bucket_name
        if self.endpoint is not None:
            stack_outputs[StackOutput.OUTPUT_PATH] = self.endpoint.output_path
            stack_outputs[StackOutput.FAILURE_PATH] = self.endpoint.failure_path
        stack_outputs.update(self._jobs_outputs(config))
        if outputs:
            for name, value in stack_outputs.items():
                # the exact names the CLI reads (one pipeline with outputs per stack)
                CfnOutput(self, name, value=value).override_logical_id(name)

    def _watched(self) -> tuple[dict[str, sqs.IQueue], dict[str, lambda_.IFunction]]:
        """The dead-letter queues and functions the monitoring watches, by readable name."""
        dead_letter_queues: dict[str, sqs.IQueue] = {
            "IngestDeadLetterQueue": self.ingest.dead_letter_queue,
            "SuccessDeadLetterQueue": self.results.success_dead_letter_queue,
            "ErrorDeadLetterQueue": self.results.error_dead_letter_queue,
            "ResultsFailureQueue": self.results.failure_queue,
        }
        if self.result_events is not None:
            dead_letter_queues["EventsDeadLetterQueue"] = self.result_events.dead_letter_queue
        functions: dict[str, lambda_.IFunction] = {
            "Ingest": self.ingest.function,
            "Results": self.results.function,
            "Reconciler": self.reconciler.function,
        }
        if self.jobs is not None:
            dead_letter_queues["JobsDeadLetterQueue"] = self.jobs.dead_letter_queue
            dead_letter_queues["JobsPipeDeadLetterQueue"] = self.jobs.pipe_dead_letter_queue
            functions["Jobs"] = self.jobs.function
        return dead_letter_queues, functions

    def _jobs(self, config: StackConfig, output_bucket: s3.IBucket | None) -> Jobs | None:
        if not config.jobs_enabled or output_bucket is None:
            return None
        return Jobs(
            self,
            "Jobs",
            config=config,
            input_bucket=self.storage.input_bucket,
            output_bucket=output_bucket,
            results_table=self.storage.table,
            ingest=self.ingest,
        )

    def _jobs_outputs(self, config: StackConfig) -> dict[StackOutput, str]:
        if self.jobs is None:
            return {}
        return {
            StackOutput.JOBS_TABLE_NAME: self.jobs.table.table_name,
            StackOutput.JOBS_PREFIX: config.jobs_prefix,
            StackOutput.JOBS_QUEUE_URL: self.jobs.queue.queue_url,
            StackOutput.JOBS_DEAD_LETTER_QUEUE_URL: self.jobs.dead_letter_queue.queue_url,
            StackOutput.JOBS_FUNCTION_NAME: self.jobs.function.function_name,
        }


def allow_endpoint_to_read_inputs(input_bucket: s3.Bucket, role_arn: str) -> None:
    """An imported endpoint reads each InputLocation as its execution role: let it read ours.

    A bucket policy, because the role is not this stack's. It suffices within one account; a
    role of another account also needs the grant in its own identity policy. The endpoint's
    outputs go to its own (imported) output bucket, whose policy this stack does not own.
    """
    input_bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="ImportedEndpointReadsInputs",
            principals=[iam.ArnPrincipal(role_arn)],
            actions=["s3:GetObject"],
            resources=[input_bucket.arn_for_objects("*")],
        )
    )
