"""What the create-mode modules share besides their fixtures (conftest.py): the configuration's
defaults, the logical ids of the main resources, and reading an ``Fn::Join``."""

from __future__ import annotations

from typing import Any

from lambdas.common.contract import StackOutput
from stacks.config import StackConfig
from tests.infra.assembly import Synthesized, target

DEFAULTS = StackConfig()


def main_resource_ids(stack: Synthesized) -> dict[str, str]:
    """Logical ids of the main resources, found through the stack outputs."""
    found = {
        name: stack.output_target(output)
        for name, output in {
            "input_bucket": StackOutput.INPUT_BUCKET_NAME,
            "output_bucket": StackOutput.OUTPUT_BUCKET_NAME,
            "table": StackOutput.RESULTS_TABLE_NAME,
            "ingest_queue": StackOutput.INGEST_QUEUE_URL,
            "ingest_dlq": StackOutput.INGEST_DEAD_LETTER_QUEUE_URL,
            "success_topic": StackOutput.SUCCESS_TOPIC_ARN,
            "error_topic": StackOutput.ERROR_TOPIC_ARN,
            "success_dlq": StackOutput.SUCCESS_DEAD_LETTER_QUEUE_URL,
            "error_dlq": StackOutput.ERROR_DEAD_LETTER_QUEUE_URL,
            "failure_queue": StackOutput.RESULTS_FAILURE_QUEUE_URL,
            "ingest_function": StackOutput.INGEST_FUNCTION_NAME,
            "results_function": StackOutput.RESULTS_FUNCTION_NAME,
            "endpoint": StackOutput.ENDPOINT_NAME,
            "jobs_queue": StackOutput.JOBS_QUEUE_URL,
            "jobs_dlq": StackOutput.JOBS_DEAD_LETTER_QUEUE_URL,
            "jobs_function": StackOutput.JOBS_FUNCTION_NAME,
        }.items()
    }
    found["ingest_role"] = stack.role_of_function(found["ingest_function"])
    found["results_role"] = stack.role_of_function(found["results_function"])
    (model_id,) = stack.resources("AWS::SageMaker::Model")
    found["execution_role"] = target(stack.properties(model_id)["ExecutionRoleArn"])
    found["model"] = model_id
    (found["endpoint_config"],) = stack.resources("AWS::SageMaker::EndpointConfig")
    (found["key"],) = stack.resources("AWS::KMS::Key")
    return found


def joined(value: Any) -> list[Any]:
    """The parts of an ``Fn::Join`` with an empty delimiter."""
    assert set(value) == {"Fn::Join"}
    delimiter, parts = value["Fn::Join"]
    assert delimiter == ""
    return list(parts)
