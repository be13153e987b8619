"""The SNS event Lambda delivers to the results function, as Powertools' ``event_parser`` parses it.

The models require what the function reads (``Type``, ``TopicArn``, ``MessageId``, ``Message``)
and ignore the rest. Each ``Message`` stays the raw JSON string SageMaker published;
``lambdas.common.notification`` validates it on its own.

Powertools' own ``SnsModel`` would also validate the signature fields and URLs the function
never reads, and importing it builds its four models and imports ``pydantic.networks``: about
9 ms of CPU at every cold start. These are small and defer building their schemas to the first
event (``defer_build``). The module is apart from ``notification`` because the handler's parser
decorator needs it at import, while the notification models load with the first invocation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _SnsModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class SageMakerSnsNotification(_SnsModel):
    """One SNS notification, ``Message`` kept as the raw JSON string."""

    Type: Literal["Notification"]
    TopicArn: str
    MessageId: str
    Message: str
    Subject: str | None = None


class SageMakerSnsRecord(_SnsModel):
    EventSource: Literal["aws:sns"]
    EventVersion: str
    EventSubscriptionArn: str
    Sns: SageMakerSnsNotification


class SageMakerSnsEvent(_SnsModel):
    """The event: usually one record, possibly several."""

    Records: list[SageMakerSnsRecord]
