"""Build real botocore ``EventStream`` objects from AWS event-stream wire bytes, for tests.

botocore ships only the decoder; this encodes messages in the AWS event-stream format (prelude with total and header
lengths + CRC32, string headers, payload, message CRC32) so the client under test reads events through botocore's own
decoder and ``rest-json`` event parser, exactly as it would from the network.
"""

from __future__ import annotations

import binascii
import json
import struct
from typing import Any, Iterable

from botocore.eventstream import EventStream
from botocore.parsers import EventStreamJSONParser
from botocore.validate import ParamValidator


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    raw_headers = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def event(event_type: str, payload: Any, *, content_type: str = "application/json") -> bytes:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return encode_message({":event-type": event_type, ":content-type": content_type, ":message-type": "event"}, data)


def exception(exception_type: str, message: str) -> bytes:
    return encode_message({":exception-type": exception_type, ":content-type": "application/json",
                           ":message-type": "exception"}, json.dumps({"message": message}).encode())


class RawStream:
    """What botocore reads the HTTP body from: ``stream()`` yields byte chunks of arbitrary size."""

    def __init__(self, data: bytes, chunk_size: int):
        self.data, self.chunk_size, self.closed = data, chunk_size, False

    def stream(self):
        for i in range(0, len(self.data), self.chunk_size):
            yield self.data[i:i + self.chunk_size]

    def close(self) -> None:
        self.closed = True


def event_stream(client, operation: str, member: str, messages: Iterable[bytes], *, chunk_size: int = 13) -> EventStream:
    """An ``EventStream`` over encoded messages, parsed with the client's own service model."""
    model = client.meta.service_model
    shape = model.operation_model(operation).output_shape.members[member]
    assert model.metadata["protocol"] in ("rest-json", "json"), "JSON event streams only"
    parser = EventStreamJSONParser()  # what botocore's rest-json parser hands to EventStream
    return EventStream(RawStream(b"".join(messages), chunk_size), shape, parser, operation)


def validate_event(client, operation: str, member: str, event_dict: dict) -> None:
    """Check one event dict (``{"contentBlockDelta": {...}}``) against the output union shape of the API model."""
    shape = client.meta.service_model.operation_model(operation).output_shape
    report = ParamValidator().validate({member: event_dict}, shape)
    if report.has_errors():
        raise AssertionError(report.generate_report())
