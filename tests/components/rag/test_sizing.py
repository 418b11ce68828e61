"""Vector store sizing: pgvector bytes per row and per HNSW element, shared buffers per ACU, Qdrant memory, shards, and
the error for every limit a workload breaks."""

import math

import pytest

from components.rag import _sizing as s

GIB = 1024 ** 3


def pg(**kw):
    base = dict(vectors=1_000_000, dimensions=1024, metadata_bytes=512, m=16, qps=10, qps_per_instance=None,
                min_acu=0, max_acu=4, readers=0)
    return s.size_pgvector(**{**base, **kw})


def qd(**kw):
    base = dict(vectors=1_000_000, dimensions=1024, metadata_bytes=0, nodes=1, replication_factor=1,
                shard_number=None, vectors_per_shard=10_000_000, node_memory_gib=64, node_storage_gib=100)
    return s.size_qdrant(**{**base, **kw})


def test_pgvector_vector_is_four_bytes_per_dimension_plus_eight():
    assert s.vector_bytes(1024) == 4104
    assert s.table_bytes_per_row(1024, 512) == 24 + 4 + 4104 + 512


def test_hnsw_element_holds_a_copy_of_the_vector_and_2m_neighbour_tids_on_layer_zero():
    # element: MAXALIGN(72 + 4104) = 4176; neighbours: MAXALIGN(4 + (2 + 1/15) * 16 * 6) = 208; two line pointers
    assert s.hnsw_bytes_per_vector(1024, 16) == 4176 + 208 + 8
    assert s.hnsw_bytes_per_vector(1024, 32) > s.hnsw_bytes_per_vector(1024, 16)


def test_shared_buffers_follow_the_aurora_default_formula():
    # SUM({DBInstanceClassMemory/12038},-50003) pages of 8 kB, memory = ACU x 2 GiB
    assert s.shared_buffers_bytes(4) == pytest.approx((4 * 2 * GIB / 12038 - 50003) * 8192)
    assert s.shared_buffers_bytes(0.5) / GIB == pytest.approx(0.299, abs=0.001)  # 1 GiB of memory: ~306 MiB cached
    assert s.shared_buffers_bytes(256) / (256 * 2 * GIB) == pytest.approx(0.68, abs=0.01)


@pytest.mark.parametrize("index_gib", [0.01, 1, 4.09, 100, 409])
def test_acu_for_buffers_is_the_least_half_step_that_holds_the_index(index_gib):
    acu = s.acu_for_buffers(index_gib * GIB)
    assert acu * 2 == int(acu * 2)
    assert s.shared_buffers_bytes(acu) >= index_gib * GIB
    assert acu == 0.5 or s.shared_buffers_bytes(acu - 0.5) < index_gib * GIB


def test_one_million_1024_d_vectors_fit_a_4_acu_prototype():
    r = pg()
    assert (r.index_gib, r.acu_needed, r.instances, r.problems) == (4.09, 3.5, 1, [])
    assert r.storage_gib == pytest.approx(r.table_gib + r.index_gib, abs=0.02)
    assert r.summary() == {"tableGib": r.table_gib, "indexGib": 4.09, "storageGib": r.storage_gib, "acuNeeded": 3.5,
                           "instances": 1}


def test_100m_1024_d_vectors_on_a_prototype_break_the_256_acu_limit_and_say_by_how_much():
    (p,) = pg(vectors=100_000_000).problems
    assert p.path == "workload.vectors" and p.value == 100_000_000
    assert "409.04 GiB HNSW index, 301 ACU of shared buffers, over the 256 ACU limit by 45 ACU" in p.expected
    assert "qdrant backend" in p.expected


def test_a_max_acu_below_what_the_index_needs_names_the_shortfall():
    (p,) = pg(max_acu=2).problems
    assert (p.path, p.value) == ("aurora.max_acu", 2)
    assert p.expected == (">= 3.5 to keep the HNSW index of 1,000,000 x 1024-d vectors (4.09 GiB) in shared buffers: "
                          "short by 1.5 ACU")
    assert "workload.vectors" in p.related


def test_prefix_goes_before_every_path():
    (p,) = pg(max_acu=2, prefix="rag.").problems
    assert p.path == "rag.aurora.max_acu" and "rag.workload.vectors" in p.related


def test_more_than_2000_dimensions_cannot_be_hnsw_indexed():
    problems = pg(vectors=1000, dimensions=3072).problems
    assert [(p.path, p.value) for p in problems] == [("workload.dimensions", 3072)]
    assert "up to 2000 dimensions" in problems[0].expected


def test_a_store_over_128_tib_is_refused():
    problems = pg(vectors=200_000_000, dimensions=8, metadata_bytes=1_000_000, max_acu=256).problems
    assert [p.path for p in problems] == ["workload.vectors"]
    assert "128 TiB" in problems[0].expected and "needs 182.0 TiB" in problems[0].expected


def test_qps_per_instance_derives_the_readers_needed():
    assert pg(qps=300, qps_per_instance=100, readers=2).problems == []
    (p,) = pg(qps=300, qps_per_instance=100, readers=1).problems
    assert (p.path, p.value) == ("aurora.readers", 1)
    assert p.expected == ">= 2: 300 QPS at 100 QPS per instance needs 3 instances (the writer and 2 readers)"


def test_qdrant_memory_follows_its_capacity_planning_formula():
    # Qdrant's example: 1M x 1024-d -> 6,144,000,000 bytes, about 5.72 GiB
    r = qd()
    assert r.memory_gib == round(1_000_000 * 1024 * 4 * 1.5 / GIB, 2) == 5.72
    assert qd(replication_factor=2, nodes=2).memory_gib_per_node == 5.72


def test_qdrant_shards_follow_the_seed_10m_per_shard():
    assert s.shards_for(100_000_000) == 10
    assert s.shards_for(1) == 1
    assert qd(vectors=25_000_000, node_memory_gib=512, node_storage_gib=1000).shard_number == 3
    assert qd(shard_number=7).shard_number == 7


def test_qdrant_limits_are_reported_with_the_shortfall():
    problems = qd(vectors=100_000_000, nodes=3, replication_factor=2, node_memory_gib=8, node_storage_gib=100).problems
    assert [(p.path, p.value) for p in problems] == [("qdrant.memory_gib", 8), ("qdrant.storage_gib", 100)]
    assert problems[0].expected.startswith(">= 381.47 to keep 100,000,000 x 1024-d vectors (replication 2) in RAM on "
                                           "3 nodes: short by 373.47 GiB per node")
    assert problems[1].expected.startswith(f">= {math.ceil(100_000_000 * 1024 * 6 * 2 / 3 / GIB)} for 3 nodes")
    (p,) = qd(nodes=1, replication_factor=2, node_memory_gib=64).problems
    assert (p.path, p.expected) == ("qdrant.replication_factor",
                                    "<= replicas (1): each copy of a shard lives on a different node")
