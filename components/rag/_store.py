"""Pure parts of :class:`components.rag.vector_store.VectorStore`: engine-version rules, the Aurora scaling
configuration, the Qdrant chart's values, its NetworkPolicy and the collection settings the runtime creates
collections with. No Pulumi: the component creates one resource per rendered body and the tests snapshot them.

Sources (checked 2026-12):
- Aurora User Guide, "Scaling to Zero ACUs with automatic pause and resume": a 0 ACU minimum needs Aurora PostgreSQL
  16.3, 15.7, 14.12 or 13.15 at least; ``SecondsUntilAutoPause`` is 300-86,400 s (default 300); readers in promotion
  tiers 0 and 1 pause and resume with the writer.
- AWS What's New 2023-10-24: pgvector 0.5.0 (HNSW) on Aurora PostgreSQL 15.4, 14.9, 13.12, 12.16 and later.
- qdrant/qdrant-helm 1.19.0 ``values.yaml`` and templates: ``replicaCount``, ``config.cluster.enabled``,
  ``persistence.{size,storageClassName}``, ``apiKey.valueFrom.secretKeyRef`` (read with ``lookup`` at install),
  ``service.type``, ``podDisruptionBudget``; the pods' selector labels are ``app.kubernetes.io/name: qdrant`` and
  ``app.kubernetes.io/instance: <release>``; ports 6333 (REST), 6334 (gRPC), 6335 (p2p).
- Qdrant "Distributed deployment": a collection's ``shard_number`` and ``replication_factor`` are set when it is
  created (``PUT /collections/{name}``).
"""

from __future__ import annotations

import re
from typing import Any

PORT = 5432
"""PostgreSQL port of the Aurora cluster."""
QDRANT_HTTP_PORT, QDRANT_GRPC_PORT, QDRANT_P2P_PORT = 6333, 6334, 6335
API_KEY_SECRET_KEY = "api-key"
"""Key of the API key in the Kubernetes Secret the chart reads."""

AUTO_PAUSE_MIN_VERSIONS: dict[int, tuple[int, int]] = {16: (16, 3), 15: (15, 7), 14: (14, 12), 13: (13, 15)}
"""Aurora PostgreSQL major -> first minor with Serverless v2 auto-pause (a 0 ACU minimum); 17 and later have it."""
HNSW_MIN_VERSIONS: dict[int, tuple[int, int]] = {15: (15, 4), 14: (14, 9), 13: (13, 12)}
"""Aurora PostgreSQL major -> first minor with pgvector 0.5.0 (HNSW); 16 and later have it."""
MIN_AUTO_PAUSE_SECONDS, MAX_AUTO_PAUSE_SECONDS = 300, 86_400
VERSION = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+)$")


def parse_version(version: str) -> tuple[int, int] | None:
    m = VERSION.match(version)
    return (int(m["major"]), int(m["minor"])) if m else None


def supports_auto_pause(version: str) -> bool:
    """Whether Aurora PostgreSQL ``version`` takes a 0 ACU minimum."""
    v = parse_version(version)
    if v is None or v[0] < 13:
        return False
    return v[0] >= 17 or v >= AUTO_PAUSE_MIN_VERSIONS[v[0]]


def supports_hnsw(version: str) -> bool:
    """Whether Aurora PostgreSQL ``version`` ships pgvector with HNSW indexes (0.5.0 or later)."""
    v = parse_version(version)
    if v is None or v[0] < 13:
        return False
    return v[0] >= 16 or v >= HNSW_MIN_VERSIONS[v[0]]


def scaling_configuration(min_acu: float, max_acu: float, seconds_until_auto_pause: int) -> dict[str, Any]:
    """``serverlessv2_scaling_configuration``: the auto-pause delay only with a 0 ACU minimum (AWS drops it
    otherwise)."""
    out: dict[str, Any] = {"min_capacity": min_acu, "max_capacity": max_acu}
    if min_acu == 0:
        out["seconds_until_auto_pause"] = seconds_until_auto_pause
    return out


def parameter_family(version: str) -> str:
    """Cluster parameter group family of an Aurora PostgreSQL version: ``16.8`` -> ``aurora-postgresql16``."""
    return f"aurora-postgresql{version.split('.')[0]}"


def final_snapshot_id(stack: str, name: str) -> str:
    """``<stack>-<name>-final``, valid as an RDS DB cluster snapshot identifier (letters, digits and single hyphens, a
    letter first, no hyphen at the end, at most 255 characters) and unique per stack."""
    text = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", f"{stack}-{name}-final".lower())).strip("-")
    return (text if text[:1].isalpha() else f"s-{text}")[:255].rstrip("-")


def reader_promotion_tier(index: int) -> int:
    """Failover tier of the ``index``-th reader (0-based): the first reader is tier 1 (fails over first and pauses with
    the writer); the others tier 2+ so that they scale and pause on their own."""
    return 1 if index == 0 else min(15, index + 1)


# --- Qdrant ---

def qdrant_selector_labels(release: str) -> dict[str, str]:
    """Labels the chart puts on the Qdrant pods (its ``qdrant.selectorLabels``)."""
    return {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": release}


def render_qdrant_values(*, replicas: int, storage_gib: int, storage_class: str, memory_gib: float, cpu: str,
                         api_key_secret: str, node_selector: dict[str, str]) -> dict[str, Any]:
    """Helm values of the qdrant chart: cluster mode, ``replicas`` pods spread over nodes, each with an encrypted gp3
    volume, requests equal to limits for memory, the API key from an existing Secret, a ClusterIP Service only, pods
    that pass Pod Security ``restricted``."""
    memory = f"{int(memory_gib * 1024)}Mi"
    values: dict[str, Any] = {
        "replicaCount": replicas,
        "config": {"cluster": {"enabled": True}},
        "service": {"type": "ClusterIP"},
        "ingress": {"enabled": False},
        "persistence": {"size": f"{storage_gib}Gi", "storageClassName": storage_class},
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
        "apiKey": {"valueFrom": {"secretKeyRef": {"name": api_key_secret, "key": API_KEY_SECRET_KEY}}},
        "podDisruptionBudget": {"enabled": replicas > 1, "maxUnavailable": 1},
        "livenessProbe": {"enabled": True},
        # Pod Security "restricted": no root chown init container (the volume's group comes from fsGroup), every
        # capability dropped, the runtime's seccomp profile (the chart's defaults add non-root, read-only root)
        "updateVolumeFsOwnership": False,
        "containerSecurityContext": {"capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "podSecurityContext": {"fsGroup": 3000, "fsGroupChangePolicy": "OnRootMismatch",
                               "seccompProfile": {"type": "RuntimeDefault"}},
        "nodeSelector": dict(node_selector),
    }
    if replicas > 1:
        values["topologySpreadConstraints"] = [{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "qdrant"}}}]
    return values


def qdrant_network_policy(*, name: str, release: str, namespace: str, client_namespaces: list[str],
                          monitoring_namespace: str) -> dict[str, Any]:
    """Ingress to Qdrant's REST and gRPC ports only from the client namespaces (and metrics from monitoring); the
    p2p port only from the other Qdrant pods of the release."""
    selector = qdrant_selector_labels(release)
    clients = sorted({namespace, *client_namespaces, monitoring_namespace})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"], "ingress": [
                {"from": [{"namespaceSelector": {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": clients}]}}],
                 "ports": [{"port": QDRANT_HTTP_PORT, "protocol": "TCP"},
                           {"port": QDRANT_GRPC_PORT, "protocol": "TCP"}]},
                {"from": [{"podSelector": {"matchLabels": selector}}],
                 "ports": [{"port": QDRANT_P2P_PORT, "protocol": "TCP"}]}]}}


def collection_config(*, dimensions: int, shard_number: int, replication_factor: int, distance: str,
                      hnsw_m: int, hnsw_ef_construction: int) -> dict[str, Any]:
    """The body of Qdrant's ``PUT /collections/{name}`` the runtime creates each collection with."""
    return {"vectors": {"size": dimensions, "distance": distance},
            "shard_number": shard_number, "replication_factor": replication_factor,
            "write_consistency_factor": 1,
            "hnsw_config": {"m": hnsw_m, "ef_construct": hnsw_ef_construction}}


def pgvector_index_settings(*, hnsw_m: int, hnsw_ef_construction: int, ef_search: int) -> dict[str, Any]:
    """What the runtime builds each collection's HNSW index with (``CREATE INDEX ... USING hnsw ... WITH (m,
    ef_construction)``) and queries it with (``SET hnsw.ef_search``)."""
    return {"index": "hnsw", "m": hnsw_m, "ef_construction": hnsw_ef_construction, "ef_search": ef_search}
