"""AWS runtime clients for the serving path: Bedrock Converse/ConverseStream and SageMaker InvokeEndpoint(+stream).

Both speak the OpenAI chat-completions shapes on the outside (``chat.completion`` dicts and ``chat.completion.chunk``
dicts whose last one carries ``usage``), so the gateway can route to them like to any OpenAI-compatible upstream.
AWS service errors surface as botocore ``ClientError`` (``EventStreamError`` mid-stream); requests the target
cannot express raise :class:`InvalidRequest`; answers the client cannot read raise :class:`ModelResponseError`.
This package never imports Pulumi or the IaC code.
"""

from __future__ import annotations


class InvalidRequest(ValueError):
    """The OpenAI request uses something the target API cannot express (map to HTTP 400)."""

    status = 400

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param


class ModelResponseError(RuntimeError):
    """The model container answered with an error object or with something that is not a chat completion
    (map to HTTP 502)."""

    status = 502

    def __init__(self, message: str, *, code: str | int | None = None):
        super().__init__(message)
        self.code = code


__all__ = ["InvalidRequest", "ModelResponseError"]
