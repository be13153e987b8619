"""The local SageMaker async runtime: ``InvokeEndpointAsync`` on loopback, served for real.

Plain boto3 (``boto3.client("sagemaker-runtime", endpoint_url=runtime.url)``) and the AWS CLI
(``aws sagemaker-runtime invoke-endpoint-async --endpoint-url ...``) work against it unchanged:
it answers ``POST /endpoints/{EndpointName}/async-invocations`` with 202, the ``InferenceId``
body and the output and failure locations, and rejects bad requests with the error codes
botocore parses (see ``wire``). Signatures are accepted without being checked.

An accepted request waits in an in-memory queue for one of
``MaxConcurrentInvocationsPerInstance x instances`` workers, which, as SageMaker does:

1. fail it if it waited longer than its ``RequestTTLSeconds`` (or the ``expire_rate`` knob says
   it did): no output or failure object, a failure notification;
2. read the input object from S3 (the moto server) and POST it to the model server's
   ``/invocations`` with the request's content type, accept and custom attributes, waiting at
   most ``InvocationTimeoutSeconds`` for the model (as a socket timeout: for each read);
3. write a 2xx answer to ``<S3OutputPath>[/<S3OutputPathExtension>]/<Filename>`` (without a
   ``Filename``: ``<inference id>.out``), with the model's content type, or the error answer to
   ``<S3FailurePath>/<inference id>-error.out``; the locations are the ones the invoke call
   returned (``wire.accept_invocation`` cites the model documentation it follows). A
   request with an inline ``Body`` is processed with those bytes, and its notification has no
   ``inputLocation``;
4. publish the ``InferenceResult`` notification to the success or the error topic (unless the
   ``drop_notification_rate`` knob loses it).

Faults for tests and benchmarks (``FaultSettings``) are set at construction or at run time
through the admin API: ``GET|POST /_local/faults``, ``GET /_local/stats``,
``POST /_local/reset`` (JSON). ``python -m asyncinfer.local.sagemaker --help`` runs it alone.

Modules: ``state`` (``LocalRuntime``: queue, workers, faults and counters), ``processing``
(steps 1 to 4 for one request), ``model_client`` (the calls to the model server), ``routes``
(the HTTP front end and the admin API), ``wire`` and ``publisher`` (the wire format),
``__main__`` (the command line) and ``model_server`` (the model container's HTTP contract).
"""
