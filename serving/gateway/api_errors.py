"""The OpenAI-style client error of the gateway's API modules (Batch/Files, embeddings, collections), and the JSON
body reader they share."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

JSON = "application/json"


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code", ...extra}}``."""

    def __init__(self, status: int, message: str, code: str | None, param: str | None = None,
                 type_: str = "invalid_request_error", extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.type = status, message, code, param, type_
        self.extra, self.headers = extra or {}, headers

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        body.update(self.extra)
        return Response(orjson.dumps({"error": body}), status_code=self.status, media_type=JSON,
                        headers=self.headers)


async def read_json_object(gw, request: Request) -> dict[str, Any]:
    """The request body as a JSON object, within the gateway's ``server.maxBodyBytes``; 413 or 400 otherwise."""
    raw = await gw._read_body(request)
    if raw is None:
        raise ApiError(413, f"The request body is larger than {gw.cfg.server.max_body_bytes} bytes.",
                       "request_too_large")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON.", "invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", "invalid_type")
    return body
