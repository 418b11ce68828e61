"""The ingestion contract the gateway and the ingestion workers share: where a document lives in S3, the SQS message
that names it, and what a valid document is.

- Document: ``rag/docs/<tenant>/<collection>/<document>.json`` = ``{"text", "metadata", "version"}`` (the version also
  as the object's ``x-amz-meta-version``). Tenant and document ids are percent-encoded in keys (``/`` becomes
  ``%2F``), so a key names exactly one (tenant, collection, document).
- Message: ``{"tenant", "collection", "documentId", "key", "version"}``, one per document.
- Failure reason: ``rag/failed/<tenant>/<collection>/<document>.json``, written by the worker on the last receive
  before SQS moves the message to the dead-letter queue.

A worker ingests a message only when the object's version is the message's: an older message (the document was
re-ingested since) or one whose document was deleted is dropped, so a redelivered or overtaken message never writes
an old version over a new one.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from problems import Problem

from .errors import InvalidDocument
from .filters import KEY_PATTERN, scalar_problem
from .store import LIMITS, id_problem

__all__ = ["MAX_DOCUMENT_BYTES", "Message", "doc_key", "failed_key", "new_version", "parse_message", "submit_document",
           "validate_source"]

ROOT = "rag"
MAX_DOCUMENT_BYTES = 1024 * 1024
"""Largest document text in UTF-8 bytes: 1 MiB, about 250,000 tokens, about 1,100 chunks of 256 tokens (the store
takes at most 4,096 chunks a document)."""


def _q(s: str) -> str:
    return quote(s, safe="")


def doc_key(tenant: str, collection: str, document_id: str) -> str:
    return f"{ROOT}/docs/{_q(tenant)}/{collection}/{_q(document_id)}.json"


def failed_key(tenant: str, collection: str, document_id: str) -> str:
    return f"{ROOT}/failed/{_q(tenant)}/{collection}/{_q(document_id)}.json"


def new_version() -> str:
    """A version that sorts by time: milliseconds since the epoch and 8 random hex digits."""
    return f"{int(time.time() * 1000):013d}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Message:
    tenant: str
    collection: str
    document_id: str
    key: str
    version: str

    def body(self) -> str:
        return json.dumps({"tenant": self.tenant, "collection": self.collection, "documentId": self.document_id,
                           "key": self.key, "version": self.version})


def parse_message(raw: str) -> Message:
    """The message, or ValueError naming what is wrong with it."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"message body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("message body must be a JSON object")
    bad = [k for k in ("tenant", "collection", "documentId", "key", "version")
           if not isinstance(body.get(k), str) or not body.get(k)]
    if bad:
        raise ValueError(f"message lacks {', '.join(bad)} (strings)")
    return Message(body["tenant"], body["collection"], body["documentId"], body["key"], body["version"])


def validate_source(doc: Any, *, path: str = "") -> tuple[str, dict[str, Any]]:
    """``(text, metadata)`` of one document ``{"id", "text", "metadata"}``, or :class:`InvalidDocument` listing every
    problem: the text empty, not a string or over :data:`MAX_DOCUMENT_BYTES`; metadata not an object of string,
    number or boolean values; a bad id."""
    p = f"{path}." if path else ""
    if not isinstance(doc, dict):
        raise InvalidDocument([Problem(path or "document", doc, "must be an object {id, text, metadata}",
                                       code="document")])
    problems: list[Problem] = []
    if "id" in doc and (bad := id_problem(f"{p}id", doc["id"])) is not None:
        problems.append(bad)
    text = doc.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(Problem(f"{p}text", text if not isinstance(text, str) else text[:40],
                                "must be a non-empty string", code="document"))
    elif "\x00" in text:
        problems.append(Problem(f"{p}text", "NUL", "must not contain NUL characters", code="document"))
    elif (size := len(text.encode("utf-8"))) > MAX_DOCUMENT_BYTES:
        problems.append(Problem(f"{p}text", f"{size} bytes", f"must be at most {MAX_DOCUMENT_BYTES} bytes "
                                                              "(split the document)", code="document_too_large"))
    meta = doc.get("metadata", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        problems.append(Problem(f"{p}metadata", meta, "must be an object of key to string, number or boolean",
                                code="document"))
    else:
        if len(meta) > LIMITS.max_metadata_keys:
            problems.append(Problem(f"{p}metadata", f"{len(meta)} keys",
                                    f"must have at most {LIMITS.max_metadata_keys} keys", code="document"))
        for k, v in meta.items():
            if not KEY_PATTERN.match(k):
                problems.append(Problem(f"{p}metadata.{k}", k, "key must match [A-Za-z_][A-Za-z0-9_-]{0,63}",
                                        code="document"))
            elif (bad := scalar_problem(f"{p}metadata.{k}", v, "document")) is not None:
                problems.append(bad)
    unknown = sorted(set(doc) - {"id", "text", "metadata"})
    for k in unknown:
        problems.append(Problem(f"{p}{k}", doc[k] if not isinstance(doc[k], str) else doc[k][:40],
                                "unknown field; a document has id, text and metadata", code="document"))
    if problems:
        raise InvalidDocument(problems)
    return text, meta


def submit_document(s3, sqs, *, bucket: str, queue_url: str, tenant: str, collection: str, document_id: str,
                    text: str, metadata: dict[str, Any]) -> Message:
    """Store a (validated) document under a new version and queue one message for it; returns the message."""
    version = new_version()
    key = doc_key(tenant, collection, document_id)
    s3.put_object(Bucket=bucket, Key=key, ContentType="application/json", Metadata={"version": version},
                  Body=json.dumps({"text": text, "metadata": metadata, "version": version}).encode())
    message = Message(tenant, collection, document_id, key, version)
    sqs.send_message(QueueUrl=queue_url, MessageBody=message.body())
    return message
