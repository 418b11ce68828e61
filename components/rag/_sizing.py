"""Sizing of a vector store from its workload: expected vectors, dimensions, QPS -> memory, storage, and an Aurora
Serverless v2 ACU range or Qdrant replicas and shards. Pure functions, no Pulumi; every limit below names its source.

Sources (checked 2026-12):
- pgvector README (pgvector/pgvector, "Vector Type"): "Each vector takes 4 * dimensions + 8 bytes of storage";
  HNSW indexes ``vector`` columns of up to 2,000 dimensions (``halfvec`` up to 4,000); defaults ``m`` 16,
  ``ef_construction`` 64, ``hnsw.ef_search`` 40.
- pgvector ``src/hnsw.h``: an index element tuple is ``MAXALIGN(offsetof(HnswElementTupleData, data) + size)`` (a
  header of type, level, deleted and version bytes, ``HNSW_HEAPTIDS`` = 10 heap TIDs and the neighbour TID: 72 bytes
  with alignment), and its neighbour tuple ``MAXALIGN(offsetof(HnswNeighborTupleData, indextids) + (level + 2) * m *
  sizeof(ItemPointerData))`` (6-byte TIDs: 2m on layer 0, m on each upper layer). HNSW draws an element's level with
  ``mL = 1/ln(m)``, so the expected number of upper layers is ``1/(m-1)``.
- PostgreSQL "Database Page Layout": a heap tuple header is 23 bytes (24 aligned) and every tuple takes a 4-byte line
  pointer.
- Aurora User Guide, "Aurora Serverless v2 capacity" and ``API_ServerlessV2ScalingConfiguration``: one ACU is
  approximately 2 GiB of memory; capacity in 0.5 ACU steps; the maximum is 256 ACU per instance on recent engine
  versions (128 on older ones); the minimum is 0 ACU where auto-pause is supported (Aurora PostgreSQL 16.3, 15.7,
  14.12, 13.15 or later, "Scaling to Zero ACUs with automatic pause and resume"), else 0.5.
- Aurora PostgreSQL default parameter group: ``shared_buffers = SUM({DBInstanceClassMemory/12038},-50003)`` in 8 kB
  pages, i.e. about 68 % of the instance's memory. The HNSW index should stay in shared buffers (the AWS Database Blog
  "Running pgvector in production on Amazon Aurora PostgreSQL", 2026-06: size so the HNSW graph is memory-resident).
  DBInstanceClassMemory is taken as ACU x 2 GiB (inference: AWS reserves a little for the OS).
- Aurora User Guide, "Amazon Aurora size limits": a cluster volume grows to 128 TiB (the larger limit of some newer
  engine versions is not relied on).
- Qdrant "Capacity Planning": ``memory_size = number_of_vectors * vector_dimension * 4 bytes * 1.5`` to keep every
  vector in RAM (the 50 % covers indexes, point versions and the optimizer's temporary segments), times the
  replication factor across the cluster.
- The seed architecture (004 §6-8): 100M vectors -> 10 shards of 10M, 3 nodes with replication 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from problems import Problem

GIB = 1024 ** 3
TIB = 1024 ** 4

# --- pgvector storage ---
PGVECTOR_VECTOR_OVERHEAD = 8
"""``vector`` value: 4 bytes per dimension plus 8 (pgvector README)."""
PGVECTOR_HNSW_MAX_DIMENSIONS = 2000
"""Most dimensions of a ``vector`` column an HNSW index takes (pgvector README; ``halfvec`` takes 4,000)."""
HEAP_TUPLE_HEADER = 24
LINE_POINTER = 4
HNSW_ELEMENT_HEADER = 72
HNSW_NEIGHBOR_HEADER = 4
ITEM_POINTER = 6
MAXALIGN = 8

# --- Aurora Serverless v2 ---
ACU_GIB = 2.0
"""Memory of one ACU (approximately)."""
AURORA_MAX_ACU = 256.0
"""Largest maximum capacity of one Aurora Serverless v2 instance (recent engine versions)."""
ACU_STEP = 0.5
SHARED_BUFFERS_DIVISOR = 12038
SHARED_BUFFERS_OFFSET_PAGES = 50003
PAGE = 8192
AURORA_MAX_STORAGE_TIB = 128

# --- Qdrant ---
QDRANT_MEMORY_FACTOR = 1.5
"""Qdrant's capacity-planning factor over the raw float32 vectors."""
DEFAULT_VECTORS_PER_SHARD = 10_000_000
"""The seed's shard size (100M vectors -> 10 shards of 10M)."""


def _align(n: float) -> float:
    return math.ceil(n / MAXALIGN) * MAXALIGN


def vector_bytes(dimensions: int) -> int:
    """Bytes of one pgvector ``vector`` value."""
    return 4 * dimensions + PGVECTOR_VECTOR_OVERHEAD


def table_bytes_per_row(dimensions: int, metadata_bytes: int) -> float:
    """One row of a collection table: heap tuple header, line pointer, the vector and the chunk's other columns."""
    return HEAP_TUPLE_HEADER + LINE_POINTER + vector_bytes(dimensions) + metadata_bytes


def hnsw_bytes_per_vector(dimensions: int, m: int) -> float:
    """One vector's share of a pgvector HNSW index: its element tuple (a copy of the vector) and its neighbour tuple
    (2m TIDs on layer 0, m per upper layer, ``1/(m-1)`` upper layers on average), each with a line pointer."""
    element = _align(HNSW_ELEMENT_HEADER + vector_bytes(dimensions))
    neighbour_tids = (2 + 1 / (m - 1)) * m
    neighbours = _align(HNSW_NEIGHBOR_HEADER + neighbour_tids * ITEM_POINTER)
    return element + neighbours + 2 * LINE_POINTER


def shared_buffers_bytes(acu: float) -> float:
    """Aurora PostgreSQL's default ``shared_buffers`` at ``acu`` capacity (memory = ACU x 2 GiB)."""
    memory = acu * ACU_GIB * GIB
    return max(0.0, (memory / SHARED_BUFFERS_DIVISOR - SHARED_BUFFERS_OFFSET_PAGES) * PAGE)


def acu_for_buffers(index_bytes: float) -> float:
    """Smallest capacity (0.5 ACU steps, at least 0.5) whose default shared buffers hold ``index_bytes``."""
    pages = index_bytes / PAGE + SHARED_BUFFERS_OFFSET_PAGES
    acu = pages * SHARED_BUFFERS_DIVISOR / (ACU_GIB * GIB)
    return max(ACU_STEP, math.ceil(acu / ACU_STEP) * ACU_STEP)


def _gib(n: float) -> float:
    return round(n / GIB, 2)


@dataclass(frozen=True)
class PgvectorSizing:
    """What an Aurora pgvector store of the workload needs."""

    table_gib: float
    """Collection tables (vectors and chunk columns)."""
    index_gib: float
    """HNSW indexes: the part that must stay in shared buffers for fast queries."""
    storage_gib: float
    """Cluster volume: tables plus indexes."""
    acu_needed: float
    """Capacity whose default shared buffers hold the HNSW index: the least ``max_acu`` that serves it from memory."""
    instances: int
    """Instances that serve queries (the writer, plus the readers)."""
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        return {"tableGib": self.table_gib, "indexGib": self.index_gib, "storageGib": self.storage_gib,
                "acuNeeded": self.acu_needed, "instances": self.instances}


def size_pgvector(*, vectors: int, dimensions: int, metadata_bytes: int, m: int, qps: float,
                  qps_per_instance: float | None, min_acu: float, max_acu: float, readers: int,
                  prefix: str = "") -> PgvectorSizing:
    """Size an Aurora Serverless v2 pgvector store and list every limit the configuration breaks (paths under
    ``prefix``: the workload's fields and ``aurora.*``)."""
    w, a = f"{prefix}workload.", f"{prefix}aurora."
    table = vectors * table_bytes_per_row(dimensions, metadata_bytes)
    index = vectors * hnsw_bytes_per_vector(dimensions, m)
    needed = acu_for_buffers(index)
    instances = 1 + readers
    out: list[Problem] = []
    if dimensions > PGVECTOR_HNSW_MAX_DIMENSIONS:
        out.append(Problem(f"{w}dimensions", dimensions,
                           f"<= {PGVECTOR_HNSW_MAX_DIMENSIONS}: pgvector's HNSW index takes vector columns of up to "
                           f"{PGVECTOR_HNSW_MAX_DIMENSIONS} dimensions (store halfvec for up to 4,000)"))
    if needed > AURORA_MAX_ACU:
        out.append(Problem(
            f"{w}vectors", vectors,
            f"at most what one Aurora Serverless v2 instance holds in memory: {vectors:,} vectors of {dimensions} "
            f"dimensions need a {_gib(index):,} GiB HNSW index, {needed:g} ACU of shared buffers, over the "
            f"{AURORA_MAX_ACU:g} ACU limit by {needed - AURORA_MAX_ACU:g} ACU; use the qdrant backend with shards "
            "or split the collections over several stores", (f"{w}dimensions", f"{w}hnsw_m")))
    elif needed > max_acu:
        out.append(Problem(
            f"{a}max_acu", max_acu,
            f">= {needed:g} to keep the HNSW index of {vectors:,} x {dimensions}-d vectors ({_gib(index):,} GiB) "
            f"in shared buffers: short by {needed - max_acu:g} ACU", (f"{w}vectors", f"{w}dimensions", f"{w}hnsw_m")))
    if table + index > AURORA_MAX_STORAGE_TIB * TIB:
        out.append(Problem(f"{w}vectors", vectors, f"a store of at most {AURORA_MAX_STORAGE_TIB} TiB (the Aurora "
                           f"cluster volume limit): this one needs {(table + index) / TIB:,.1f} TiB",
                           (f"{w}dimensions", f"{w}metadata_bytes")))
    if qps_per_instance:
        wanted = math.ceil(qps / qps_per_instance)
        if wanted > instances:
            out.append(Problem(f"{a}readers", readers,
                               f">= {wanted - 1}: {qps:g} QPS at {qps_per_instance:g} QPS per instance needs "
                               f"{wanted} instances (the writer and {wanted - 1} readers)",
                               (f"{w}qps", f"{w}qps_per_instance")))
    return PgvectorSizing(_gib(table), _gib(index), _gib(table + index), needed, instances, out)


@dataclass(frozen=True)
class QdrantSizing:
    """What a Qdrant cluster of the workload needs."""

    memory_gib: float
    """RAM to keep every vector in memory, over the whole cluster (replicas included)."""
    memory_gib_per_node: float
    """That memory spread over the nodes."""
    disk_gib_per_node: float
    """Persistent volume each node needs (vectors with the planning factor, plus payload, for its replicas)."""
    shard_number: int
    """Shards per collection (``shard_number``)."""
    replication_factor: int
    """Copies of each shard (``replication_factor``)."""
    nodes: int
    """Qdrant pods (the StatefulSet's replicas)."""
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        return {"memoryGib": self.memory_gib, "memoryGibPerNode": self.memory_gib_per_node,
                "diskGibPerNode": self.disk_gib_per_node, "shardNumber": self.shard_number,
                "replicationFactor": self.replication_factor, "nodes": self.nodes}


def shards_for(vectors: int, vectors_per_shard: int = DEFAULT_VECTORS_PER_SHARD) -> int:
    """Shards of a collection: one per ``vectors_per_shard`` vectors (the seed: 100M -> 10), at least one."""
    return max(1, math.ceil(vectors / vectors_per_shard))


def size_qdrant(*, vectors: int, dimensions: int, metadata_bytes: int, nodes: int, replication_factor: int,
                shard_number: int | None, vectors_per_shard: int, node_memory_gib: float, node_storage_gib: float,
                prefix: str = "") -> QdrantSizing:
    """Size a Qdrant cluster and list every limit the configuration breaks (paths under ``prefix``)."""
    w, q = f"{prefix}workload.", f"{prefix}qdrant."
    shards = shard_number or shards_for(vectors, vectors_per_shard)
    memory = vectors * dimensions * 4 * QDRANT_MEMORY_FACTOR * replication_factor
    disk = vectors * (dimensions * 4 * QDRANT_MEMORY_FACTOR + metadata_bytes) * replication_factor
    per_node_memory, per_node_disk = memory / nodes, disk / nodes
    out: list[Problem] = []
    if replication_factor > nodes:
        out.append(Problem(f"{q}replication_factor", replication_factor,
                           f"<= replicas ({nodes}): each copy of a shard lives on a different node", (f"{q}replicas",)))
    if per_node_memory > node_memory_gib * GIB:
        out.append(Problem(f"{q}memory_gib", node_memory_gib,
                           f">= {_gib(per_node_memory):,} to keep {vectors:,} x {dimensions}-d vectors (replication "
                           f"{replication_factor}) in RAM on {nodes} nodes: short by "
                           f"{_gib(per_node_memory - node_memory_gib * GIB):,} GiB per node",
                           (f"{w}vectors", f"{w}dimensions", f"{q}replicas", f"{q}replication_factor")))
    if per_node_disk > node_storage_gib * GIB:
        out.append(Problem(f"{q}storage_gib", node_storage_gib,
                           f">= {math.ceil(per_node_disk / GIB)} for {nodes} nodes: short by "
                           f"{_gib(per_node_disk - node_storage_gib * GIB):,} GiB per node",
                           (f"{w}vectors", f"{w}dimensions", f"{w}metadata_bytes", f"{q}replicas",
                            f"{q}replication_factor")))
    return QdrantSizing(_gib(memory), _gib(per_node_memory), _gib(per_node_disk), shards, replication_factor, nodes,
                        out)
