"""``python -m asyncinfer.local.sagemaker``: one runtime for one endpoint, until SIGTERM or
Ctrl-C; prints ``READY <port>`` once it accepts requests."""

from __future__ import annotations

import argparse
import logging

from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.http_service import serve_until_signalled
from asyncinfer.local.provision.spec import EndpointSpec
from asyncinfer.local.sagemaker.state import LocalRuntime


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="The local SageMaker async runtime.")
    parser.add_argument("--aws-endpoint-url", required=True, help="the moto server")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--output-path", required=True, help="s3://bucket/prefix")
    parser.add_argument("--failure-path", required=True, help="s3://bucket/prefix")
    parser.add_argument("--success-topic-arn")
    parser.add_argument("--error-topic-arn")
    parser.add_argument("--include-response-body", action="store_true")
    parser.add_argument("--max-concurrent-invocations-per-instance", type=int, default=4)
    parser.add_argument("--instance-count", type=int, default=1)
    parser.add_argument("--model-url", default="http://127.0.0.1:8080")
    parser.add_argument("--faults", default="{}", help="FaultSettings as JSON")
    parser.add_argument("--test-notification", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    endpoint = EndpointSpec(
        name=args.endpoint_name,
        output_path=args.output_path,
        failure_path=args.failure_path,
        success_topic_arn=args.success_topic_arn,
        error_topic_arn=args.error_topic_arn,
        include_response_body=args.include_response_body,
        max_concurrent_invocations_per_instance=args.max_concurrent_invocations_per_instance,
        instance_count=args.instance_count,
        model_url=args.model_url,
    )
    runtime = LocalRuntime(
        endpoint,
        aws_endpoint_url=args.aws_endpoint_url,
        region=args.region,
        port=args.port,
        host=args.host,
        faults=FaultSettings.model_validate_json(args.faults),
    )
    serve_until_signalled(
        runtime,
        when_started=runtime.publish_test_notifications if args.test_notification else None,
    )


if __name__ == "__main__":
    main()
