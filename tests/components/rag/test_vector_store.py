"""VectorStore: the Aurora pgvector cluster and the Qdrant release, asserted by name; validation messages; the seed's
example config; the Qdrant values checked against the vendored chart."""

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from components.rag import _store
from components.rag.vector_store import VectorStore, VectorStoreArgs
from tests.infra.test_upstream_truth import UPSTREAM, load_chart, type_errors, unknown_keys
from tests.kit.plan import errors_of, plan_component

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RELEASE = "kubernetes:helm.sh/v3:Release"
WIRING = {"vpc_id": "vpc-0abc", "subnet_ids": ["subnet-a", "subnet-b"], "node_security_group_id": "sg-nodes"}
EXAMPLE = Path(__file__).resolve().parents[3] / "components" / "rag" / "examples" / "qdrant-seed.yaml"


def args(**kw):
    return VectorStoreArgs(**{**WIRING, **kw})


def errors(**kw) -> str:
    return errors_of(args, **kw)


def plan(stack="prod", **kw):
    def build():
        store = VectorStore("vectors", args(**kw))
        pulumi.export("endpoint", store.endpoint)
        pulumi.export("reader", store.reader_endpoint)
        if store.secret_arn is not None:
            pulumi.export("secret", store.secret_arn)
        return store
    return plan_component(build, stack=stack)


# --- Aurora ---

def test_aurora_cluster_is_encrypted_serverless_v2_with_iam_auth_and_a_managed_secret():
    result, store = plan()
    c = result.one(CLUSTER).inputs
    key = result.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert (c["engine"], c["engineMode"], c["engineVersion"]) == ("aurora-postgresql", "provisioned", "16.8")
    assert c["storageEncrypted"] is True and c["kmsKeyId"] == key.outputs["arn"]
    assert c["iamDatabaseAuthenticationEnabled"] is True
    assert c["manageMasterUserPassword"] is True and c["masterUserSecretKmsKeyId"] == key.outputs["arn"]
    assert "masterPassword" not in c
    assert c["serverlessv2ScalingConfiguration"] == {"minCapacity": 0, "maxCapacity": 4, "secondsUntilAutoPause": 300}
    assert (c["backupRetentionPeriod"], c["preferredBackupWindow"]) == (7, "03:00-04:00")
    assert (c["deletionProtection"], c["skipFinalSnapshot"]) == (False, True)
    assert "finalSnapshotIdentifier" not in c
    assert c["enabledCloudwatchLogsExports"] == ["postgresql"]
    params = result.one("aws:rds/clusterParameterGroup:ClusterParameterGroup")
    assert params.inputs["family"] == "aurora-postgresql16"
    assert params.inputs["parameters"] == [{"name": "rds.force_ssl", "value": "1"}]
    assert c["dbClusterParameterGroupName"] == params.outputs["name"]
    cluster = result.one(CLUSTER).outputs
    assert result.outputs["endpoint"] == cluster["endpoint"] and result.outputs["reader"] == cluster["readerEndpoint"]
    assert result.outputs["secret"] == cluster["masterUserSecrets"][0]["secretArn"]
    assert store.port == 5432 and store.backend == "aurora-pgvector"


def test_aurora_is_private_and_only_the_nodes_reach_5432():
    result, store = plan()
    c = result.one(CLUSTER).inputs
    subnets = result.one("aws:rds/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == ["subnet-a", "subnet-b"]
    assert c["dbSubnetGroupName"] == subnets.outputs["name"]
    sg = result.one("aws:ec2/securityGroup:SecurityGroup")
    assert c["vpcSecurityGroupIds"] == [sg.outputs["id"]]
    rule = result.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").inputs
    assert (rule["fromPort"], rule["toPort"], rule["referencedSecurityGroupId"]) == (5432, 5432, "sg-nodes")
    assert "cidrIpv4" not in rule
    assert result.by_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") == []
    assert all(i.inputs["publiclyAccessible"] is False for i in result.by_type(INSTANCE))


def test_writer_and_readers_are_db_serverless_with_performance_insights():
    result, _ = plan(aurora={"readers": 3, "min_acu": 0.5, "max_acu": 16})
    instances = {i.name: i.inputs for i in result.by_type(INSTANCE)}
    assert sorted(instances) == ["vectors-reader-1", "vectors-reader-2", "vectors-reader-3", "vectors-writer"]
    key = result.one("aws:kms/key:Key").outputs["arn"]
    cluster = result.one(CLUSTER).outputs
    for i in instances.values():
        assert (i["instanceClass"], i["engine"], i["clusterIdentifier"]) == ("db.serverless", "aurora-postgresql",
                                                                             cluster["id"])
        assert (i["performanceInsightsEnabled"], i["performanceInsightsKmsKeyId"],
                i["performanceInsightsRetentionPeriod"]) == (True, key, 7)
    assert [instances[n]["promotionTier"] for n in sorted(instances)] == [1, 2, 3, 0]
    # a non-zero minimum: no auto-pause setting (AWS drops it)
    assert result.one(CLUSTER).inputs["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 16}


def test_tiers_that_keep_data_get_deletion_protection_and_a_per_stack_final_snapshot():
    result, _ = plan(aurora={"deletion_protection": True, "final_snapshot": True, "backup_retention_days": 14,
                             "performance_insights": False})
    c = result.one(CLUSTER).inputs
    assert (c["deletionProtection"], c["skipFinalSnapshot"], c["finalSnapshotIdentifier"]) == (
        True, False, "prod-vectors-final")
    assert c["backupRetentionPeriod"] == 14
    writer = result.one(INSTANCE).inputs
    assert writer["performanceInsightsEnabled"] is False and "performanceInsightsKmsKeyId" not in writer


def test_final_snapshot_id_is_a_valid_rds_identifier():
    assert _store.final_snapshot_id("prod", "vectors") == "prod-vectors-final"
    assert _store.final_snapshot_id("1st_Stack", "a--b") == "s-1st-stack-a-b-final"


def test_a_given_kms_key_is_used_and_none_is_created():
    result, _ = plan(kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/given")
    assert result.by_type("aws:kms/key:Key") == []
    assert result.one(CLUSTER).inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/given"


def test_sizing_and_pgvector_index_settings_are_exposed():
    _, store = plan()
    assert store.sizing == {"tableGib": 4.8, "indexGib": 4.09, "storageGib": 8.89, "acuNeeded": 3.5, "instances": 1}
    assert store.collection_settings == {"index": "hnsw", "m": 16, "ef_construction": 64, "ef_search": 40}


@pytest.mark.parametrize("version, auto_pause, hnsw", [
    ("16.8", True, True), ("16.3", True, True), ("16.2", False, True), ("15.7", True, True), ("15.6", False, True),
    ("15.3", False, False), ("14.12", True, True), ("13.15", True, True), ("13.11", False, False), ("17.4", True, True),
    ("12.16", False, False), ("16", False, False)])
def test_engine_version_rules(version, auto_pause, hnsw):
    assert (_store.supports_auto_pause(version), _store.supports_hnsw(version)) == (auto_pause, hnsw)


def test_aurora_validation_messages():
    msg = errors(aurora={"min_acu": 8, "max_acu": 4.25})
    assert "aurora.min_acu = 8.0: <= aurora.max_acu (4.25)" in msg
    assert "aurora.max_acu = 4.25: a multiple of 0.5 ACU" in msg
    msg = errors(aurora={"engine_version": "16.2"})
    assert "aurora.min_acu = 0.0: > 0 on this engine version, or an engine version with auto-pause" in msg
    assert "aurora.engine_version = '15.3': a version with pgvector HNSW indexes" in errors(
        aurora={"engine_version": "15.3", "min_acu": 0.5})
    assert "aurora.engine_version = 'sixteen': an Aurora PostgreSQL major.minor such as 16.8" in errors(
        aurora={"engine_version": "sixteen"})
    assert "aurora.performance_insights_retention_days = 30: 7, or a multiple of 31 up to 731" in errors(
        aurora={"performance_insights_retention_days": 30})
    assert "aurora.seconds_until_auto_pause" in errors(aurora={"seconds_until_auto_pause": 60})


def test_aurora_needs_the_network_wiring():
    msg = errors_of(VectorStoreArgs)
    for field in ("vpc_id", "subnet_ids", "node_security_group_id"):
        assert field in msg


def test_100m_1024_d_vectors_on_a_prototype_is_a_clear_error():
    msg = errors(workload={"vectors": 100_000_000, "dimensions": 1024})
    assert ("workload.vectors = 100000000: at most what one Aurora Serverless v2 instance holds in memory: "
            "100,000,000 vectors of 1024 dimensions need a 409.04 GiB HNSW index, 301 ACU of shared buffers, over the "
            "256 ACU limit by 45 ACU") in msg


def test_a_max_acu_too_small_for_the_index_is_an_error():
    msg = errors(workload={"vectors": 5_000_000})
    assert ("aurora.max_acu = 4.0: >= 15.5 to keep the HNSW index of 5,000,000 x 1024-d vectors (20.45 GiB) in shared "
            "buffers: short by 11.5 ACU") in msg


# --- Qdrant ---

def qdrant(**kw):
    return plan(backend="qdrant", **kw)


def test_qdrant_release_values_by_name():
    result, store = qdrant()
    release = result.one(RELEASE).inputs
    assert (release["chart"], release["version"], release["repositoryOpts"]["repo"], release["namespace"],
            release["name"]) == ("qdrant", "1.19.0", "https://qdrant.github.io/qdrant-helm", "genai-rag", "vectors")
    v = release["values"]
    assert v["replicaCount"] == 3 and v["config"]["cluster"]["enabled"] is True
    assert v["service"] == {"type": "ClusterIP"} and v["ingress"] == {"enabled": False}
    assert v["persistence"] == {"size": "50Gi", "storageClassName": "gp3"}
    assert v["resources"] == {"requests": {"cpu": "2", "memory": "8192Mi"}, "limits": {"memory": "8192Mi"}}
    assert v["apiKey"] == {"valueFrom": {"secretKeyRef": {"name": "vectors-api-key", "key": "api-key"}}}
    assert v["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    assert v["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    # Pod Security "restricted" (the namespace enforces it): no root init container, no capabilities, seccomp
    assert v["updateVolumeFsOwnership"] is False
    assert v["containerSecurityContext"] == {"capabilities": {"drop": ["ALL"]},
                                             "seccompProfile": {"type": "RuntimeDefault"}}
    assert v["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ns = result.one("kubernetes:core/v1:Namespace").inputs["metadata"]
    assert ns["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert store.values == _store.render_qdrant_values(
        replicas=3, storage_gib=50, storage_class="gp3", memory_gib=8, cpu="2", api_key_secret="vectors-api-key",
        node_selector={"genai-scale/node-group": "system"})
    assert result.by_type("aws:rds/cluster:Cluster") == []
    assert store.endpoint is not None and store.port == 6333


def test_qdrant_values_are_known_to_the_vendored_chart_with_its_types():
    chart = load_chart(UPSTREAM / "qdrant" / "1.19.0")
    for replicas in (1, 3):
        values = _store.render_qdrant_values(replicas=replicas, storage_gib=50, storage_class="gp3", memory_gib=8,
                                             cpu="2", api_key_secret="s", node_selector={"a": "b"})
        assert unknown_keys("vector-store", chart, values) == []
        assert type_errors("vector-store", chart, values) == []
    assert unknown_keys("x", chart, {"apiKeyy": "oops"}) != []  # the check can fail


def test_qdrant_api_key_comes_from_a_pulumi_secret_through_a_kubernetes_secret():
    result, store = qdrant()
    secret = result.one("kubernetes:core/v1:Secret")
    assert secret.inputs["metadata"] == {"name": "vectors-api-key", "namespace": "genai-rag"}
    password = result.one("random:index/randomPassword:RandomPassword")
    assert password.inputs["length"] == 48
    assert json.dumps(secret.inputs["stringData"]).count("4dabf18193072939515e22adb298388d") == 1  # secret marker
    release = result.one(RELEASE)
    assert secret.urn in release.dependencies
    assert store.api_key_secret_name == "vectors-api-key"


def test_a_given_api_key_is_used_and_none_is_generated():
    result, _ = qdrant(api_key="given-key")
    assert result.by_type("random:index/randomPassword:RandomPassword") == []


def test_qdrant_network_policy_admits_clients_on_rest_and_grpc_and_p2p_between_nodes_only():
    result, _ = qdrant()
    spec = result.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]
    selector = {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": "vectors"}
    assert spec["podSelector"] == {"matchLabels": selector} and spec["policyTypes"] == ["Ingress"]
    clients, peers = spec["ingress"]
    assert clients["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "genai-gateway", "genai-rag", "monitoring"]
    assert [p["port"] for p in clients["ports"]] == [6333, 6334]
    assert peers == {"from": [{"podSelector": {"matchLabels": selector}}], "ports": [{"port": 6335, "protocol": "TCP"}]}


def test_qdrant_collection_settings_carry_shards_and_replication():
    _, store = qdrant()
    assert store.collection_settings == {"vectors": {"size": 1024, "distance": "Cosine"}, "shard_number": 1,
                                         "replication_factor": 2, "write_consistency_factor": 1,
                                         "hnsw_config": {"m": 16, "ef_construct": 64}}


def test_qdrant_does_not_need_the_aws_network_wiring():
    VectorStoreArgs(backend="qdrant")


def test_qdrant_validation_messages():
    msg = errors_of(VectorStoreArgs, backend="qdrant", qdrant={"replicas": 1})
    assert "qdrant.replication_factor = 2: <= replicas (1)" in msg
    msg = errors_of(VectorStoreArgs, backend="qdrant", workload={"vectors": 100_000_000})
    assert "qdrant.memory_gib = 8.0: >= 381.47" in msg and "qdrant.storage_gib = 50: >= 446" in msg


def test_the_shipped_seed_example_sizes_and_gives_10_shards_replication_2_on_3_nodes():
    a = VectorStoreArgs(**yaml.safe_load(EXAMPLE.read_text()))
    sizing = a.sizing()
    assert (sizing.shard_number, sizing.replication_factor, sizing.nodes, sizing.problems) == (10, 2, 3, [])
    _, store = plan_component(lambda: VectorStore("vectors", a))
    assert (store.collection_settings["shard_number"], store.collection_settings["replication_factor"]) == (10, 2)
