"""Pure facts and functions behind SemanticCache: engine versions with vector search, limits, parameters, policies.

Sources (checked 2026-11):
- ElastiCache "Vector search" (``AmazonElastiCache/latest/dg/vector-search.html``): available in Valkey 8.2 on
  node-based clusters (not Serverless); "available on all ElastiCache instance types other than nodes with data
  tiering"; burstable t2/t3/t4g nodes need ``reserved-memory-percent`` of at least 50 (micro) or 30 (small).
- "Search features and limits" (``search-features-limits.html``): per engine version, vector dimensions 32768 (both),
  indexes 10 (8.2) / 1000 (9.0+), fields per index 50 / 1000, FT.SEARCH timeout max 60000 ms.
- ``engine-versions.md``: Valkey 9.0 and 9.1 add full-text, tag, numeric and hybrid search.
- AUTH token rules (ElastiCache ``AUTH`` docs): 16-128 printable characters; the only non-alphanumerics allowed are
  ``! & # $ ^ < > -``.
- Parameter group families: ``valkey8`` / ``valkey9``.
"""

from __future__ import annotations

import re
from typing import Any

from components.naming import aws_name

VECTOR_SEARCH_LIMITS: dict[str, dict[str, int]] = {
    "8.2": {"max_indexes": 10, "max_fields_per_index": 50, "max_vector_dimensions": 32768,
            "max_search_timeout_ms": 60000},
    "9.0": {"max_indexes": 1000, "max_fields_per_index": 1000, "max_vector_dimensions": 32768,
            "max_search_timeout_ms": 60000},
    "9.1": {"max_indexes": 1000, "max_fields_per_index": 1000, "max_vector_dimensions": 32768,
            "max_search_timeout_ms": 60000},
}
AUTH_SPECIALS = "!&#$^<>-"
AUTH_TOKEN_LENGTH = 64
PORT = 6379
DATA_TIERING_FAMILIES = ("r6gd",)
BURSTABLE_MIN_RESERVED = {"micro": 50, "small": 30}
NODE_TYPE = re.compile(r"^cache\.(?P<family>[a-z0-9]+)\.(?P<size>[a-z0-9]+)$")
DAILY_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
WEEKLY_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-"
                           r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d$")


def parameter_family(engine_version: str) -> str:
    """``8.2`` -> ``valkey8``."""
    return f"valkey{engine_version.split('.')[0]}"


def node_type_problem(node_type: str) -> str | None:
    """Why a node type cannot host vector search, or None."""
    m = NODE_TYPE.match(node_type)
    if not m:
        return "a node type such as cache.r7g.large"
    if m["family"] in DATA_TIERING_FAMILIES:
        return "a node type without data tiering (vector search is not available on r6gd)"
    return None


def min_reserved_memory(node_type: str) -> int | None:
    """Minimum ``reserved-memory-percent`` for vector search on a burstable node, or None."""
    m = NODE_TYPE.match(node_type)
    if not m or not m["family"].startswith("t"):
        return None
    return BURSTABLE_MIN_RESERVED.get(m["size"])


def rbac_id(stack: str, name: str, suffix: str) -> str:
    """Account-unique RBAC user (or user-group, ``suffix="users"``) id ``<stack>-<name>-<suffix>``, through
    :func:`components.naming.aws_name`: lower-case letters, digits and single hyphens, a letter first, at most 40
    characters; a rewritten id keeps the suffix at its end."""
    return aws_name("elasticache-user-group" if suffix == "users" else "elasticache-user", stack, name, suffix)


def key_policy(*, partition: str, region: str, account: str) -> dict[str, Any]:
    """KMS key policy: the account administers the key through IAM; CloudWatch Logs may use it for this account's
    log groups in this Region (the slow-log group is encrypted with it)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdmin", "Effect": "Allow", "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "CloudWatchLogs", "Effect": "Allow", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
         "Resource": "*",
         "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                   f"arn:{partition}:logs:{region}:{account}:log-group:*"}}},
    ]}


def connection_document(*, host: str, reader_host: str, port: int, username: str, password: str) -> dict[str, Any]:
    """What the Secrets Manager secret holds: everything a client needs to connect (TLS is mandatory)."""
    return {"host": host, "reader_host": reader_host, "port": port, "username": username, "password": password,
            "tls": True}
