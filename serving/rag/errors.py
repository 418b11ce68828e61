"""Typed vector-store errors on the shared error core: each lists every problem (key path, bad value, what was
expected) and carries the HTTP status and OpenAI-style error type a gateway handler answers with.

A request with problems of one kind raises that kind's class (``DimensionMismatch``, ``InvalidFilter``, ...); a
request with problems of several kinds raises their common base, ``InvalidRequest``, listing all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from problems import Problem, ProblemsError

__all__ = [
    "CollectionExists", "DimensionMismatch", "InvalidDocument", "InvalidFilter", "InvalidQuery", "InvalidRequest",
    "UnknownCollection", "VectorStoreError", "raise_problems",
]


class VectorStoreError(ProblemsError):
    """Base of every vector-store error. ``status`` and ``error_type`` are what an HTTP handler answers with."""

    status: ClassVar[int] = 400
    error_type: ClassVar[str] = "invalid_request_error"
    title: ClassVar[str] = "invalid vector store request"  # type: ignore[misc]

    def __init__(self, problems: Iterable[Problem], *, title: str | None = None, prefix: str = ""):
        super().__init__(problems, title=title or type(self).title, prefix=prefix)


class InvalidRequest(VectorStoreError):
    """Bad input of more than one kind (every problem listed)."""


class DimensionMismatch(InvalidRequest):
    """A vector's length is not the collection's dimensions (the message has both)."""

    title = "wrong vector dimensions"


class InvalidDocument(InvalidRequest):
    """A document id, tenant, chunk list, chunk text or metadata is empty, too large or of the wrong type."""

    title = "invalid document"


class InvalidFilter(InvalidRequest):
    """A metadata filter names a bad key, an unknown operator, or a value of a type filters do not take."""

    title = "invalid metadata filter"


class InvalidQuery(InvalidRequest):
    """A query's ``top_k`` or ``ef_search`` is out of range, or a collection definition is invalid."""

    title = "invalid query"


class UnknownCollection(VectorStoreError):
    """The collection does not exist."""

    status = 404
    title = "unknown collection"


class CollectionExists(VectorStoreError):
    """A collection of that name exists already (with other dimensions or distance, when ``exist_ok``)."""

    status = 409
    title = "collection exists"


_BY_CODE: dict[str, type[InvalidRequest]] = {
    "dimensions": DimensionMismatch, "document": InvalidDocument, "filter": InvalidFilter, "query": InvalidQuery,
}


def raise_problems(problems: list[Problem]) -> None:
    """Raise the error class of the problems' kind (their ``code``), or ``InvalidRequest`` for a mix; no-op if none."""
    if not problems:
        return
    kinds = {p.code for p in problems}
    cls = _BY_CODE.get(kinds.pop(), InvalidRequest) if len(kinds) == 1 else InvalidRequest
    raise cls(problems)
